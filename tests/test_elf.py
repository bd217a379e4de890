"""Tests for core.elf: golden comparisons with readelf, and corrupt/truncated inputs.

readelf (binutils) is the independent source: its output is parsed here and compared field by field
with what load_elf reports. Corrupt inputs must raise only EnsignError subclasses, never a traceback
from pyelftools, struct or construct.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.elf import (
    PT_LOAD,
    PT_TLS,
    ElfClassError,
    ElfImage,
    ElfMachineError,
    ElfSegmentError,
    ElfTruncatedError,
    ElfTypeError,
    NotElfError,
    load_elf,
)
from core.errors import ElfFormatError, EnsignError

needs_readelf = pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) not installed")

BINARIES = ["gcc_static_binary", "gcc_pie_binary", "sample_binary"]

# Elf64_Ehdr field offsets and Elf64_Phdr layout used to corrupt files.
E_IDENT_CLASS = 4
E_IDENT_DATA = 5
E_TYPE = 0x10
E_MACHINE = 0x12
E_PHOFF = 0x20
E_SHOFF = 0x28
E_PHNUM = 0x38
PHDR = struct.Struct("<IIQQQQQQ")  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(params=BINARIES)
def binary(request: pytest.FixtureRequest) -> Path:
    """Each real binary in turn: gcc static (ET_EXEC), gcc PIE (ET_DYN), the bundled sample."""
    return Path(request.getfixturevalue(request.param))


@pytest.fixture
def image(binary: Path) -> Iterator[ElfImage]:
    with load_elf(binary) as loaded:
        yield loaded


def readelf(path: Path) -> dict[str, Any]:
    """Parse `readelf -W -l -S -h` into header, segments, sections and the section-to-segment map."""
    result = subprocess.run(
        ["readelf", "-W", "-l", "-S", "-h", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    header: dict[str, str] = {}
    segments: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    mapping: list[list[str]] = []
    part = "header"
    segment_line = re.compile(
        r"^\s+(\S+)\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) (.{3}) 0x([0-9a-f]+)$"
    )
    for line in result.stdout.splitlines():
        if line.startswith("Section Headers:"):
            part = "sections"
        elif line.startswith("Program Headers:"):
            part = "segments"
        elif "Section to Segment mapping" in line:
            part = "mapping"
        elif part == "header" and ":" in line:
            key, _, value = line.partition(":")
            header[key.strip()] = value.strip()
        elif part == "segments" and (match := segment_line.match(line)):
            kind, offset, vaddr, paddr, filesz, memsz, flags, align = match.groups()
            segments.append(
                {
                    "type_name": kind,
                    "offset": int(offset, 16),
                    "vaddr": int(vaddr, 16),
                    "paddr": int(paddr, 16),
                    "filesz": int(filesz, 16),
                    "memsz": int(memsz, 16),
                    "flags_text": "".join(c if c != " " else "-" for c in flags).replace("E", "X"),
                    "align": int(align, 16),
                }
            )
        elif part == "sections" and (match := re.match(r"^\s+\[\s*(\d+)\] (.*)$", line)):
            index = int(match.group(1))
            fields = match.group(2).split()
            if index == 0:
                continue  # the NULL entry has an empty name
            if len(fields) == 9:  # no flags column
                fields.insert(6, "")
            name, kind, addr, offset, size, entsize, flags, link, info, align = fields
            sections.append(
                {
                    "index": index,
                    "name": name,
                    "type_name": kind,
                    "addr": int(addr, 16),
                    "offset": int(offset, 16),
                    "size": int(size, 16),
                    "entsize": int(entsize, 16),
                    "alloc": "A" in flags,
                    "tls": "T" in flags,
                    "link": int(link),
                    "info": int(info),
                    "addralign": int(align),
                }
            )
        elif part == "mapping" and (match := re.match(r"^\s+(\d\d)\s*(.*)$", line)):
            mapping.append(match.group(2).split())
    return {"header": header, "segments": segments, "sections": sections, "mapping": mapping}


def write_variant(tmp_path: Path, original: Path, edit: Any, name: str = "variant") -> Path:
    """Copy ``original`` to tmp_path with ``edit(bytearray)`` applied."""
    data = bytearray(original.read_bytes())
    edit(data)
    target = tmp_path / name
    target.write_bytes(bytes(data))
    return target


def phdr_offset(data: bytearray, index: int) -> int:
    phoff = struct.unpack_from("<Q", data, E_PHOFF)[0]
    return phoff + index * PHDR.size


def load_indexes(data: bytearray) -> list[int]:
    phnum = struct.unpack_from("<H", data, E_PHNUM)[0]
    return [i for i in range(phnum) if PHDR.unpack_from(data, phdr_offset(data, i))[0] == PT_LOAD]


def set_phdr(data: bytearray, index: int, **changes: int) -> None:
    names = ["p_type", "p_flags", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz", "p_align"]
    values = dict(zip(names, PHDR.unpack_from(data, phdr_offset(data, index)), strict=True))
    values.update(changes)
    PHDR.pack_into(data, phdr_offset(data, index), *(values[n] for n in names))


def assert_one_line_naming(error: EnsignError, path: Path) -> None:
    assert str(path) in error.message
    assert "\n" not in error.message


# --- golden comparisons with readelf --------------------------------------------------------------


@needs_readelf
def test_header_matches_readelf(binary: Path, image: ElfImage) -> None:
    expected = readelf(binary)["header"]
    assert image.entry == int(expected["Entry point address"], 16)
    assert image.phoff == int(expected["Start of program headers"].split()[0])
    assert image.shoff == int(expected["Start of section headers"].split()[0])
    assert expected["Type"].startswith(image.elf_type + " ")
    assert image.machine == "x86-64"
    assert image.file_size == binary.stat().st_size
    assert len(image.segments) == int(expected["Number of program headers"])
    assert len(image.sections) == int(expected["Number of section headers"])


@needs_readelf
def test_segments_match_readelf(binary: Path, image: ElfImage) -> None:
    expected = readelf(binary)["segments"]
    actual = [
        {
            "type_name": s.type_name,
            "offset": s.offset,
            "vaddr": s.vaddr,
            "paddr": s.paddr,
            "filesz": s.filesz,
            "memsz": s.memsz,
            "flags_text": s.flags_text,
            "align": s.align,
        }
        for s in image.segments
    ]
    assert actual == expected
    assert [s.index for s in image.segments] == list(range(len(image.segments)))


@needs_readelf
def test_sections_match_readelf(binary: Path, image: ElfImage) -> None:
    expected = readelf(binary)["sections"]
    actual = [
        {
            "index": s.index,
            "name": s.name,
            "type_name": s.type_name,
            "addr": s.addr,
            "offset": s.offset,
            "size": s.size,
            "entsize": s.entsize,
            "alloc": s.is_alloc,
            "tls": bool(s.flags & 0x400),
            "link": s.link,
            "info": s.info,
            "addralign": s.addralign,
        }
        for s in image.sections[1:]
    ]
    assert actual == expected
    assert image.sections[0].type_name == "NULL"


@needs_readelf
def test_section_to_segment_mapping_matches_readelf(binary: Path, image: ElfImage) -> None:
    expected = readelf(binary)["mapping"]
    assert [list(s.sections) for s in image.segments] == expected


def test_elf_types(gcc_static_binary: Path, gcc_pie_binary: Path, sample_binary: Path) -> None:
    with (
        load_elf(gcc_static_binary) as static,
        load_elf(gcc_pie_binary) as pie,
        load_elf(sample_binary) as sample,
    ):
        assert static.elf_type == "EXEC"
        assert pie.elf_type == "DYN"
        assert sample.elf_type == "EXEC"
        assert any(s.type_name == "DYNAMIC" for s in pie.segments)
        assert any(s.table == ".dynsym" for s in pie.symbols)


def test_load_segments_in_header_order(image: ElfImage) -> None:
    loads = image.load_segments
    assert loads and all(s.type == PT_LOAD and s.type_name == "LOAD" for s in loads)
    assert [s.index for s in loads] == sorted(s.index for s in loads)
    assert loads == tuple(s for s in image.segments if s.type == PT_LOAD)


def test_tls_segment(image: ElfImage) -> None:
    assert image.tls is not None
    assert image.tls.type == PT_TLS
    assert image.tls.type_name == "TLS"
    assert ".tdata" in image.tls.sections and ".tbss" in image.tls.sections
    assert image.tls.memsz > image.tls.filesz  # .tbss follows .tdata


def test_sample_has_the_promised_parts(sample_binary: Path) -> None:
    with load_elf(sample_binary) as image:
        assert image.tls is not None
        names = {s.name for s in image.symbols}
        assert {"main", "vault_store", "vault_lookup", "vault_table", "scratch_buffer"} <= names
        data_section = image.section_by_name(".data")
        bss_section = image.section_by_name(".bss")
        assert data_section is not None and data_section.type_name == "PROGBITS"
        assert bss_section is not None and bss_section.type_name == "NOBITS"


def test_sample_runs(sample_binary: Path) -> None:
    result = subprocess.run([str(sample_binary)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("sample enclave:")


def test_symbol_for_vaddr_finds_main(image: ElfImage) -> None:
    main = next(s for s in image.symbols if s.name == "main" and s.type == "FUNC")
    assert image.symbol_for_vaddr(main.value) == (main, 0)
    found = image.symbol_for_vaddr(main.value + main.size - 1)
    assert found is not None and found[0].name == "main" and found[1] == main.size - 1
    assert image.section_for_vaddr(main.value).name == ".text"  # type: ignore[union-attr]
    segment = image.segment_for_vaddr(main.value)
    assert segment is not None and segment.type == PT_LOAD and segment.flags_text == "R-X"


@needs_readelf
def test_symbols_match_readelf(binary: Path, image: ElfImage) -> None:
    result = subprocess.run(
        ["readelf", "-W", "-s", str(binary)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    pattern = re.compile(r"^\s*\d+: ([0-9a-f]+)\s+(\d+|0x[0-9a-f]+) (\S+)\s+(\S+)\s+\S+\s+(\S+)\s+(\S+)")
    expected = set()
    for line in result.stdout.splitlines():
        match = pattern.match(line)
        if match and match.group(3) in ("FUNC", "OBJECT"):
            value, size, kind, bind, _ndx, name = match.groups()
            expected.add((name.split("@")[0], int(value, 16), int(size, 0), kind, bind))
    # GNU ld writes versioned names ("printf@GLIBC_2.2.5") into .symtab; compare the base names.
    actual = {
        (s.name.split("@")[0], s.value, s.size, s.type, s.bind)
        for s in image.symbols
        if s.type in ("FUNC", "OBJECT")
    }
    assert expected
    assert actual == expected


def test_symbol_for_vaddr_nearest_preceding(image: ElfImage) -> None:
    functions = sorted(
        (s for s in image.symbols if s.type == "FUNC" and s.size and s.section_index), key=lambda s: s.value
    )
    last = functions[-1]
    beyond = last.value + last.size + 0x10
    found = image.symbol_for_vaddr(beyond)
    assert found is not None
    symbol, offset = found
    assert symbol.value + offset == beyond and symbol.value <= beyond
    assert image.symbol_for_vaddr(0) is None


def test_section_for_vaddr(image: ElfImage) -> None:
    text = image.section_by_name(".text")
    assert text is not None and text.is_alloc
    assert image.section_for_vaddr(text.addr + text.size - 1) == text
    bss = image.section_by_name(".bss")
    assert bss is not None and image.section_for_vaddr(bss.addr) == bss
    assert image.section_for_vaddr(0) is None
    assert image.section_by_name(".does-not-exist") is None


def test_read_is_bounds_checked(image: ElfImage) -> None:
    assert bytes(image.read(0, 4)) == b"\x7fELF"
    assert image.read(0, 4).readonly
    assert len(image.read(image.file_size, 0)) == 0
    with pytest.raises(ElfTruncatedError):
        image.read(image.file_size - 2, 4)
    with pytest.raises(ElfTruncatedError):
        image.read(-1, 1)
    for segment in image.load_segments:
        assert len(image.read(segment.offset, segment.filesz)) == segment.filesz


def test_identity_and_immutability(binary: Path, image: ElfImage) -> None:
    status = binary.stat()
    assert image.identity == (
        os.path.realpath(binary),
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
    )
    assert image.path == str(binary)
    with pytest.raises(FrozenInstanceError):
        image.entry = 0  # type: ignore[misc]
    assert image.data.readonly and len(image.data) == image.file_size
    with load_elf(binary) as again:
        assert again == image  # same headers, symbols and identity


def test_close_releases_data(binary: Path) -> None:
    image = load_elf(binary)
    view = image.read(0, 16)
    image.close()
    with pytest.raises(ValueError):
        len(image.data)
    assert bytes(view)[:4] == b"\x7fELF"  # an outstanding slice stays valid until dropped


# --- files that are not ELF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"PK\x03\x04" + bytes(100), "zip archive"),
        (b"\x1f\x8b\x08\x00" + bytes(100), "gzip"),
        (b"MZ\x90\x00" + bytes(100), "PE"),
        (b"#!/bin/sh\necho hi\n", "script"),
        (b"\x06\x00\x00\x00\xe1\x00\x00\x00" + bytes(1800), "SIGSTRUCT"),
        (b"hello world\n", "text"),
        (b"\x00\x01\x02\x03", "starts with '\\x00\\x01\\x02\\x03'"),
    ],
)
def test_not_elf_messages(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "input.bin"
    path.write_bytes(content)
    with pytest.raises(NotElfError) as caught:
        load_elf(path)
    assert needle in caught.value.message
    assert "not an ELF file" in caught.value.message
    assert_one_line_naming(caught.value, path)


def test_zip_message_shows_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    path.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(NotElfError) as caught:
        load_elf(path)
    assert caught.value.message == f"{path}: not an ELF file (starts with 'PK\\x03\\x04', a zip archive?)"


def test_empty_missing_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    for path, needle in ((empty, "empty"), (tmp_path / "missing", "no such file"), (tmp_path, "directory")):
        with pytest.raises(ElfFormatError) as caught:
            load_elf(path)
        assert needle in caught.value.message
        assert_one_line_naming(caught.value, path)


# --- corrupted header fields ----------------------------------------------------------------------


def test_32_bit_elf(tmp_path: Path, gcc_static_binary: Path) -> None:
    path = write_variant(tmp_path, gcc_static_binary, lambda d: d.__setitem__(E_IDENT_CLASS, 1))
    with pytest.raises(ElfClassError, match="32-bit") as caught:
        load_elf(path)
    assert_one_line_naming(caught.value, path)


def test_big_endian_elf(tmp_path: Path, gcc_static_binary: Path) -> None:
    path = write_variant(tmp_path, gcc_static_binary, lambda d: d.__setitem__(E_IDENT_DATA, 2))
    with pytest.raises(ElfClassError, match="big-endian"):
        load_elf(path)


def test_wrong_machine(tmp_path: Path, gcc_static_binary: Path) -> None:
    path = write_variant(tmp_path, gcc_static_binary, lambda d: struct.pack_into("<H", d, E_MACHINE, 183))
    with pytest.raises(ElfMachineError, match="AArch64") as caught:
        load_elf(path)
    assert_one_line_naming(caught.value, path)


@pytest.mark.parametrize(("e_type", "needle"), [(1, "relocatable"), (4, "core dump"), (0, "ET_NONE")])
def test_wrong_file_type(tmp_path: Path, gcc_static_binary: Path, e_type: int, needle: str) -> None:
    path = write_variant(tmp_path, gcc_static_binary, lambda d: struct.pack_into("<H", d, E_TYPE, e_type))
    with pytest.raises(ElfTypeError, match=needle):
        load_elf(path)


def test_program_headers_past_eof(tmp_path: Path, gcc_static_binary: Path) -> None:
    size = gcc_static_binary.stat().st_size
    path = write_variant(tmp_path, gcc_static_binary, lambda d: struct.pack_into("<Q", d, E_PHOFF, size + 10))
    with pytest.raises(ElfTruncatedError, match="program header table") as caught:
        load_elf(path)
    assert_one_line_naming(caught.value, path)


def test_section_headers_past_eof(tmp_path: Path, gcc_static_binary: Path) -> None:
    size = gcc_static_binary.stat().st_size
    path = write_variant(tmp_path, gcc_static_binary, lambda d: struct.pack_into("<Q", d, E_SHOFF, size - 64))
    with pytest.raises(ElfTruncatedError, match="section header table"):
        load_elf(path)


def test_load_segment_past_eof(tmp_path: Path, gcc_static_binary: Path) -> None:
    size = gcc_static_binary.stat().st_size

    def edit(data: bytearray) -> None:
        set_phdr(data, load_indexes(data)[1], p_offset=size + 0x1000)

    path = write_variant(tmp_path, gcc_static_binary, edit)
    with pytest.raises(ElfSegmentError, match="past the end of the file") as caught:
        load_elf(path)
    assert_one_line_naming(caught.value, path)


def test_no_load_segments(tmp_path: Path, gcc_static_binary: Path) -> None:
    def edit(data: bytearray) -> None:
        for index in load_indexes(data):
            set_phdr(data, index, p_type=0x6000_0000)  # PT_LOOS: an OS-specific type nobody loads

    path = write_variant(tmp_path, gcc_static_binary, edit)
    with pytest.raises(ElfSegmentError, match="no PT_LOAD"):
        load_elf(path)


def test_overlapping_loads_with_different_bytes(tmp_path: Path, gcc_static_binary: Path) -> None:
    def edit(data: bytearray) -> None:
        first, second = load_indexes(data)[:2]
        vaddr = PHDR.unpack_from(data, phdr_offset(data, first))[3]
        set_phdr(data, second, p_vaddr=vaddr, p_paddr=vaddr)

    path = write_variant(tmp_path, gcc_static_binary, edit)
    with pytest.raises(ElfSegmentError, match="overlap") as caught:
        load_elf(path)
    assert_one_line_naming(caught.value, path)


def test_overlapping_loads_with_identical_bytes_are_accepted(tmp_path: Path, gcc_static_binary: Path) -> None:
    def edit(data: bytearray) -> None:
        first, second = load_indexes(data)[:2]
        _type, flags, offset, vaddr, paddr, filesz, memsz, align = PHDR.unpack_from(
            data, phdr_offset(data, first)
        )
        set_phdr(data, second, p_offset=offset, p_vaddr=vaddr, p_paddr=paddr, p_filesz=filesz, p_memsz=memsz)

    path = write_variant(tmp_path, gcc_static_binary, edit)
    with load_elf(path) as image:
        first, second = image.load_segments[:2]
        assert (first.vaddr, first.filesz) == (second.vaddr, second.filesz)


def test_overlapping_file_bytes_and_bss(tmp_path: Path, gcc_static_binary: Path) -> None:
    def edit(data: bytearray) -> None:
        first, second = load_indexes(data)[:2]
        _type, flags, offset, vaddr, paddr, filesz, memsz, align = PHDR.unpack_from(
            data, phdr_offset(data, first)
        )
        set_phdr(data, second, p_offset=offset, p_vaddr=vaddr, p_paddr=paddr, p_filesz=0, p_memsz=memsz)

    path = write_variant(tmp_path, gcc_static_binary, edit)
    with pytest.raises(ElfSegmentError, match="BSS"):
        load_elf(path)


def test_filesz_larger_than_memsz(tmp_path: Path, gcc_static_binary: Path) -> None:
    def edit(data: bytearray) -> None:
        index = load_indexes(data)[0]
        filesz = PHDR.unpack_from(data, phdr_offset(data, index))[5]
        set_phdr(data, index, p_memsz=filesz - 1)

    with pytest.raises(ElfSegmentError, match="p_filesz"):
        load_elf(write_variant(tmp_path, gcc_static_binary, edit))


def test_bad_shstrndx(tmp_path: Path, gcc_static_binary: Path) -> None:
    path = write_variant(tmp_path, gcc_static_binary, lambda d: struct.pack_into("<H", d, 0x3E, 0x7FFF))
    with pytest.raises(ElfFormatError, match="e_shstrndx"):
        load_elf(path)


# --- truncation and random corruption -------------------------------------------------------------


def truncation_lengths(size: int) -> list[int]:
    small = list(range(0, 80)) + [100, 119, 120, 200, 511, 512, 600, 63 + 56 * 4]
    spread = list(range(1000, size, max(1, size // 150)))
    return sorted({n for n in small + spread + [size - 64, size - 1] if 0 <= n < size})


def test_truncated_everywhere_raises_elf_format_error(tmp_path: Path, gcc_static_binary: Path) -> None:
    data = gcc_static_binary.read_bytes()
    path = tmp_path / "truncated"
    for length in truncation_lengths(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(ElfFormatError) as caught:
            load_elf(path)
        assert_one_line_naming(caught.value, path)


@pytest.fixture(scope="session")
def mutation_target(tmp_path_factory: pytest.TempPathFactory, gcc_static_binary: Path) -> tuple[bytes, Path]:
    return gcc_static_binary.read_bytes(), tmp_path_factory.mktemp("mutations") / "mutated"


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(st.one_of(st.integers(0, 127), st.integers(0, 4095)), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    )
)
def test_random_header_corruption_only_raises_ensign_errors(
    mutation_target: tuple[bytes, Path], changes: list[tuple[int, int]]
) -> None:
    original, path = mutation_target
    data = bytearray(original)
    for offset, value in changes:
        data[offset] = value
    path.write_bytes(bytes(data))
    try:
        image = load_elf(path)
    except EnsignError as error:
        assert "\n" not in error.message and error.message
        return
    with image:
        for segment in image.load_segments:
            assert len(image.read(segment.offset, segment.filesz)) == segment.filesz
        image.symbol_for_vaddr(image.entry)
        image.section_for_vaddr(image.entry)
        image.segment_for_vaddr(image.entry)
