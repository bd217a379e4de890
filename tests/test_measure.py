"""Measurement engine: golden vectors from SPEC §1.6 and the kernel/enarx/fortanix fixtures.

Every expected digest here comes from an independent source (the spec's worked examples,
../shared/fixtures/expected.json), never from ensign's own output.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import threading

import pytest

from core.errors import LayoutError, MeasurementCancelled
from core.measure import Measurer, measure
from core.records import (
    CHUNK_SIZE,
    PAGE_SIZE,
    MeasurementPlan,
    PageRun,
    content_key_for_bytes,
    iter_stream_chunks,
)


def _naive_stream(plan: MeasurementPlan) -> bytes:
    """The record stream built record by record with struct (independent of the numpy path)."""
    out = bytearray(struct.pack("<8sIQ44s", b"ECREATE\0", plan.ssaframesize, plan.size, b""))
    for run in plan.runs:
        for page in range(run.pages):
            offset = run.offset + page * PAGE_SIZE
            out += struct.pack("<8sQQ40s", b"EADD\0\0\0\0", offset, run.flags, b"")
            if run.measured:
                content = run.page_bytes(page)
                for chunk in range(16):
                    out += struct.pack("<8sQ48s", b"EEXTEND\0", offset + chunk * CHUNK_SIZE, b"")
                    out += content[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE]
    return bytes(out)


def test_spec_example_a() -> None:
    plan = MeasurementPlan(1, 0x2000, (PageRun(0, 1, 0x203, True, "a"),))
    # SHA-256 state after ECREATE only (SPEC §1.6)
    assert hashlib.sha256(plan.ecreate).hexdigest() == (
        "9e197c8837c6d65632dbdd59cd7df4f1a25b68d8e4e5eb6ca3b20b05311fecb8")
    assert measure(plan).hex == "1f2cf80bd03ffd8bfac33f7cba128aff511c3af666b93bb66e7ef718418bdade"


def test_spec_example_b() -> None:
    plan = MeasurementPlan(1, 0x2000, (PageRun(0, 1, 0x203, True, "a"), PageRun(0x1000, 1, 0x203, False, "b")))
    assert measure(plan).hex == "50f81944fc919441f95124930c9c154db837e3c6efcb41836b6044dfe4ee4773"


def test_spec_example_c() -> None:
    tcs = bytearray(PAGE_SIZE)
    struct.pack_into("<Q", tcs, 16, 0x1000)  # OSSA
    struct.pack_into("<I", tcs, 28, 1)  # NSSA
    struct.pack_into("<II", tcs, 64, 0xFFFFFFFF, 0xFFFFFFFF)  # FSLIMIT, GSLIMIT
    plan = MeasurementPlan(1, 0x2000, (
        PageRun(0, 1, 0x100, True, "tcs", data=bytes(tcs), key=content_key_for_bytes(bytes(tcs))),
        PageRun(0x1000, 1, 0x203, True, "cc", fill=b"\xcc" * 4),
    ))
    assert measure(plan).hex == "e186a40d76c3fa1e556ccd3531659cc8909329a99d1856a48950da7930eba642"


def test_spec_example_d() -> None:
    plan = MeasurementPlan(2, 0x4000, (PageRun(0, 1, 0x203, True, "a"),))
    assert measure(plan).hex == "05ad64c76f232978edeb83488d9c749dc723ac069ce7dc0436dbbf2913624b89"


def _plan_from_spec(image: bytes, spec_text: str, size: int, ssaframesize: int) -> MeasurementPlan:
    runs = []
    for line in spec_text.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue  # e.g. "src_size 5000"
        offset, length, flags, measured = (int(p, 16) for p in parts)
        content = image[offset:offset + length] if measured else None
        runs.append(PageRun(offset, length // PAGE_SIZE, flags, bool(measured), "spec", data=content,
                            key=content_key_for_bytes(content) if content else ()))
    return MeasurementPlan(ssaframesize, size, tuple(runs))


@pytest.mark.fixtures
@pytest.mark.parametrize("name", ["k1", "k2", "k3"])
def test_kernel_selftest_vectors(fixtures_dir, name: str) -> None:
    expected = json.loads((fixtures_dir / "expected.json").read_text())["derived"]
    stream_info = expected[f"kernel-selftest/vectors/{name}.sgxs"]
    sig_info = expected[f"kernel-selftest/vectors/{name}.sigstruct"]
    folder = fixtures_dir / "kernel-selftest" / "vectors"
    plan = _plan_from_spec((folder / f"{name}.image").read_bytes(), (folder / f"{name}.spec").read_text(),
                           stream_info["size"], stream_info["ssaframesize"])
    result = measure(plan)
    assert result.hex == stream_info["mrenclave"] == sig_info["enclavehash"]
    assert result.counts == stream_info["records"]
    # The exact stream, byte for byte, as the kernel selftest code produced it.
    stream = b"".join(bytes(chunk) for chunk in iter_stream_chunks(plan))
    assert stream == (folder / f"{name}.sgxs").read_bytes()
    out = io.BytesIO()
    Measurer().measure(plan, sgxs_out=out)
    assert out.getvalue() == stream


@pytest.mark.fixtures
def test_enarx_vector(fixtures_dir) -> None:
    expected = json.loads((fixtures_dir / "expected.json").read_text())["derived"]["enarx-sgx/encl.ss"]
    folder = fixtures_dir / "enarx-sgx"
    plan = _plan_from_spec((folder / "encl.bin").read_bytes(), (folder / "encl.spec").read_text(), 0x8000, 1)
    assert measure(plan).hex == expected["enclavehash"]


@pytest.mark.fixtures
def test_fortanix_sgxs_stream_rebuilt(fixtures_dir) -> None:
    """Rebuild the fortanix test enclave's stream from its records as a plan; same MRENCLAVE."""
    expected = json.loads((fixtures_dir / "expected.json").read_text())["derived"]["fortanix/test_enclave.sgxs"]
    data = (fixtures_dir / "fortanix" / "test_enclave.sgxs").read_bytes()
    _, ssa, size = struct.unpack_from("<8sIQ", data, 0)
    position, runs = 64, []
    while position < len(data):
        tag = data[position:position + 8]
        if tag == b"EADD\0\0\0\0":
            offset, flags = struct.unpack_from("<QQ", data, position + 8)
            position += 64
            chunks = []
            while data[position:position + 8] == b"EEXTEND\0":
                chunks.append(data[position + 64:position + 320])
                position += 320
            content = b"".join(chunks)
            measured = len(chunks) == 16
            runs.append(PageRun(offset, 1, flags, measured, "p", data=content if measured else None,
                                key=content_key_for_bytes(content)))
        else:  # pragma: no cover - the fixture has only EADD/EEXTEND after ECREATE
            raise AssertionError(tag)
    plan = MeasurementPlan(ssa, size, tuple(runs))
    assert measure(plan).hex == expected["mrenclave"] == hashlib.sha256(data).hexdigest()


