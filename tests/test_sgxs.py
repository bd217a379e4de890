"""Fortanix ``.sgxs`` streams: fixtures, UNMEASRD records, partial pages, corrupt streams."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
from test_sdk_support import expected

from core.containers import measure_container, sgxs_container_from_bytes
from core.errors import ContainerError
from core.measure import Measurer
from core.records import (
    MeasurementPlan,
    PageRun,
    eadd_record,
    ecreate_record,
    eextend_header,
    iter_stream_chunks,
)
from core.sgxs import looks_like_sgxs, parse_sgxs, read_sgxs

STREAMS = (
    "fortanix/test_enclave.sgxs",
    "gramine-oracle/oracle.records.sgxs",
    "kernel-selftest/vectors/k1.sgxs",
    "kernel-selftest/vectors/k2.sgxs",
    "kernel-selftest/vectors/k3.sgxs",
    "sdk/M21121-simple_sgx_benchmark/sgx_sign-measurement.sgxs.gz",
    "sdk/h0mur0-IT-MPSI-with-TEE/sgx_sign-measurement.sgxs.gz",
    "sdk/sassiwalid-sgxPingPongTest/sgx_sign-measurement.sgxs.gz",
    "sdk/shangsuru-sign-enclave/sgx_sign-measurement.sgxs.gz",
)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", STREAMS)
def test_fixture_streams(fixtures_dir: Path, name: str) -> None:
    want = expected(fixtures_dir)["derived"][name]
    stream = read_sgxs(fixtures_dir / name)
    assert stream.record_counts == want["records"]
    assert (stream.size, stream.ssaframesize) == (want["size"], want["ssaframesize"])
    assert stream.plan is not None
    assert Measurer().measure(stream.plan).hex == want["mrenclave"] == stream.stream_digest().hex()
    # The plan reproduces the stream byte for byte.
    assert b"".join(bytes(chunk) for chunk in iter_stream_chunks(stream.plan)) == stream.data


@pytest.mark.fixtures
def test_gramine_stream_is_top_down(fixtures_dir: Path) -> None:
    stream = read_sgxs(fixtures_dir / "gramine-oracle" / "oracle.records.sgxs")
    assert not stream.canonical and any("after a higher page" in problem for problem in stream.problems)
    assert stream.pages[0].offset > stream.pages[-1].offset  # manifest first, at the top


@pytest.mark.fixtures
def test_ranges_like_sgxs_info(fixtures_dir: Path) -> None:
    stream = read_sgxs(fixtures_dir / "fortanix" / "test_enclave.sgxs")
    ranges = stream.ranges()
    assert [(r.start, r.pages) for r in ranges][:3] == [(0, 1), (0x1000, 1), (0x2000, 1)]
    tcs = next(r for r in ranges if r.flags == 0x100)
    assert tcs.start == 0x15000 and "TCS" in tcs.describe() and tcs.status == "measured"
    assert sum(r.pages for r in ranges) == 9


def _page(offset: int, flags: int, fill: int, *, tag: bytes = b"EEXTEND\x00", chunks=range(16)) -> bytes:
    out = eadd_record(offset, flags)
    for chunk in chunks:
        header = tag + eextend_header(offset + chunk * 256)[8:]
        out += header + bytes([fill]) * 256
    return out


def test_unmeasured_records_are_skipped() -> None:
    stream_bytes = ecreate_record(1, 0x4000) + _page(0, 0x203, 1) + _page(0x1000, 0x203, 2, tag=b"UNMEASRD")
    stream = parse_sgxs(stream_bytes)
    assert stream.counts == {"ECREATE": 1, "EADD": 2, "EEXTEND": 16, "UNMEASRD": 16}
    assert [page.status for page in stream.pages] == ["measured", "unmeasured data"]
    plan = stream.plan
    assert plan is not None and [run.measured for run in plan.runs] == [True, False]
    hashed = ecreate_record(1, 0x4000) + _page(0, 0x203, 1) + eadd_record(0x1000, 0x203)
    assert Measurer().measure(plan).mrenclave == hashlib.sha256(hashed).digest() == stream.stream_digest()


def test_partial_page_has_no_plan_but_a_digest() -> None:
    stream_bytes = ecreate_record(1, 0x4000) + _page(0, 0x203, 7, chunks=range(4))
    stream = parse_sgxs(stream_bytes)
    assert stream.plan is None and "partly measured" in (stream.plan_problem or "")
    assert stream.pages[0].status == "partial 4/16"
    container = sgxs_container_from_bytes(stream_bytes)
    measurement = measure_container(container)
    assert measurement.mrenclave == hashlib.sha256(stream_bytes).digest()


def test_out_of_order_chunks_have_no_plan() -> None:
    stream_bytes = ecreate_record(1, 0x4000) + _page(0, 0x203, 7, chunks=[1, 0, *range(2, 16)])
    stream = parse_sgxs(stream_bytes)
    assert stream.plan is None and "order" in (stream.plan_problem or "")
    assert stream.stream_digest() == hashlib.sha256(stream_bytes).digest()


def test_plan_round_trip() -> None:
    plan = MeasurementPlan(1, 0x10000, (
        PageRun(0, 1, 0x100, True, "tcs", data=bytes(range(256)) * 16),
        PageRun(0x1000, 3, 0x203, True, "data", fill=b"\xcc\xcc\xcc\xcc"),
        PageRun(0x4000, 2, 0x201, False, "heap"),
    ))
    data = b"".join(bytes(chunk) for chunk in iter_stream_chunks(plan))
    stream = parse_sgxs(data)
    assert stream.canonical and stream.plan is not None
    assert Measurer().measure(stream.plan).hex == Measurer().measure(plan).hex == hashlib.sha256(data).hexdigest()


def test_unsized_stream_cannot_be_measured() -> None:
    stream_bytes = b"UNSIZED\x00" + ecreate_record(1, 0x100)[8:] + _page(0, 0x203, 1)
    stream = parse_sgxs(stream_bytes)
    assert stream.unsized and stream.plan is None
    with pytest.raises(ContainerError, match="UNSIZED"):
        stream.stream_digest()
    with pytest.raises(ContainerError, match="UNSIZED"):
        measure_container(sgxs_container_from_bytes(stream_bytes))


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "too short"),
        (b"EADD\x00\x00\x00\x00" + bytes(56), "does not start with an ECREATE"),
        (ecreate_record(1, 0x2000) + b"EADD", "truncated record"),
        (ecreate_record(1, 0x2000) + eadd_record(0, 0x203) + eextend_header(0) + bytes(100), "truncated EEXTEND"),
        (ecreate_record(1, 0x2000) + b"BOGUSTAG" + bytes(56), "unknown record tag"),
        (ecreate_record(1, 0x2000) + ecreate_record(1, 0x2000), "second ECREATE"),
    ],
)
def test_corrupt_streams(data: bytes, fragment: str) -> None:
    with pytest.raises(ContainerError, match=fragment):
        parse_sgxs(data)


def test_findings_on_odd_streams() -> None:
    odd = (ecreate_record(1, 0x8000) + eadd_record(0x1001, 0x203) + eadd_record(0x1000, 0x203)
           + eextend_header(0x5000) + bytes(256) + eadd_record(0, 0x107))
    stream = parse_sgxs(odd)
    text = " ".join(stream.problems)
    assert "not page-aligned" in text and "added twice" in text and "never added" in text and "R/W/X" in text
    assert not stream.canonical


def test_gzip_and_detection(tmp_path: Path) -> None:
    data = ecreate_record(1, 0x2000) + _page(0, 0x203, 3)
    (tmp_path / "a.sgxs.gz").write_bytes(gzip.compress(data))
    assert read_sgxs(tmp_path / "a.sgxs.gz").data == data
    (tmp_path / "bad.sgxs.gz").write_bytes(b"\x1f\x8b" + bytes(30))
    with pytest.raises(ContainerError, match="gzip"):
        read_sgxs(tmp_path / "bad.sgxs.gz")
    with pytest.raises(ContainerError, match="cannot read"):
        read_sgxs(tmp_path / "missing.sgxs")
    assert looks_like_sgxs(data[:64]) and not looks_like_sgxs(b"\x7fELF")
