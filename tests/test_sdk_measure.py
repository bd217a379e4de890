"""The SDK loader measurement (SPEC §4.6): fixtures, sgx_sign's record streams, what-if runs, corrupt metadata."""

from __future__ import annotations

import dataclasses
import gzip
import struct
import time
from pathlib import Path

import pytest
from test_sdk_metadata import note, small_block, small_layout
from test_sdk_support import SDK_ENCLAVES, assert_same_stream, expected, whatif_image, whatif_runs

from core.elf import load_elf
from core.errors import SdkError
from core.measure import Measurer
from core.records import PAGE_SIZE
from core.sdk import SdkEnclave
from core.sdk_loader import build_sdk_plan, expand_layout, row_kind
from core.sdk_metadata import build_note, parse_sgxmeta


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_every_block_measures_to_enclavehash(fixtures_dir: Path, name: str) -> None:
    for signed in sorted((fixtures_dir / "sdk" / name).glob("enclave.signed*.so")):
        want = expected(fixtures_dir)["derived"][f"sdk/{name}/{signed.name}"]["sigstruct"]["enclavehash"]
        with SdkEnclave.open(signed) as enclave:
            for block in enclave.blocks:
                measurement = enclave.measure(block.position)
                assert measurement.hex == want == block.sigstruct.enclavehash.hex(), (signed, block.version_text)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", [n for n in SDK_ENCLAVES if not n.startswith("eternalray")])
def test_record_stream_equals_sgx_sign(fixtures_dir: Path, name: str) -> None:
    folder = fixtures_dir / "sdk" / name
    reference = gzip.decompress((folder / "sgx_sign-measurement.sgxs.gz").read_bytes())
    stream = expected(fixtures_dir)["derived"][f"sdk/{name}/sgx_sign-measurement.sgxs.gz"]
    with SdkEnclave.open(folder / "enclave.signed.so") as enclave:
        plan = enclave.plan()
        assert plan.counts() == stream["records"] and plan.size == stream["size"]
        assert_same_stream(plan, reference, name)


def _runs_with(fixtures: Path, *, stream: bool) -> list:
    return [run for run in whatif_runs(fixtures) if run.get("sgxmeta") and bool(run.get("stream")) == stream]


@pytest.mark.fixtures
def test_whatif_runs_every_block_and_stream(fixtures_dir: Path, tmp_path: Path) -> None:
    """All sgx_sign what-if runs (designed, edge, synthetic TLS; metadata 1.3, 1.4, 1.5, 2.x, 3.2, 3.3)."""
    runs = [run for run in whatif_runs(fixtures_dir) if run.get("sgxmeta")]
    assert len(runs) >= 80
    versions = set()
    for number, run in enumerate(runs):
        path = tmp_path / f"run{number}.so"
        path.write_bytes(whatif_image(fixtures_dir, run))
        with SdkEnclave.open(path) as enclave:
            versions.update(enclave.metadata.versions)
            if "metadata_versions" in run:
                assert list(enclave.metadata.versions) == run["metadata_versions"]
            for block in enclave.blocks:
                assert enclave.measure(block.position).hex == run["mrenclave"], (run["enclave"], run["variant"], block.version_text)
            if run.get("stream"):
                reference = gzip.decompress((fixtures_dir / run["stream"]).read_bytes())
                assert_same_stream(enclave.plan(), reference, f"{run['enclave']} {run['variant']}")
        path.unlink()
    assert {"1.3", "1.4", "1.5", "2.1", "2.3", "2.4", "3.2", "3.3"} <= versions


