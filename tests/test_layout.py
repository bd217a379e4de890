"""ensign's SCONE-style layout (docs/LAYOUT.md), checked against readelf and the rules."""

from __future__ import annotations

import re
import struct
import subprocess

import pytest

from core.enclave import EnclaveBinary
from core.layout import (
    GUARD_PAGES,
    PARAMS_MAGIC,
    VARIANT_EDMM,
    VARIANT_SGX1,
    parse_params_page,
    ssa_frame_pages,
)
from core.params import MIB, Params
from core.records import PAGE_SIZE


def _readelf_loads(path: str) -> list[tuple[int, int, int, int, str]]:
    """(offset, vaddr, filesz, memsz, flags) of every LOAD from `readelf -lW` (independent parser)."""
    text = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    loads = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            offset, vaddr, _paddr, filesz, memsz = (int(p, 16) for p in parts[1:6])
            flags = "".join(parts[6:-1])
            loads.append((offset, vaddr, filesz, memsz, flags))
    return loads


@pytest.fixture(scope="module")
def sample(sample_binary) -> EnclaveBinary:
    return EnclaveBinary.open(sample_binary)


def test_image_pages_are_exactly_the_load_pages(sample: EnclaveBinary, sample_binary) -> None:
    loads = _readelf_loads(str(sample_binary))
    base = min(vaddr for _, vaddr, _, _, _ in loads) & ~0xFFF
    expected_pages: dict[int, set[str]] = {}
    for _offset, vaddr, _filesz, memsz, flags in loads:
        for page in range(vaddr & ~0xFFF, (vaddr + memsz + 0xFFF) & ~0xFFF, PAGE_SIZE):
            expected_pages.setdefault(page - base, set()).update(flags)
    got = {}
    for run in sample.image_plan.runs:
        assert run.measured
        for index in range(run.pages):
            got[run.offset + index * PAGE_SIZE] = run.flags
    assert sorted(got) == sorted(expected_pages)
    for offset, letters in expected_pages.items():
        flags = got[offset]
        assert bool(flags & 1) == ("R" in letters or "W" in letters)
        assert bool(flags & 2) == ("W" in letters)
        assert bool(flags & 4) == ("E" in letters)
        assert flags >> 8 == 2  # PT_REG


def test_image_page_contents_match_file_and_zero_bss(sample: EnclaveBinary, sample_binary) -> None:
    data = sample_binary.read_bytes()
    loads = _readelf_loads(str(sample_binary))
    base = min(vaddr for _, vaddr, _, _, _ in loads) & ~0xFFF
    pages = {}
    for run in sample.image_plan.runs:
        for index in range(run.pages):
            pages[run.offset + index * PAGE_SIZE] = run.page_bytes(index)
    for offset, vaddr, filesz, memsz, _flags in loads:
        for address in range(vaddr, vaddr + memsz, 997):  # sample bytes across the segment
            page = pages[(address - base) & ~0xFFF]
            byte = page[(address - base) & 0xFFF]
            if address < vaddr + filesz:
                file_offset = offset + address - vaddr
                if 0x28 <= file_offset < 0x30 or 0x3C <= file_offset < 0x40:
                    assert byte == 0  # e_shoff / e_shnum / e_shstrndx are measured as zero
                else:
                    assert byte == data[file_offset]
            else:
                assert byte == 0


def test_elf_header_section_fields_measured_as_zero(sample: EnclaveBinary) -> None:
    first = sample.image_plan.runs[0]
    assert first.offset == 0
    page = first.page_bytes(0)
    assert page[:4] == b"\x7fELF"
    assert page[0x28:0x30] == bytes(8) and page[0x3C:0x40] == bytes(4)


def test_regions_in_address_order_and_sizes(sample: EnclaveBinary) -> None:
    params = Params(tcs=3, stack=256 * 1024, heap=8 * MIB, minheap=MIB)
    layout = sample.layout(params, VARIANT_SGX1)
    offsets = [r.offset for r in layout.regions]
    assert offsets == sorted(offsets)
    for a, b in zip(layout.regions, layout.regions[1:], strict=False):
        assert a.end <= b.offset, (a, b)
    assert layout.size & (layout.size - 1) == 0
    assert layout.regions[-1].kind == "params" and layout.regions[-1].end == layout.size
    assert layout.size // 2 < layout.params_offset - (GUARD_PAGES * PAGE_SIZE) or layout.size == 2 * PAGE_SIZE
    kinds = [r.kind for r in layout.regions if r.thread == 1]
    assert kinds == ["guard", "stack", "guard", "tcs", "ssa", "td"]
    heap = next(r for r in layout.regions if r.kind == "heap")
    assert heap.pages == 8 * MIB // PAGE_SIZE and heap.treatment == "added" and heap.flags == 0x203
    assert heap.offset == sample.image_plan.end
    layout.plan.check()
    counts = layout.plan.counts()
    image_pages = sum(run.pages for run in sample.image_plan.runs)
    td_pages = layout.thread.td_pages
    measured_pages = image_pages + 3 * (1 + 2 + td_pages) + 1
    assert counts["EEXTEND"] == 16 * measured_pages
    assert counts["EADD"] == measured_pages + 8 * MIB // PAGE_SIZE + 3 * (256 * 1024 // PAGE_SIZE)


