"""Diagnosis of MRENCLAVE mismatches (issue 4): diff, explain (parameter search) and check.

Every mismatch is built on purpose from gcc-built programs: a byte patched in ``.data``,
heap 2G signed but 64M effective, tcs 8 vs 9, dlopen 0 vs 1, an XFRM that changes
SSAFRAMESIZE, and two unrelated programs. The diagnosis must name each cause.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from core.diagnose import explain, load_target, target_from_hex, target_from_signature
from core.diff import (
    KIND_CONTENT,
    KIND_FLAGS,
    KIND_ONLY_A,
    KIND_ONLY_B,
    diff_sides,
    open_side,
    side_for_binary,
)
from core.drift import check_drift
from core.enclave import EnclaveBinary, sign_enclave
from core.errors import ContainerError, MeasurementCancelled, ParamError
from core.layout import VARIANT_EDMM, VARIANT_SGX1
from core.measure import Measurer
from core.params import GIB, MIB, PARAMETERS, Params
from core.records import PAGE_SIZE, MeasurementPlan, PageRun, build_records
from core.search import (
    PrefixHasher,
    _small_run_records,
    build_space,
    enumerate_candidates,
    parse_choices,
    search_parameters,
)
from core.signing import KeySigner, load_debug_key
from tui.cli import main

DATE = _dt.date(2024, 5, 1)
NARROW = build_space(max_changed=1)  # single-parameter drifts: fast, enough for most tests


@pytest.fixture(scope="module")
def signer() -> KeySigner:
    return KeySigner(load_debug_key())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("diagnose")


def _copy(source: Path, target: Path) -> Path:
    shutil.copy2(source, target)
    return target


def _signed(workdir: Path, source: Path, name: str, params: Params, signer: KeySigner, *,
            sig_out: bool = False) -> Path:
    """A signed copy of ``source`` at workdir/name (and name.sig with ``sig_out``)."""
    target = workdir / name
    if not target.exists():
        binary = EnclaveBinary.open(_copy(source, workdir / f"{name}.unsigned"))
        sign_enclave(binary, params, signer, date=DATE, output=str(target),
                     sig_out=str(workdir / f"{name}.sig") if sig_out else None)
    return target


def _patch_symbol_byte(path: Path, symbol_name: str, delta: int = 4) -> int:
    """Flip one byte ``delta`` bytes into ``symbol_name``; return its vaddr."""
    binary = EnclaveBinary.open(path)
    symbol = next(s for s in binary.image.symbols if s.name == symbol_name)
    section = binary.image.section_for_vaddr(symbol.value)
    assert section is not None and section.name == ".data"
    file_offset = section.offset + symbol.value + delta - section.addr
    binary.image.close()
    data = bytearray(path.read_bytes())
    data[file_offset] ^= 0x5A
    path.write_bytes(bytes(data))
    return symbol.value + delta


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --------------------------------------------------------------------------------------------
# the prefix hasher and the search space
# --------------------------------------------------------------------------------------------


def test_prefix_hasher_matches_the_measurer_on_a_random_walk(gcc_static_binary) -> None:
    """Every reuse path (run prefix, heap/SSA extension, new ECREATE) gives the engine's MRENCLAVE."""
    binary = EnclaveBinary.open(gcc_static_binary)
    hasher, measurer = PrefixHasher(), Measurer()
    rng = random.Random(4)
    for _ in range(40):
        params = Params(heap=rng.choice([4, 8, 12, 64]) * MIB, minheap=rng.choice([0, 1, 4]) * MIB,
                        stack=rng.choice([64 << 10, 256 << 10]), tcs=rng.randint(1, 4),
                        mprotect=rng.choice([0, 1]), dlopen=rng.choice([0, 1, 2]),
                        xfrm=rng.choice([0x3, 0x60003]))
        plan = binary.layout(params, rng.choice([VARIANT_SGX1, VARIANT_EDMM])).plan
        assert hasher.digest(plan) == measurer.measure(plan).mrenclave, params