@pytest.mark.fixtures
def test_layout_rows_and_regions(fixtures_dir: Path) -> None:
    with SdkEnclave.open(fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE" / "enclave.signed.so") as enclave:
        load = enclave.load()
        tcs_rows = [row for row in load.rows if row.name == "TCS"]
        assert len(tcs_rows) == 10 and [row.thread for row in tcs_rows] == list(range(10))
        assert tcs_rows[0].rva == 0x1B1000 and tcs_rows[1].repetition == 1
        # SPEC §3 example: TCS at 0x1B1000 holds OSSA 0x1B2000 and OFSBASE/OGSBASE 0x1C4000.
        page = next(run for run in load.plan.runs if run.offset == 0x1B1000).data
        assert struct.unpack_from("<Q", page, 16)[0] == 0x1B2000
        assert struct.unpack_from("<QQ", page, 48) == (0x1C4000, 0x1C4000)
        treatments = {row.name: row.treatment for row in load.rows}
        assert treatments == {"HEAP_MIN": "added", "HEAP_INIT": "added", "GUARD": "reserved", "STACK_MAX": "measured",
                              "STACK_MIN": "measured", "TCS": "measured", "SSA": "measured", "TD": "measured"}
        regions = load.regions
        assert regions[0].offset == 0 and regions[-1].end == load.plan.size
        assert all(a.end <= b.offset for a, b in zip(regions, regions[1:], strict=False))
        described = enclave.describe_offset(0x40D00 + 0x10)  # vaddr of g_global_data
        assert described.symbol == "g_global_data+0x10" and described.section
        assert enclave.describe_offset(0x1B1000).region == "thread 0 TCS"
    with SdkEnclave.open(fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest" / "enclave.signed.so") as enclave:
        rows = enclave.rows()
        kinds = {row.kind for row in rows}
        assert {"heap", "heap-reserved", "stack", "tcs", "ssa", "td", "guard"} - kinds == {"heap-reserved"}
        dynamic = [row for row in rows if row.name == "TCS_DYN"]
        assert len(dynamic) == 9 and all(row.treatment == "post-added" for row in dynamic)
        assert sum(1 for row in rows if row.name == "TCS" and row.removed_after_init) == 8


@pytest.mark.fixtures
def test_legacy_extra_page(fixtures_dir: Path) -> None:
    with SdkEnclave.open(fixtures_dir / "sdk" / "eternalray-enclave-hello" / "enclave.signed.so") as enclave:
        load = enclave.load()
        assert load.legacy_extra_pages == (0x232000,)
        extra = next(run for run in load.plan.runs if run.offset == 0x232000)
        assert extra.measured and extra.pages == 1 and extra.flags == 0x203
        assert load.image_end == 0x233000 == enclave.primary.layout[0].rva


def test_group_expansion_and_bounds() -> None:
    block = parse_sgxmeta(note(small_block())).primary
    rows = expand_layout(block)
    assert [row.repetition for row in rows] == [0] * 6 + [1] * 5
    assert rows[-1].rva == 0x17000 + 0x6000 and rows[-1].thread == 1
    assert row_kind("HEAP_MAX") == "heap-reserved" and row_kind("RSRV_MIN") == "reserved-memory"
    layout = small_layout()
    layout[-1] = dataclasses.replace(layout[-1], load_step=0x1000)  # smaller than the 6 pages it repeats
    with pytest.raises(SdkError, match="overlap"):
        expand_layout(parse_sgxmeta(note(small_block(layout=layout))).primary)
    layout[-1] = dataclasses.replace(layout[-1], load_step=0x6000, load_times=0xFFFFFFFF)
    started = time.perf_counter()
    with pytest.raises(SdkError, match="absurd"):
        expand_layout(parse_sgxmeta(note(small_block(layout=layout))).primary)
    assert time.perf_counter() - started < 1


@pytest.fixture(scope="module")
def h0mur0(fixtures_dir: Path):
    with load_elf(fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE" / "enclave.signed.so") as image:
        section = image.section_by_name(".note.sgxmeta")
        block = parse_sgxmeta(image.read(section.offset, section.size)).primary
        yield image, block


def _rebuilt(block, **changes):
    from core.sdk_metadata import build_block

    arguments = dict(
        version=(block.major, block.minor), enclave_size=block.enclave_size, layout=list(block.layout),
        sigstruct=block.sigstruct.to_bytes(), tcs_template=block.tcs_template(),
        patches=[(p.dst, block.blob(p.src, p.size, what="p")) for p in block.patches],
    )
    arguments.update(changes)
    return parse_sgxmeta(build_note([build_block(**arguments)], 0x6000)).primary


@pytest.mark.fixtures
@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"enclave_size": 0x1000001}, "not a power of two"),
        ({"enclave_size": 1 << 50}, "not a power of two"),
        ({"ssa_frame_size": 0}, "SSA frame size"),
        ({"patches": [(1 << 40, b"\x01")]}, "past the end of the file"),
    ],
    ids=["size-not-pow2", "size-absurd", "ssa-zero", "patch-past-file"],
)
def test_corrupt_values_raise(h0mur0, change: dict, fragment: str) -> None:
    image, block = h0mur0
    with pytest.raises(SdkError, match=fragment):
        build_sdk_plan(image, _rebuilt(block, **change))