def _random_plan(seed: int, size_pages: int = 600) -> MeasurementPlan:
    import random

    rng = random.Random(seed)
    runs, cursor = [], 0
    while cursor < size_pages - 20:
        pages = rng.randint(1, 12)
        measured = rng.random() < 0.6
        kind = rng.random()
        data = rng.randbytes(pages * PAGE_SIZE) if measured and kind < 0.5 else None
        fill = bytes([rng.randrange(256)]) * 4
        runs.append(PageRun(cursor * PAGE_SIZE, pages, rng.choice([0x201, 0x203, 0x205, 0x100]), measured, "r",
                            data=data, fill=fill, key=content_key_for_bytes(data) if data else ()))
        cursor += pages + rng.randint(0, 3)
    return MeasurementPlan(rng.randint(1, 4), 1 << 22, tuple(runs))


@pytest.mark.parametrize("seed", range(6))
def test_engine_matches_naive_stream(seed: int) -> None:
    plan = _random_plan(seed)
    assert measure(plan).hex == hashlib.sha256(_naive_stream(plan)).hexdigest()


def test_threaded_path_matches_naive(monkeypatch) -> None:
    import core.measure as measure_module

    monkeypatch.setattr(measure_module, "THREAD_THRESHOLD", 0)
    plan = _random_plan(42)
    assert Measurer().measure(plan).hex == hashlib.sha256(_naive_stream(plan)).hexdigest()