def test_prefix_hasher_extends_a_longer_fill_run() -> None:
    """A measured fill run that grows resumes after the old run and still hashes correctly."""
    def plan(pages: int) -> MeasurementPlan:
        return MeasurementPlan(1, 1 << 24, (PageRun(0, 3, 0x203, False, "a"),
                                            PageRun(3 * PAGE_SIZE, pages, 0x203, True, "b", fill=b"\1\2\3\4"),
                                            PageRun(1 << 23, 1, 0x201, True, "c", data=bytes(range(256)) * 16,
                                                    key=("c",))))
    hasher = PrefixHasher()
    for pages in (2, 5, 9, 4):
        assert hasher.digest(plan(pages)) == Measurer().measure(plan(pages)).mrenclave


def test_small_run_records_equal_the_numpy_builder() -> None:
    data = bytes(np.random.default_rng(1).integers(0, 256, 3 * PAGE_SIZE, dtype=np.uint8))
    for run in (PageRun(0x7000, 3, 0x203, True, "td", data=data, key=("x",)),
                PageRun(0x2000, 2, 0x203, True, "ssa"), PageRun(0x1000, 1, 0x100, True, "tcs", data=data[:PAGE_SIZE])):
        assert _small_run_records(run) == bytes(build_records(run, 0, run.pages))


def test_parse_choices_ranges_steps_and_errors() -> None:
    assert parse_choices("heap", "64M,2G") == (64 * MIB, 2 * GIB)
    assert parse_choices("stack", "1M-4M/1M") == (MIB, 2 * MIB, 3 * MIB, 4 * MIB)
    spread = parse_choices("heap", "1M-1G")
    assert {MIB, 64 * MIB, 100 * MIB, 256 * MIB, 1024 * MIB} <= set(spread) and max(spread) == GIB
    assert parse_choices("tcs", "1-4,9") == (1, 2, 3, 4, 9)
    assert parse_choices("xfrm", "0x3,0x60003") == (0x3, 0x60003)
    for name, text, fragment in (("heap", "5000", "multiple of 4K"), ("dlopen", "3", "one of"),
                                 ("xfrm", "0x8", "x87|SSE"), ("tcs", "4-1", "ends below"),
                                 ("heap", "lots", "not a size")):
        with pytest.raises(ParamError, match=fragment):
            parse_choices(name, text)
    with pytest.raises(ParamError, match="cannot search"):
        build_space({"isvsvn": "1"})


def test_candidates_are_bounded_and_nearest_first() -> None:
    space = build_space({"heap": "32M,64M,128M", "tcs": "1-3", "stack": "2M", "minheap": "20M", "xfrm": "0x3"},
                        fixed=["dlopen", "mprotect"], max_changed=1)
    values, total = enumerate_candidates(space, [Params()])
    assert values[0] == (64 * MIB, 20 * MIB, 2 * MIB, 8, 0, 0, 0x3)  # the baseline itself
    assert total == len(values) == 1 + 2 + 3  # baseline, two other heaps, three tcs values
    capped, total = enumerate_candidates(build_space(max_changed=2, max_candidates=50), [Params()])
    assert len(capped) == 50 and total > 1000
    assert all(minheap <= heap for heap, minheap, *_ in enumerate_candidates(build_space(), [Params()])[0])


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------