@pytest.mark.fixtures
def test_absurd_page_counts_and_rvas(h0mur0) -> None:
    image, block = h0mur0
    layout = list(block.layout)
    layout[1] = dataclasses.replace(layout[1], page_count=0xFFFFFFFF)  # HEAP_INIT
    started = time.perf_counter()
    with pytest.raises(SdkError, match="outside the enclave|absurd"):
        build_sdk_plan(image, _rebuilt(block, layout=layout))
    layout = list(block.layout)
    layout[0] = dataclasses.replace(layout[0], rva=0xFFFFF000)
    with pytest.raises(SdkError, match="outside the enclave"):
        build_sdk_plan(image, _rebuilt(block, layout=layout))
    layout = list(block.layout)
    layout[1] = dataclasses.replace(layout[1], rva=0x1000)  # heap over the image: added twice
    load = build_sdk_plan(image, _rebuilt(block, layout=layout))
    assert any("both add the page" in text for text in load.notes)
    assert time.perf_counter() - started < 2


@pytest.mark.fixtures
def test_four_gib_layout_plan_is_cheap(fixtures_dir: Path, tmp_path: Path) -> None:
    """The largest layout a user may have: 4 GiB, ~900 000 EADDs; the plan builds fast (bench measures it)."""
    from bench.bench_sdk import write_big_enclave

    path = tmp_path / "big.so"
    write_big_enclave(fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE" / "enclave.signed.so", path, 900_000, 16)
    with SdkEnclave.open(path) as enclave:
        started = time.perf_counter()
        plan = enclave.plan()
        assert time.perf_counter() - started < 1.0
        counts = plan.counts()
        assert plan.size == 1 << 32 and counts["EADD"] > 900_000
        assert sum(run.pages for run in plan.runs if not run.measured) >= 900_000
        assert max(run.end for run in plan.runs) <= plan.size and len(plan.runs) < 200
        assert enclave.measurer.measure(plan).hex == Measurer().measure(enclave.plan(1)).hex


@pytest.mark.fixtures
def test_partial_first_page_gets_zeros_before_the_start(fixtures_dir: Path) -> None:
    """The RW segment of M21121 starts at 0x28ab0: page 0x28000 holds zeros before 0xab0, not file bytes."""
    with SdkEnclave.open(fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark" / "enclave.signed.so") as enclave:
        run = next(run for run in enclave.plan().runs if run.offset == 0x28000)
        assert run.data[:0xAB0] == bytes(0xAB0)
        segment = next(s for s in enclave.image.load_segments if s.vaddr == 0x28AB0)
        assert run.data[0xAB0 : 0xAB0 + 0x50] == bytes(enclave.image.read(segment.offset, 0x50))
        assert all(run.offset % PAGE_SIZE == 0 for run in enclave.plan().runs)
