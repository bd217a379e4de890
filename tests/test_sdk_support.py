"""Helpers shared by the SDK/container tests (fixture paths, what-if runs, stream comparison).

Imported by the other ``test_sdk*.py``/``test_containers.py`` modules; its own tests check the helpers.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from core.records import CHUNK_SIZE, RECORD_SIZE, TAG_EEXTEND, MeasurementPlan, iter_stream_chunks

SDK_ENCLAVES = (
    "eternalray-enclave-hello",
    "sassiwalid-sgxPingPongTest",
    "shangsuru-sign-enclave",
    "M21121-simple_sgx_benchmark",
    "h0mur0-IT-MPSI-with-TEE",
)
"""The SDK fixture folders (SDK 1.8, 2.2, 2.13, 2.25, 2.26)."""

SIGNING_KEYS = {
    "eternalray-enclave-hello": "fortanix/sig1.key.pem",
    "sassiwalid-sgxPingPongTest": "fortanix/sig1.key.pem",
    "shangsuru-sign-enclave": "fortanix/sig1.key.pem",
    "M21121-simple_sgx_benchmark": "sdk/M21121-simple_sgx_benchmark/Enclave_private.pem",
    "h0mur0-IT-MPSI-with-TEE": "sdk/h0mur0-IT-MPSI-with-TEE/Enclave_private_test.pem",
}
"""Each SDK fixture's signing key (FIXTURES.md; sdk-whatif.json ``signing_key``)."""

SDK_RELEASES = {
    "eternalray-enclave-hello": "1.8.100.37739",
    "sassiwalid-sgxPingPongTest": "2.2.100.45311",
    "shangsuru-sign-enclave": "2.13.100.4",
    "M21121-simple_sgx_benchmark": "2.25.100.3",
    "h0mur0-IT-MPSI-with-TEE": "2.26.100.0",
}


@functools.cache
def expected(fixtures: Path) -> dict[str, Any]:
    """``expected.json``."""
    return json.loads((fixtures / "expected.json").read_text())


@functools.cache
def whatif_runs(fixtures: Path) -> list[dict[str, Any]]:
    """``sdk-whatif.json``: one dict per sgx_sign run."""
    return json.loads((fixtures / "sdk-whatif.json").read_text())


def whatif_image(fixtures: Path, run: dict[str, Any]) -> bytes:
    """The enclave file sgx_sign produced for a what-if run: ``enclave.so`` with the run's ``.note.sgxmeta``.

    Synthetic-TLS runs get their PT_GNU_STACK header rewritten as PT_TLS as ``image_note`` says.
    """
    data = bytearray((fixtures / "sdk" / run["enclave"] / "enclave.so").read_bytes())
    section = run["sgxmeta_section"]
    meta = gzip.decompress((fixtures / run["sgxmeta"]).read_bytes())
    assert len(meta) == section["size"]
    data[section["offset"] : section["offset"] + section["size"]] = meta
    if run["kind"] == "synthetic_tls":
        note = run["image_note"]
        memsz = int(re.search(r"p_memsz (0x[0-9a-f]+)", note).group(1), 16)  # type: ignore[union-attr]
        align = int(re.search(r"p_align (\d+)", note).group(1))  # type: ignore[union-attr]
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        phnum = struct.unpack_from("<H", data, 0x38)[0]
        headers = [struct.unpack_from("<IIQQQQQQ", data, phoff + 56 * i) for i in range(phnum)]
        stack = next(i for i, h in enumerate(headers) if h[0] == 0x6474E551)
        writable = next(h for h in headers if h[0] == 1 and h[1] & 2)
        struct.pack_into("<IIQQQQQQ", data, phoff + 56 * stack, 7, 4, writable[2], writable[3], writable[3],
                         min(0x40, writable[5]), memsz, align)
    return bytes(data)


def record_index_at(stream: bytes, byte_offset: int) -> int:
    """Index of the record (ECREATE = 0) that contains ``byte_offset`` of an SGXS stream."""
    position = index = 0
    while position < len(stream):
        length = RECORD_SIZE + (CHUNK_SIZE if stream[position : position + 8] == TAG_EEXTEND else 0)
        if position + length > byte_offset:
            return index
        position += length
        index += 1
    return index


def first_difference(plan: MeasurementPlan, reference: bytes) -> tuple[int, int] | None:
    """Compare ensign's record stream with a reference chunk by chunk.

    Returns:
        None when equal, else ``(record index, byte offset)`` of the first difference (a length
        difference counts at the shorter end).
    """
    position = 0
    for chunk in iter_stream_chunks(plan):
        data = bytes(chunk)
        other = reference[position : position + len(data)]
        if data != other:
            offset = next((i for i in range(min(len(data), len(other))) if data[i] != other[i]),
                          min(len(data), len(other)))
            return record_index_at(reference, position + offset), position + offset
        position += len(data)
    if position != len(reference):
        return record_index_at(reference, position), position
    return None


def assert_same_stream(plan: MeasurementPlan, reference: bytes, what: str) -> None:
    """Fail naming the first differing record when the streams differ."""
    difference = first_difference(plan, reference)
    if difference is not None:
        index, offset = difference
        record = plan.record_at(index) if index < plan.record_count else None
        pytest.fail(f"{what}: record stream differs from sgx_sign's at record {index} (byte {offset:#x}); "
                    f"ensign's record there: {record}")


# ---------------------------------------------------------------------------------------------


def test_record_index_at_counts_eextend_data() -> None:
    ecreate = b"ECREATE\x00" + bytes(56)
    eadd = b"EADD\x00\x00\x00\x00" + bytes(56)
    eextend = TAG_EEXTEND + bytes(56) + bytes(256)
    stream = ecreate + eadd + eextend + eextend
    assert record_index_at(stream, 0) == 0
    assert record_index_at(stream, 64) == 1
    assert record_index_at(stream, 128 + 319) == 2
    assert record_index_at(stream, 128 + 320) == 3


@pytest.mark.fixtures
def test_first_difference_names_the_record(fixtures_dir: Path) -> None:
    from core.sdk import SdkEnclave

    folder = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE"
    reference = gzip.decompress((folder / "sgx_sign-measurement.sgxs.gz").read_bytes())
    with SdkEnclave.open(folder / "enclave.signed.so") as enclave:
        plan = enclave.plan()
        assert first_difference(plan, reference) is None
        broken = bytearray(reference)
        broken[64 * 5 + 3] ^= 1  # inside the first EEXTEND's data of page 0 ... somewhere early
        index, offset = first_difference(plan, bytes(broken))  # type: ignore[misc]
        assert offset == 64 * 5 + 3 and index == record_index_at(reference, offset)
