"""The ``.note.sgxmeta`` parser: every fixture version, exact rebuilds, and corrupt metadata."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest
from test_sdk_support import SDK_ENCLAVES, expected

from core.errors import ContainerError, SdkError
from core.sdk import SdkEnclave, find_sdk_release, read_sdk_metadata
from core.sdk_metadata import (
    METADATA_MAGIC,
    METADATA_TABLE,
    FieldTable,
    LayoutEntry,
    LayoutGroup,
    build_block,
    build_note,
    layout_id_name,
    page_attr_names,
    parse_sgxmeta,
    tcs_template_offset,
)

# ---------------------------------------------------------------------------------------------
# synthetic metadata


def _entry(layout_id: int, attributes: int, pages: int, rva: int, si_flags: int = 0x203, content_size: int = 0,
           content_offset: int = 0) -> LayoutEntry:
    return LayoutEntry(0, layout_id, attributes, pages, rva, content_size, content_offset, si_flags, "")


def _group(entry_count: int, load_times: int, load_step: int, layout_id: int = 0x1009) -> LayoutGroup:
    return LayoutGroup(0, layout_id, entry_count, load_times, load_step, "")


def small_layout() -> list[LayoutEntry | LayoutGroup]:
    """HEAP_MIN, a thread (stack, TCS, SSA, TD) and a group repeating it once: a tiny valid layout."""
    tcs = tcs_template_offset(4)
    return [
        _entry(1, 0x1, 2, 0x10000),
        _entry(10, 0, 1, 0x12000, si_flags=0),
        _entry(8, 0x3, 1, 0x13000, content_size=0xCCCCCCCC),
        _entry(4, 0x3, 1, 0x14000, si_flags=0x100, content_size=72, content_offset=tcs),
        _entry(6, 0x3, 2, 0x15000),
        _entry(5, 0x3, 1, 0x17000),
        _group(5, 1, 0x6000),
    ]


def small_block(**changes) -> bytes:
    template = struct.pack("<QQQIIQQQQII", 0, 0, 0x1000, 0, 2, 0x1234, 0, 0x3000, 0x3000, 0xFFFFFFFF, 0xFFFFFFFF)
    arguments = dict(version=(2, 4), enclave_size=0x40000, layout=small_layout(), tcs_template=template)
    arguments.update(changes)
    return build_block(**arguments)


def note(*blocks: bytes, descsz: int = 0x2000) -> bytes:
    return build_note(list(blocks), descsz)


def test_synthetic_block_parses() -> None:
    metadata = parse_sgxmeta(note(small_block(), small_block(version=(1, 5))))
    assert metadata.versions == ("2.4", "1.5")
    block = metadata.primary
    assert block.dir_count == 4 and block.enclave_size == 0x40000
    assert [item.name for item in block.layout] == ["HEAP_MIN", "GUARD", "STACK_MIN", "TCS", "SSA", "TD", "THREAD_GROUP"]
    assert len(block.tcs_template()) == 72
    assert metadata.blocks[1].desc_offset == block.size


def test_empty_note_is_unsigned() -> None:
    metadata = parse_sgxmeta(note())
    assert not metadata.signed and metadata.blocks == ()
    with pytest.raises(SdkError, match="not signed"):
        _ = metadata.primary


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda raw: raw[:8].replace(raw[:8], b"\x01" * 8) + raw[8:], "magic"),
        (lambda raw: raw[:16] + struct.pack("<I", 0x100000) + raw[20:], "past the end of the"),
        (lambda raw: raw[:16] + struct.pack("<I", 100) + raw[20:], "less than its header"),
        (lambda raw: raw[:8] + struct.pack("<Q", 0) + raw[16:], "not an SGX SDK metadata version"),
    ],
    ids=["bad-magic", "size-past-note", "size-below-header", "version-zero"],
)
def test_corrupt_header(mutate, fragment: str) -> None:
    raw = note(small_block())
    header = 25  # desc offset in the note
    corrupted = raw[:header] + mutate(raw[header:])
    with pytest.raises(SdkError, match=fragment):
        parse_sgxmeta(corrupted)


def _with_dirs(block: bytes, dirs: list[tuple[int, int]]) -> bytes:
    values = [value for pair in dirs for value in pair]
    return block[:1872] + struct.pack(f"<{len(values)}I", *values) + block[1872 + 4 * len(values) :]


def test_tables_outside_the_block() -> None:
    block = small_block()
    parsed = parse_sgxmeta(note(block)).primary
    (patch, _), (layout_offset, layout_size) = parsed.dirs[0], parsed.dirs[1]
    with pytest.raises(SdkError, match="layout table.*past the block end"):
        parse_sgxmeta(note(_with_dirs(block, [(patch, 0), (layout_offset, layout_size + 64)])))
    with pytest.raises(SdkError, match="not a multiple of 32"):
        parse_sgxmeta(note(_with_dirs(block, [(patch, 0), (layout_offset, layout_size - 4)])))
    with pytest.raises(SdkError, match="overlaps the metadata header"):
        parse_sgxmeta(note(_with_dirs(block, [(patch, 0), (64, 32)])))


def test_group_pointing_outside_the_table() -> None:
    layout = small_layout()
    layout[-1] = _group(7, 1, 0x6000)  # only 6 entries precede it
    with pytest.raises(SdkError, match="points outside the layout table"):
        parse_sgxmeta(note(small_block(layout=layout)))
    layout[-1] = _group(0, 1, 0x6000)
    with pytest.raises(SdkError, match="points outside"):
        parse_sgxmeta(note(small_block(layout=layout)))


def test_nested_groups_are_refused() -> None:
    layout = [*small_layout(), _group(2, 1, 0x6000)]
    with pytest.raises(SdkError, match="nested"):
        parse_sgxmeta(note(small_block(layout=layout)))


def test_content_and_patches_past_the_block() -> None:
    layout = small_layout()
    layout[3] = dataclasses.replace(layout[3], content_offset=0xFFFFF0)
    with pytest.raises(SdkError, match="content"):
        parse_sgxmeta(note(small_block(layout=layout)))
    block = bytearray(small_block(patches=[(0x100, b"\x01\x02")]))
    parsed = parse_sgxmeta(note(bytes(block))).primary
    patch_offset = parsed.dirs[0][0]
    struct.pack_into("<I", block, patch_offset + 8, 0xFFFFFF)  # src
    with pytest.raises(SdkError, match="patch 0"):
        parse_sgxmeta(note(bytes(block)))


def test_not_an_sgx_metadata_note() -> None:
    raw = bytearray(note(small_block()))
    raw[12:16] = b"sgx_"
    raw[12:25] = b"other_note\x00\x00\x00"
    with pytest.raises(SdkError, match="not an sgx_metadata note"):
        parse_sgxmeta(bytes(raw))
    with pytest.raises(SdkError, match="too short"):
        parse_sgxmeta(b"\x0d\x00")
    short = note(small_block())[: 25 + 100]
    with pytest.raises(SdkError, match="desc"):
        parse_sgxmeta(short)


def test_absurd_layout_entry_count() -> None:
    block = bytearray(small_block())
    parsed = parse_sgxmeta(note(bytes(block))).primary
    layout_offset = parsed.dirs[1][0]
    struct.pack_into("<I", block, 1872 + 12, 32 * 5000)
    with pytest.raises(SdkError):
        parse_sgxmeta(note(bytes(block), descsz=0x2000))
    assert layout_offset  # the layout dir exists


def test_field_table_checks_its_rows() -> None:
    with pytest.raises(RuntimeError, match="expected 4"):
        FieldTable("gap", 8, (("a", 0, "<I"), ("b", 5, "<I")))
    with pytest.raises(RuntimeError, match="little-endian"):
        FieldTable("native", 4, (("a", 0, "I"),))
    with pytest.raises(RuntimeError, match="covers 4 bytes"):
        FieldTable("short", 8, (("a", 0, "<I"),))
    table = FieldTable("ok", 12, (("a", 0, "<I"), ("b", 4, "8s")))
    assert table.unpack(table.pack({"a": 7, "b": b"x" * 8})) == {"a": 7, "b": b"x" * 8}
    with pytest.raises(ContainerError):
        table.unpack(b"\x00" * 11)
    with pytest.raises(SdkError):  # the metadata tables report SdkError
        METADATA_TABLE.unpack(b"\x00" * 11)


def test_names() -> None:
    assert layout_id_name(4) == "TCS" and layout_id_name(2, legacy=True) == "TCS"
    assert layout_id_name(0x1006, legacy=True) == "THREAD_GROUP" and layout_id_name(99) == "id 0x63"
    assert page_attr_names(0x5B) == ["EADD", "EEXTEND", "POST_ADD", "POST_REMOVE", "GROWDOWN"]
    assert METADATA_MAGIC == 0x86A80294635D0E4C


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_fixture_metadata_blocks_match_expected(fixtures_dir: Path, name: str) -> None:
    folder = fixtures_dir / "sdk" / name
    for signed in sorted(folder.glob("enclave.signed*.so")):
        want = expected(fixtures_dir)["derived"][f"sdk/{name}/{signed.name}"]
        with SdkEnclave.open(signed) as enclave:
            assert [block.header_dict() for block in enclave.blocks] == want["metadata_blocks"]
            for block in enclave.blocks:
                sig = block.sigstruct.to_dict()
                assert {key: sig[key] for key in want["sigstruct"]} == want["sigstruct"]


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_fixture_versions_dirs_and_unsigned_twin(fixtures_dir: Path, name: str) -> None:
    folder = fixtures_dir / "sdk" / name
    with SdkEnclave.open(folder / "enclave.signed.so") as enclave:
        assert enclave.release and find_sdk_release(enclave.image) == enclave.release
        for block in enclave.blocks:
            assert block.dir_count == (4 if name.startswith(("M2", "h0")) else 2)
            template = block.tcs_template()
            assert template is not None and len(template) == 72
            assert struct.unpack_from("<I", template, 28)[0] == 2  # NSSA
        if name.startswith("eternalray"):
            assert enclave.primary.legacy_ids and enclave.primary.layout[4].name == "TCS"
    with SdkEnclave.open(folder / "enclave.so") as unsigned:
        assert not unsigned.signed and unsigned.metadata.descsz == enclave.metadata.descsz


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_builder_reproduces_fixture_notes(fixtures_dir: Path, name: str) -> None:
    """build_block/build_note rewrite every fixture's note byte for byte (the layout sgx_sign writes)."""
    with SdkEnclave.open(fixtures_dir / "sdk" / name / "enclave.signed.so") as enclave:
        blocks = []
        for block in enclave.blocks:
            blocks.append(build_block(
                version=(block.major, block.minor),
                enclave_size=block.enclave_size,
                layout=block.layout,
                sigstruct=block.sigstruct.to_bytes(),
                ssa_frame_size=block.ssa_frame_size,
                tcs_policy=block.tcs_policy,
                max_save_buffer_size=block.max_save_buffer_size,
                desired_misc_select=block.desired_misc_select,
                tcs_min_pool=block.tcs_min_pool,
                attributes=(block.attributes_flags, block.attributes_xfrm),
                tcs_template=block.tcs_template() or b"",
                patches=[(p.dst, block.blob(p.src, p.size, what="patch")) for p in block.patches],
                dir_count=block.dir_count,
                layout_first=block.legacy_ids,
            ))
            assert blocks[-1] == block.raw
        section = enclave.image.section_by_name(".note.sgxmeta")
        assert build_note(blocks, enclave.metadata.descsz) == bytes(enclave.image.read(section.offset, section.size))


@pytest.mark.fixtures
def test_non_sdk_elf_has_no_metadata(fixtures_dir: Path) -> None:
    from core.elf import load_elf

    with load_elf(fixtures_dir / "gramine-oracle" / "pal_standin.elf") as image:
        assert read_sdk_metadata(image) is None
    with pytest.raises(SdkError, match="not an Intel SGX SDK enclave"):
        SdkEnclave.open(fixtures_dir / "gramine-oracle" / "pal_standin.elf")