def test_diff_one_byte_in_data_names_section_symbol_and_chunk(workdir, gcc_static_binary, capsys) -> None:
    original = _copy(gcc_static_binary, workdir / "original")
    patched = _copy(gcc_static_binary, workdir / "patched")
    vaddr = _patch_symbol_byte(patched, "lookup_table", delta=36)
    report = diff_sides(side_for_binary(EnclaveBinary.open(original), Params()),
                        side_for_binary(EnclaveBinary.open(patched), Params()))
    assert not report.identical and not report.ecreate
    (stretch,) = report.stretches
    assert stretch.kind == KIND_CONTENT and stretch.pages == 1 and stretch.chunks == 1
    detail = stretch.details[0]
    offset = vaddr - EnclaveBinary.open(original).image_plan.base_vaddr
    assert detail.first_byte == offset and detail.chunks == [(offset % PAGE_SIZE) // 256]
    assert stretch.where_a.section == ".data" and stretch.where_a.symbol == "lookup_table+0x24"
    first = report.first
    assert first.record_a.kind == "EEXTEND" and first.record_a.offset == offset & ~0xFF
    assert first.index == stretch.record_a == stretch.record_b

    code, text = _run(capsys, "diff", str(original), str(patched))
    assert code == 1 and "section .data" in text and "lookup_table+0x24" in text and "content differs" in text
    code, text = _run(capsys, "diff", "--json", str(original), str(patched))
    data = json.loads(text)
    assert code == 1 and data["identical"] is False
    assert data["stretches"][0]["pages_detail"][0]["where"]["symbol"] == "lookup_table+0x24"
    assert data["first_divergence"]["record_a"]["kind"] == "EEXTEND"
    assert _run(capsys, "diff", str(original), str(original))[0] == 0


def test_diff_heap_2g_vs_64m_shows_ecreate_size(gcc_static_binary) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    report = diff_sides(side_for_binary(binary, Params(heap=2 * GIB)), side_for_binary(binary, Params()))
    (size,) = report.ecreate
    assert size.name == "SIZE" and size.a == 4 * GIB and size.b == 128 * MIB
    assert report.first.index == 0 and report.first.record_a.kind == "ECREATE"
    assert report.pages[KIND_ONLY_A] > 400_000  # the 2G heap's pages, grouped into a few stretches
    assert len(report.stretches) < 120 and len(report.groups()) < 20


def test_diff_tcs_8_vs_9_adds_one_thread_context(gcc_static_binary) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    report = diff_sides(side_for_binary(binary, Params(tcs=8)), side_for_binary(binary, Params(tcs=9)))
    assert not report.ecreate
    only_b = {s.where_b.region for s in report.stretches if s.kind == KIND_ONLY_B}
    assert only_b == {"thread 8 stack", "thread 8 TCS", "thread 8 SSA", "thread 8 thread data"}
    params_page = [s for s in report.stretches if s.kind == KIND_CONTENT]
    assert [s.where_a.region for s in params_page] == ["signed parameters"]
    assert report.first.record_a.region == "signed parameters" and report.first.record_b.region == "thread 8 stack"


def test_diff_dlopen_changes_heap_flags(gcc_static_binary, capsys) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    report = diff_sides(side_for_binary(binary, Params(dlopen=0)), side_for_binary(binary, Params(dlopen=1)))
    flags = [s for s in report.stretches if s.kind == KIND_FLAGS]
    assert len(flags) == 1 and flags[0].where_a.region == "heap" and flags[0].pages == 64 * MIB // PAGE_SIZE
    assert (flags[0].flags_a, flags[0].flags_b) == (0x203, 0x207)
    code, text = _run(capsys, "diff", str(gcc_static_binary), str(gcc_static_binary), "-A", "dlopen=0", "-B", "dlopen=1")
    assert code == 1 and "dlopen 0 (A) vs 1 (B)" in text and "REG RWX" in text


def test_diff_xfrm_changes_ssaframesize(gcc_static_binary) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    report = diff_sides(side_for_binary(binary, Params()), side_for_binary(binary, Params(xfrm=0x60003)))
    assert [(d.name, d.a, d.b) for d in report.ecreate] == [("SSAFRAMESIZE", 1, 3)]
    assert report.first.index == 0 and "SSAFRAMESIZE 1 vs 3" in report.first.reason


def test_diff_two_unrelated_programs_stays_readable(gcc_static_binary, gcc_pie_binary, capsys) -> None:
    report = diff_sides(side_for_binary(EnclaveBinary.open(gcc_static_binary), Params()),
                        side_for_binary(EnclaveBinary.open(gcc_pie_binary), Params()))
    assert not report.identical and report.first.index > 0
    assert report.pages[KIND_CONTENT] > 0 and report.pages[KIND_ONLY_A] > 0
    assert len(report.groups()) < 40  # hundreds of pages, a screenful of groups
    code, text = _run(capsys, "diff", "--limit", "5", str(gcc_static_binary), str(gcc_pie_binary))
    assert code == 1 and "by kind and place" in text and "--limit 0 or --json for all" in text
    assert len(text.splitlines()) < 80


def test_diff_against_an_sgxs_stream(workdir, gcc_static_binary, capsys) -> None:
    stream = workdir / "app.sgxs"
    assert _run(capsys, "hash", "--tcs", "2", "--sgxs-out", str(stream), str(gcc_static_binary))[0] == 0
    side = open_side(str(stream))
    binary = EnclaveBinary.open(gcc_static_binary)
    assert diff_sides(side_for_binary(binary, Params(tcs=2)), side).identical
    report = diff_sides(side_for_binary(binary, Params(tcs=3)), side)
    assert any(s.kind == KIND_ONLY_A and s.where_a.region == "thread 2 TCS" for s in report.stretches)
    assert _run(capsys, "diff", "--tcs", "2", str(gcc_static_binary), str(stream))[0] == 0


def test_diff_usage_errors(gcc_static_binary, workdir, capsys) -> None:
    code, text = _run(capsys, "diff", str(gcc_static_binary), str(gcc_static_binary), "-B", "heap")
    assert code == 2 and "NAME=VALUE" in text
    code, text = _run(capsys, "diff", str(gcc_static_binary), str(gcc_static_binary), "-B", "color=red")
    assert code == 2 and "unknown parameter 'color'" in text
    code, text = _run(capsys, "diff", "--signed", "a", str(gcc_static_binary), str(gcc_static_binary))
    assert code == 2 and "not signed by ensign" in text
    with pytest.raises(ContainerError, match="No such file"):
        open_side(str(workdir / "missing"))


# --------------------------------------------------------------------------------------------
# explain
# --------------------------------------------------------------------------------------------


def test_explain_names_signed_heap_2g_vs_effective_64m(workdir, gcc_static_binary, signer, capsys) -> None:
    app = _signed(workdir, gcc_static_binary, "heap2g", Params(heap=2 * GIB, isvsvn=3), signer)
    binary = EnclaveBinary.open(app)
    report = explain(binary, Params(), target_from_signature(binary), NARROW)
    assert report.signed_match == VARIANT_SGX1 and report.search is None
    by_name = {d.name: d for d in report.differences}
    assert by_name["heap"].affects_mrenclave and by_name["heap"].signed == "2G" and by_name["heap"].effective == "64M"
    assert not by_name["isvsvn"].affects_mrenclave
    code, text = _run(capsys, "explain", str(app))
    assert code == 1 and "heap: signed 2G, effective 64M (default) — changes MRENCLAVE" in text
    assert "isvsvn: signed 3, effective 0 (default) — changes only SIGSTRUCT fields" in text
    assert _run(capsys, "explain", "--heap", "2G", str(app))[0] == 0


def test_explain_search_finds_heap_2g_from_a_bare_sigstruct(workdir, gcc_static_binary, signer, capsys) -> None:
    _signed(workdir, gcc_static_binary, "heap2g-sig", Params(heap=2 * GIB), signer, sig_out=True)
    code, text = _run(capsys, "explain", "--json", "--sig", str(workdir / "heap2g-sig.sig"), str(gcc_static_binary))
    data = json.loads(text)
    assert code == 1 and data["explained"] and data["image"]["status"] == "unknown"
    assert data["search"]["match"]["params"]["heap"] == 2 * GIB and data["search"]["match"]["variant"] == "sgx1"
    assert data["match"]["heap"] == 2 * GIB and data["match"]["tcs"] == 8


@pytest.mark.parametrize(("signed", "name", "value"), [
    (Params(tcs=9), "tcs", 9),
    (Params(dlopen=1), "dlopen", 1),
    (Params(xfrm=0x60003), "xfrm", 0x60003),
])
def test_explain_search_finds_the_drifted_parameter(gcc_static_binary, signed, name, value) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    target_hash = binary.measure(signed)[1].mrenclave
    report = explain(binary, Params(), target_from_hex(target_hash.hex()), NARROW)
    assert report.search is not None and report.search.match is not None
    assert getattr(report.search.match, name) == value and report.search.variant == VARIANT_SGX1
    assert any(line.strip().startswith(f"{name}=") for line in report.conclusion)


def test_explain_edmm_target_and_two_changes(gcc_static_binary) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    signed = Params(tcs=4, minheap=32 * MIB)
    target_hash = binary.measure(signed, VARIANT_EDMM)[1].mrenclave
    report = explain(binary, Params(), target_from_hex(target_hash.hex()), build_space(max_changed=2))
    assert report.search.variant == VARIANT_EDMM
    assert (report.search.match.tcs, report.search.match.minheap) == (4, 32 * MIB)


def test_explain_patched_image_names_the_page(workdir, gcc_static_binary, signer) -> None:
    app = _signed(workdir, gcc_static_binary, "to-patch", Params(), signer)
    patched = _copy(app, workdir / "patched-after-signing")
    _patch_symbol_byte(patched, "lookup_table")
    binary = EnclaveBinary.open(patched)
    report = explain(binary, Params(), target_from_signature(binary), NARROW)
    assert report.image.status == "differs" and report.image.changed_pages == 1 and report.search is None
    assert ".data" in report.image.first.section and "lookup_table" in report.image.first.symbol
    assert "no parameters can reproduce it" in report.conclusion[0]


def test_explain_two_unrelated_programs(workdir, gcc_static_binary, gcc_pie_binary, signer, capsys) -> None:
    other = _signed(workdir, gcc_pie_binary, "pie-signed", Params(), signer)
    code, text = _run(capsys, "explain", "--sig", str(other), str(gcc_static_binary))
    assert code == 1 and "image differs" in text and "no parameters can reproduce it" in text
    target = load_target(str(other))
    report = explain(EnclaveBinary.open(gcc_static_binary), Params(), target_from_hex(next(iter(target.hashes)).hex()),
                     build_space({"heap": "32M-128M", "stack": "1M,2M"}, max_changed=1))
    assert report.search.match is None and report.search.tried > 50
    assert report.conclusion[0].startswith(f"None of {report.search.tried} candidates")
    assert "cannot be told from a bare hash" in report.conclusion[1]


def test_explain_against_an_sgxs_stream_reads_its_parameters(workdir, gcc_static_binary, capsys) -> None:
    stream = workdir / "tcs5.sgxs"
    assert _run(capsys, "hash", "--tcs", "5", "--sgxs-out", str(stream), str(gcc_static_binary))[0] == 0
    target = load_target(str(stream))
    assert target.signed_params.tcs == 5 and target.plan is not None
    report = explain(EnclaveBinary.open(gcc_static_binary), Params(), target, NARROW)
    assert report.signed_match == VARIANT_SGX1 and [d.name for d in report.differences] == ["tcs"]


def test_explain_bad_mrenclave(gcc_static_binary, capsys) -> None:
    code, text = _run(capsys, "explain", "--mrenclave", "abcd", str(gcc_static_binary))
    assert code == 2 and "64 hex digits" in text


# --------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def clean_env(monkeypatch):
    for spec in PARAMETERS:
        monkeypatch.delenv(spec.env, raising=False)
    return monkeypatch


def test_check_exit_0_with_matching_env_and_1_naming_scone_heap(workdir, gcc_static_binary, signer, clean_env,
                                                                capsys) -> None:
    app = _signed(workdir, gcc_static_binary, "check-app", Params(heap=128 * MIB, tcs=4), signer)
    clean_env.setenv("SCONE_HEAP", "128M")
    clean_env.setenv("SCONE_TCS", "4")
    clean_env.setenv("SCONE_ISVSVN", "7")  # SIGSTRUCT only: no drift
    code, text = _run(capsys, "check", str(app))
    assert code == 0 and text.startswith("OK:")
    clean_env.setenv("SCONE_HEAP", "256M")
    code, text = _run(capsys, "check", str(app))
    assert code == 1 and "SCONE_HEAP=256M: the runtime uses heap 256M, signed 128M" in text
    assert "SCONE_TCS" not in text.split("MRENCLAVE")[0]
    code, text = _run(capsys, "check", "--json", str(app))
    data = json.loads(text)
    assert code == 1 and [item["variable"] for item in data["drifting"]] == ["SCONE_HEAP"]
    signed_sgx1 = EnclaveBinary.open(app).signature.sgx1.enclavehash.hex()
    assert {m["variant"]: m["signed"] for m in data["mrenclave"]}["sgx1"] == signed_sgx1
    assert all(not m["matches"] for m in data["mrenclave"])


def test_check_unset_variable_and_changed_program(workdir, gcc_static_binary, signer) -> None:
    app = _signed(workdir, gcc_static_binary, "check-unset", Params(heap=128 * MIB), signer)
    report = check_drift(EnclaveBinary.open(app), {})
    assert not report.ok and [(v.variable, v.value, v.runtime) for v in report.drifting] == [("SCONE_HEAP", None, "64M")]
    patched = _copy(app, workdir / "check-patched")
    _patch_symbol_byte(patched, "lookup_table")
    report = check_drift(EnclaveBinary.open(patched), {"SCONE_HEAP": "128M"}, variants=[VARIANT_SGX1])
    assert not report.ok and not report.drifting and len(report.checks) == 1
    assert report.changed_page is not None and "lookup_table" in report.changed_page.symbol
    with pytest.raises(ParamError, match="SCONE_HEAP"):
        check_drift(EnclaveBinary.open(app), {"SCONE_HEAP": "lots"})


def test_search_reports_throughput_fields(gcc_static_binary) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    result = search_parameters(binary, {bytes(32): None}, [Params()],
                               build_space({"heap": "64M", "minheap": "20M", "stack": "2M", "xfrm": "0x3"},
                                           max_changed=7))
    assert result.match is None and result.tried == result.candidates == 2 * 64 * 6
    assert result.groups >= 1 and result.rate > 0 and result.hashed_bytes > 0


def test_progress_and_cancel_cross_as_plain_callables(gcc_static_binary) -> None:
    binary = EnclaveBinary.open(gcc_static_binary)
    calls: list[tuple[int, int]] = []
    report = diff_sides(side_for_binary(binary, Params()), side_for_binary(binary, Params(tcs=9)),
                        on_progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (report.compared_pages, report.compared_pages)
    assert all(done <= total for done, total in calls)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(MeasurementCancelled):
        diff_sides(side_for_binary(binary, Params()), side_for_binary(binary, Params(tcs=9)), cancel=cancel)
    with pytest.raises(MeasurementCancelled):
        search_parameters(binary, {bytes(32): None}, [Params()], NARROW, cancel=cancel)
    phases: set[str] = set()
    explain(binary, Params(), target_from_hex(bytes(32).hex()), build_space({"heap": "64M,128M"}, max_changed=1),
            on_progress=lambda phase, done, total: phases.add(phase))
    assert phases == {"measuring", "searching"}
