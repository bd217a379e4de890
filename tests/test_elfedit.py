"""Tests for core.elfedit: adding/replacing a non-loaded section, and atomic writes.

readelf is the independent judge of the written files (no warnings on stderr), running the program
shows it still works, and PT_LOAD bytes are compared byte for byte with the original.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path
from typing import BinaryIO

import pytest

from core import elfedit
from core.elf import ElfImage, load_elf
from core.elfedit import (
    MEASUREMENT_ZEROED_HEADER_FIELDS,
    atomic_write,
    atomic_write_bytes,
    atomic_write_from,
    read_section_bytes,
    with_section,
)
from core.errors import ElfFormatError, ParamError, WriteError

SECTION = ".ensign.sigstruct"
needs_readelf = pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) not installed")


def readelf_all(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["readelf", "-a", "-W", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )


def zero_measurement_fields(data: bytes) -> bytes:
    patched = bytearray(data)
    for offset, size in MEASUREMENT_ZEROED_HEADER_FIELDS:
        patched[offset : offset + size] = bytes(size)
    return bytes(patched)


def load_bytes(image: ElfImage) -> list[bytes]:
    """The file bytes of every PT_LOAD, with the measurement-zeroed header fields zeroed."""
    patched = zero_measurement_fields(bytes(image.data))
    return [patched[s.offset : s.offset + s.filesz] for s in image.load_segments]


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


@pytest.fixture
def program(tmp_path: Path, gcc_static_binary: Path) -> Path:
    """A private copy of the static test program."""
    copy = tmp_path / "program"
    shutil.copy2(gcc_static_binary, copy)
    return copy


# --- adding and replacing a section ---------------------------------------------------------------


def test_measurement_zeroed_fields_are_e_shoff_e_shnum_e_shstrndx() -> None:
    assert MEASUREMENT_ZEROED_HEADER_FIELDS == ((0x28, 8), (0x3C, 2), (0x3E, 2))


@needs_readelf
@pytest.mark.parametrize("binary_fixture", ["gcc_static_binary", "gcc_pie_binary", "sample_binary"])
def test_added_section_is_readelf_clean_and_readable(
    tmp_path: Path, request: pytest.FixtureRequest, binary_fixture: str
) -> None:
    source = Path(request.getfixturevalue(binary_fixture))
    output = tmp_path / "signed"
    payload = bytes(range(256)) * 7 + b"tail"
    section = with_section(source, output, SECTION, payload)
    result = readelf_all(output)
    assert result.returncode == 0
    assert result.stderr == ""
    assert SECTION in result.stdout
    with load_elf(output) as image:
        assert read_section_bytes(image, SECTION) == payload
        found = image.section_by_name(SECTION)
        assert found == section
        assert found.flags == 0 and found.addr == 0 and found.addralign == 8 and not found.is_alloc
        assert all(SECTION not in segment.sections for segment in image.segments)


def test_loaded_bytes_identical_except_three_header_fields(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    with_section(program, output, SECTION, b"x" * 1808)
    original = program.read_bytes()
    written = output.read_bytes()
    assert zero_measurement_fields(written[: len(original)]) == zero_measurement_fields(original)
    changed = {i for i in range(64) if original[i] != written[i]}
    allowed = {o + k for o, size in MEASUREMENT_ZEROED_HEADER_FIELDS for k in range(size)}
    assert changed and changed <= allowed
    with load_elf(program) as before, load_elf(output) as after:
        assert after.segments == before.segments
        assert load_bytes(after) == load_bytes(before)
        assert after.entry == before.entry and after.symbols == before.symbols


def test_replacing_keeps_one_section_and_the_size(tmp_path: Path, program: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    with_section(program, first, SECTION, b"A" * 1808)
    with_section(first, second, SECTION, b"B" * 1808)
    assert first.stat().st_size == second.stat().st_size
    with load_elf(second) as image:
        assert [s.name for s in image.sections].count(SECTION) == 1
        assert read_section_bytes(image, SECTION) == b"B" * 1808
    # Signing in place, again and again, does not grow the file either.
    for round_number in range(3):
        with_section(second, second, SECTION, bytes([round_number]) * 1808)
    assert second.stat().st_size == first.stat().st_size
    with load_elf(second) as image, load_elf(program) as original:
        assert [s.name for s in image.sections].count(SECTION) == 1
        assert read_section_bytes(image, SECTION) == bytes([2]) * 1808
        assert load_bytes(image) == load_bytes(original)


def test_replacing_with_other_sizes(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    with_section(program, output, SECTION, b"long" * 1000)
    with_section(output, output, SECTION, b"s")
    with_section(output, output, SECTION, b"medium" * 10)
    with load_elf(output) as image:
        assert read_section_bytes(image, SECTION) == b"medium" * 10
        assert [s.name for s in image.sections].count(SECTION) == 1
    fresh = tmp_path / "fresh"
    with_section(program, fresh, SECTION, b"medium" * 10)
    assert output.read_bytes() == fresh.read_bytes()  # no leftovers from the longer payloads
    assert readelf_all(output).stderr == ""


def test_two_different_sections(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    with_section(program, output, ".ensign.one", b"1" * 10)
    with_section(output, output, ".ensign.two", b"2" * 20)
    with_section(output, output, ".ensign.one", b"3" * 10)
    with load_elf(output) as image:
        assert read_section_bytes(image, ".ensign.one") == b"3" * 10
        assert read_section_bytes(image, ".ensign.two") == b"2" * 20
    assert readelf_all(output).stderr == ""


def test_static_binary_still_runs(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    with_section(program, output, SECTION, os.urandom(1808))
    result = subprocess.run([str(output)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("ensign test program")


def test_pie_binary_still_runs(tmp_path: Path, gcc_pie_binary: Path) -> None:
    output = tmp_path / "signed"
    with_section(gcc_pie_binary, output, SECTION, b"\xff" * 100)
    result = subprocess.run([str(output)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0


def test_file_without_section_headers(tmp_path: Path, program: Path) -> None:
    stripped = bytearray(program.read_bytes())
    struct.pack_into("<Q", stripped, 0x28, 0)
    struct.pack_into("<HH", stripped, 0x3C, 0, 0)
    source = tmp_path / "no-sections"
    source.write_bytes(bytes(stripped))
    output = tmp_path / "signed"
    with_section(source, output, SECTION, b"data")
    with load_elf(output) as image:
        assert [s.name for s in image.sections] == ["", SECTION, ".shstrtab"]
        assert read_section_bytes(image, SECTION) == b"data"
    size = output.stat().st_size
    with_section(output, output, SECTION, b"more")
    assert output.stat().st_size == size
    if shutil.which("readelf"):
        assert readelf_all(output).stderr == ""


def test_note_section_type(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    section = with_section(program, output, ".note.ensign", b"\0" * 16, sh_type=7)
    assert section.type_name == "NOTE"
    with load_elf(output) as image:
        assert image.section_by_name(".note.ensign").type_name == "NOTE"  # type: ignore[union-attr]


def test_refuses_loaded_section_and_bad_names(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    with pytest.raises(ElfFormatError, match="SHF_ALLOC"):
        with_section(program, output, ".text", b"nope")
    with pytest.raises(ParamError):
        with_section(program, output, ".shstrtab", b"nope")
    for bad_name in ("", "a\0b", "sig\u00e9", "tab\tname"):
        with pytest.raises(ParamError):
            with_section(program, output, bad_name, b"nope")
    with pytest.raises(ParamError):
        with_section(program, output, SECTION, b"nope", sh_type=8)
    assert not output.exists()


def test_source_not_elf(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hello\n")
    with pytest.raises(ElfFormatError, match="not an ELF file"):
        with_section(source, tmp_path / "out", SECTION, b"x")


def test_read_section_bytes_missing(program: Path) -> None:
    with load_elf(program) as image:
        assert read_section_bytes(image, SECTION) is None
        assert read_section_bytes(image, ".bss") == b""
        comment = image.section_by_name(".comment")
        if comment is not None:
            assert read_section_bytes(image, ".comment") == bytes(image.read(comment.offset, comment.size))


# --- atomic writes --------------------------------------------------------------------------------


def test_mode_comes_from_source(tmp_path: Path, program: Path) -> None:
    program.chmod(0o750)
    output = tmp_path / "signed"
    with_section(program, output, SECTION, b"x")
    assert stat.S_IMODE(output.stat().st_mode) == 0o750


def test_existing_destination_keeps_its_mode(tmp_path: Path, program: Path) -> None:
    output = tmp_path / "signed"
    output.write_bytes(b"old")
    output.chmod(0o600)
    with_section(program, output, SECTION, b"x")
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    program.chmod(0o751)
    with_section(program, program, SECTION, b"x")
    assert stat.S_IMODE(program.stat().st_mode) == 0o751


def test_symlink_destination_is_followed(tmp_path: Path, program: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(program)
    with_section(link, link, SECTION, b"x")
    assert link.is_symlink()
    with load_elf(program) as image:
        assert read_section_bytes(image, SECTION) == b"x"


def test_failing_replace_leaves_original_and_no_temp_file(
    tmp_path: Path, program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = program.read_bytes()
    listing = files_in(tmp_path)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(WriteError) as caught:
        with_section(program, program, SECTION, b"x" * 1808)
    assert "No space left on device" in caught.value.message
    assert str(program) in caught.value.message and "\n" not in caught.value.message
    assert program.read_bytes() == before
    assert files_in(tmp_path) == listing


@pytest.mark.parametrize("exception", [RuntimeError("builder broke"), KeyboardInterrupt()])
def test_failing_builder_leaves_original_and_no_temp_file(
    tmp_path: Path, program: Path, exception: BaseException
) -> None:
    before = program.read_bytes()
    listing = files_in(tmp_path)

    def build(out: BinaryIO) -> None:
        out.write(b"partial output")
        raise exception

    with pytest.raises(type(exception)):
        atomic_write_from(program, program, build)
    assert program.read_bytes() == before
    assert files_in(tmp_path) == listing


def test_failing_stream_copy_in_with_section(
    tmp_path: Path, program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = program.read_bytes()
    listing = files_in(tmp_path)

    def broken_copy(out: BinaryIO, view: memoryview) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(elfedit, "_write_view", broken_copy)
    with pytest.raises(WriteError, match="Input/output error"):
        with_section(program, program, SECTION, b"x")
    assert program.read_bytes() == before
    assert files_in(tmp_path) == listing


def test_verify_failure_aborts(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"original")

    def verify(temp_path: str) -> None:
        assert Path(temp_path).read_bytes() == b"new"
        raise WriteError("verification failed")

    def write(out: BinaryIO) -> None:
        out.write(b"new")

    with pytest.raises(WriteError, match="verification failed"):
        atomic_write(target, write, verify=verify)
    assert target.read_bytes() == b"original"
    assert files_in(tmp_path) == {"file"}


def test_atomic_write_bytes(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    target.chmod(0o640)
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    atomic_write_bytes(target, b"three", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert files_in(tmp_path) == {"out.bin"}


def test_atomic_write_errors_are_write_errors(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="cannot write") as caught:
        atomic_write_bytes(tmp_path / "missing-dir" / "out.bin", b"x")
    assert "\n" not in caught.value.message
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(WriteError):
        atomic_write_bytes(directory, b"x")
    assert directory.is_dir()
    assert files_in(tmp_path) == {"a-directory"}


def test_atomic_write_from_copies_by_default(tmp_path: Path, program: Path) -> None:
    program.chmod(0o700)
    copy = tmp_path / "copy"
    atomic_write_from(program, copy)
    assert copy.read_bytes() == program.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