def test_edmm_adds_only_minheap(sample: EnclaveBinary) -> None:
    params = Params(heap=64 * MIB, minheap=20 * MIB)
    sgx1 = sample.layout(params, VARIANT_SGX1)
    edmm = sample.layout(params, VARIANT_EDMM)
    assert sgx1.size == edmm.size
    assert sgx1.plan.counts()["EADD"] - edmm.plan.counts()["EADD"] == 44 * MIB // PAGE_SIZE
    reserved = next(r for r in edmm.regions if r.kind == "heap-reserved")
    assert reserved.pages == 44 * MIB // PAGE_SIZE and reserved.treatment == "reserved"
    assert parse_params_page(edmm.params_page)["variant"] == 1
    assert parse_params_page(sgx1.params_page)["variant"] == 0


def test_tcs_and_thread_data_contents(sample: EnclaveBinary) -> None:
    layout = sample.layout(Params(tcs=2), VARIANT_SGX1)
    tcs_runs = [run for run in layout.plan.runs if run.flags == 0x100]
    assert len(tcs_runs) == 2
    for index, run in enumerate(tcs_runs):
        page = bytes(run.data)
        state, flags, ossa, cssa, nssa, oentry, aep, ofs, ogs, fslimit, gslimit = struct.unpack_from(
            "<QQQIIQQQQII", page)
        assert (state, flags, cssa, aep) == (0, 0, 0, 0)
        assert nssa == 2 and fslimit == gslimit == 0xFFFFFFFF
        assert oentry == sample.image.entry - sample.image_plan.base_vaddr
        ssa = next(r for r in layout.regions if r.kind == "ssa" and r.thread == index)
        td = next(r for r in layout.regions if r.kind == "td" and r.thread == index)
        assert ossa == ssa.offset and ofs == ogs == td.end - PAGE_SIZE
        assert page[72:] == bytes(PAGE_SIZE - 72)
    # The sample has PT_TLS: its initial image sits right below the control block page.
    tls = sample.image.tls
    assert tls is not None
    td_run = next(run for run in layout.plan.runs if run.region == "thread 0 thread data")
    td = bytes(td_run.data)
    tcb = len(td) - PAGE_SIZE
    tls_size = layout.thread.tls_size
    assert td[tcb - tls_size:tcb - tls_size + tls.filesz] == bytes(sample.image.read(tls.offset, tls.filesz))
    assert struct.unpack_from("<Q", td, tcb)[0] == td_run.offset + tcb  # self offset
    assert td[tcb + 64:tcb + 72] == b"ENSIGNTD"


def test_params_page_holds_every_mrenclave_parameter(sample: EnclaveBinary) -> None:
    params = Params(stack=MIB, minheap=4 * MIB, heap=32 * MIB, tcs=5, mprotect=1, dlopen=2, xfrm=0x7)
    layout = sample.layout(params)
    fields = parse_params_page(layout.params_page)
    assert fields["magic"] == PARAMS_MAGIC
    assert (fields["stack"], fields["minheap"], fields["heap"], fields["tcs"]) == (MIB, 4 * MIB, 32 * MIB, 5)
    assert (fields["mprotect"], fields["dlopen"], fields["xfrm"]) == (1, 2, 0x7)
    assert fields["size"] == layout.size and fields["ssaframesize"] == layout.ssaframesize
    assert layout.plan.runs[-1].flags == 0x201 and layout.plan.runs[-1].offset == layout.size - PAGE_SIZE


def test_heap_rwx_with_mprotect_or_dlopen(sample: EnclaveBinary) -> None:
    for params, flags in ((Params(), 0x203), (Params(mprotect=1), 0x207), (Params(dlopen=1), 0x207),
                          (Params(dlopen=2), 0x207)):
        heap = next(r for r in sample.layout(params).regions if r.kind == "heap")
        assert heap.flags == flags


def test_ssa_frame_size_from_xfrm() -> None:
    assert ssa_frame_pages(0x3) == 1
    assert ssa_frame_pages(0xE7) == 1  # AVX-512: 2688 + 184 bytes
    assert ssa_frame_pages(0x2E7) == 1  # PKRU
    assert ssa_frame_pages(0x600E7) == 3  # AMX: 11008 + 184 bytes


def test_amx_changes_ssaframesize_and_mrenclave(sample: EnclaveBinary) -> None:
    plain = sample.layout(Params())
    amx = sample.layout(Params(xfrm=0x60003))
    assert plain.ssaframesize == 1 and amx.ssaframesize == 3
    assert next(r for r in amx.regions if r.kind == "ssa").pages == 6
    _, m1 = sample.measure(Params())
    _, m2 = sample.measure(Params(xfrm=0x60003))
    assert m1.mrenclave != m2.mrenclave


def test_sigstruct_only_parameters_do_not_change_mrenclave(sample: EnclaveBinary) -> None:
    _, base = sample.measure(Params())
    for params in (Params(isvsvn=3), Params(isvprodid=9), Params(production=True)):
        assert sample.measure(params)[1].mrenclave == base.mrenclave
    for params in (Params(tcs=9), Params(stack=4 * MIB), Params(heap=128 * MIB), Params(mprotect=1),
                   Params(dlopen=1), Params(xfrm=0x7)):
        assert sample.measure(params)[1].mrenclave != base.mrenclave


def test_tcs_edit_is_incremental(sample: EnclaveBinary) -> None:
    _, first = sample.measure(Params(tcs=8))
    _, second = sample.measure(Params(tcs=9))
    assert second.resumed_at > 0
    assert second.hashed_bytes < 0.05 * second.stream_size


def test_locate_names_section_and_symbol(sample: EnclaveBinary) -> None:
    symbol = next(s for s in sample.image.symbols if s.name == "main")
    location = sample.locate(symbol.value - sample.image_plan.base_vaddr + 4)
    assert location.section == ".text"
    assert location.symbol is not None and re.match(r"main(\+0x[0-9a-f]+)?$", location.symbol)