def test_incremental_resume_hashes_only_the_tail() -> None:
    base = _random_plan(7)
    measurer = Measurer()
    full = measurer.measure(base)
    assert full.resumed_at == 0 and full.hashed_bytes == base.stream_size
    changed_run = len(base.runs) - 3
    runs = list(base.runs)
    old = runs[changed_run]
    runs[changed_run] = PageRun(old.offset, old.pages, old.flags ^ 0x4 if old.flags != 0x100 else 0x203,
                                old.measured, old.region, data=old.data, fill=old.fill, key=old.key)
    edited = MeasurementPlan(base.ssaframesize, base.size, tuple(runs))
    again = measurer.measure(edited)
    assert again.hex == hashlib.sha256(_naive_stream(edited)).hexdigest()
    assert again.resumed_at > 0
    assert again.hashed_bytes < base.stream_size / 4
    # and the original again comes entirely from a checkpoint
    assert measurer.measure(base).hashed_bytes == 0


def test_partial_checkpoint_inside_eadd_run() -> None:
    heap = PageRun(0, 60000, 0x203, False, "heap")
    tail = PageRun(60000 * PAGE_SIZE + 0x100000, 1, 0x203, True, "t", fill=b"\x01" * 4)
    measurer = Measurer()
    measurer.measure(MeasurementPlan(1, 1 << 30, (heap, tail)))
    longer = MeasurementPlan(1, 1 << 30, (PageRun(0, 90000, 0x203, False, "heap"),
                                          PageRun(90000 * PAGE_SIZE, 1, 0x203, True, "t", fill=b"\x01" * 4)))
    result = measurer.measure(longer)
    assert result.hex == hashlib.sha256(_naive_stream(longer)).hexdigest()
    assert result.resumed_at > 0


def test_progress_and_cancel() -> None:
    plan = MeasurementPlan(1, 1 << 30, (PageRun(0, 40000, 0x203, True, "big", fill=b"\x07" * 4),))
    seen: list[tuple[int, int]] = []
    Measurer().measure(plan, on_progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (plan.stream_size, plan.stream_size)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(MeasurementCancelled):
        Measurer().measure(plan, cancel=cancel)


def test_record_at_matches_stream() -> None:
    plan = _random_plan(3, 200)
    stream = _naive_stream(plan)
    position = 0
    for index in range(plan.record_count):
        record = plan.record_at(index)
        tag = stream[position:position + 8]
        assert tag.rstrip(b"\0") == record.kind.encode()
        if record.kind != "ECREATE":
            assert struct.unpack_from("<Q", stream, position + 8)[0] == record.offset
        position += 320 if record.kind == "EEXTEND" else 64
    assert position == len(stream)


def test_plan_check_rules() -> None:
    with pytest.raises(LayoutError):
        MeasurementPlan(1, 0x3000, (PageRun(0, 1, 0x203, False, "a"),)).check()
    with pytest.raises(LayoutError):
        MeasurementPlan(1, 0x4000, (PageRun(0, 2, 0x203, False, "a"), PageRun(0x1000, 1, 0x203, False, "b"))).check()
    with pytest.raises(LayoutError):
        MeasurementPlan(1, 0x2000, (PageRun(0x1000, 2, 0x203, False, "a"),)).check()
    with pytest.raises(LayoutError):
        PageRun(0x10, 1, 0x203, False, "unaligned")
