"""Property tests: corrupted metadata, streams, tokens, .oeinfo and configs raise our errors, never crash or hang.

Each property feeds mutated real inputs (or random bytes) to a parser and, where the parser
succeeds, to what consumes its result (the SDK loader plan, the stream plan). The only exception
allowed is :class:`~core.errors.EnsignError`; every example must finish quickly.
"""

from __future__ import annotations

import functools
import os
import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.elf import ElfImage, load_elf
from core.errors import EnsignError
from core.measure import Measurer
from core.oe import parse_oeinfo
from core.sdk_config import derive_layout, parse_config
from core.sdk_loader import build_sdk_plan
from core.sdk_metadata import parse_sgxmeta
from core.sgxs import parse_sgxs
from core.token import match_token, parse_token

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
# ENSIGN_FUZZ_EXAMPLES=5000 for a longer run; the default keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("ENSIGN_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
INTERESTING = st.sampled_from([0, 1, 2, 0x1000, 0x1006, 0x1009, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 40])

needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="shared fixtures folder ../shared/fixtures not present")


@functools.cache
def sdk_image(name: str) -> tuple[ElfImage, bytes]:
    image = load_elf(FIXTURES / "sdk" / name / "enclave.signed.so")
    section = image.section_by_name(".note.sgxmeta")
    return image, bytes(image.read(section.offset, section.size))


def _edit(data: bytes, edits: list[tuple[int, int, int]], limit: int) -> bytes:
    """Apply (offset, width, value) edits inside data[:limit]."""
    out = bytearray(data)
    for offset, width, value in edits:
        position = offset % max(1, limit - width)
        out[position : position + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    return bytes(out)


EDITS = st.lists(
    st.tuples(st.integers(0, 1 << 20), st.sampled_from([1, 2, 4, 8]), st.one_of(INTERESTING, st.integers(0, (1 << 64) - 1))),
    min_size=1,
    max_size=6,
)


def _bounded(function, *args) -> None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        function(*args)
    except EnsignError:
        pass
    assert time.perf_counter() - started < 5, "a corrupt input took more than 5 s"


def _parse_and_plan(image: ElfImage, note: bytes) -> None:
    metadata = parse_sgxmeta(note)
    for block in metadata.blocks:
        load = build_sdk_plan(image, block)
        assert load.plan.record_count >= 1
        assert sum(run.pages for run in load.plan.runs) <= load.plan.size // 4096


@needs_fixtures
@pytest.mark.fixtures
@SETTINGS
@given(name=st.sampled_from(["h0mur0-IT-MPSI-with-TEE", "sassiwalid-sgxPingPongTest", "eternalray-enclave-hello"]),
       edits=EDITS)
def test_corrupted_sdk_metadata(name: str, edits: list[tuple[int, int, int]]) -> None:
    image, note = sdk_image(name)
    first_block_end = 25 + struct.unpack_from("<I", note, 25 + 16)[0]
    _bounded(_parse_and_plan, image, _edit(note, edits, first_block_end))


@needs_fixtures
@pytest.mark.fixtures
@SETTINGS
@given(data=st.binary(min_size=0, max_size=4096), descsz=st.integers(0, (1 << 32) - 1))
def test_random_note_bytes(data: bytes, descsz: int) -> None:
    image, _note = sdk_image("h0mur0-IT-MPSI-with-TEE")
    header = struct.pack("<III", 13, descsz, 1) + b"sgx_metadata\x00"
    _bounded(_parse_and_plan, image, header + data)
    _bounded(parse_sgxmeta, data)


def _parse_and_measure_stream(data: bytes) -> None:
    stream = parse_sgxs(data)
    stream.ranges()
    if stream.plan is not None and stream.plan.stream_size < (16 << 20):
        Measurer().measure(stream.plan)
    elif not stream.unsized:
        stream.stream_digest()


@needs_fixtures
@pytest.mark.fixtures
@SETTINGS
@given(edits=EDITS, cut=st.integers(0, 25000))
def test_corrupted_sgxs(edits: list[tuple[int, int, int]], cut: int) -> None:
    data = (FIXTURES / "kernel-selftest" / "vectors" / "k1.sgxs").read_bytes()
    mutated = _edit(data, edits, len(data))[: len(data) - cut % 2000]
    _bounded(_parse_and_measure_stream, mutated)


@SETTINGS
@given(data=st.binary(min_size=0, max_size=3000))
def test_random_sgxs(data: bytes) -> None:
    _bounded(_parse_and_measure_stream, b"ECREATE\x00" + data)
    _bounded(_parse_and_measure_stream, data)


@SETTINGS
@given(data=st.one_of(st.binary(min_size=304, max_size=304), st.binary(min_size=1024, max_size=1024), st.binary(max_size=2000)))
def test_random_tokens(data: bytes) -> None:
    from core.sigstruct import Sigstruct

    try:
        token = parse_token(data)
    except EnsignError:
        assert len(data) not in (304, 1024)
        return
    token.to_dict()
    match_token(token, Sigstruct())


@SETTINGS
@given(data=st.binary(max_size=2100), size=st.sampled_from([1912, 1928, 1960, 0, 5000]))
def test_random_oeinfo(data: bytes, size: int) -> None:
    payload = struct.pack("<I", size) + data
    _bounded(lambda: parse_oeinfo(payload).to_dict())


XML_PIECES = st.sampled_from([
    "<EnclaveConfiguration>", "</EnclaveConfiguration>", "<TCSNum>", "</TCSNum>", "<HeapMaxSize>", "</HeapMaxSize>",
    "<StackMaxSize>", "</StackMaxSize>", "<TCSMaxNum>", "</TCSMaxNum>", "<ReservedMemMaxSize>", "</ReservedMemMaxSize>",
    "0x", "0", "1", "7", "9", "1000", "fff", "-", " ", "<!-- x -->", "<Bogus/>", "&amp;", "<", ">",
])


@needs_fixtures
@pytest.mark.fixtures
@SETTINGS
@given(pieces=st.lists(XML_PIECES, max_size=30), family=st.sampled_from(["1.8", "2.0", "2.2", "2.8", "2.13", "2.25"]))
def test_random_configs(pieces: list[str], family: str) -> None:
    image, _note = sdk_image("h0mur0-IT-MPSI-with-TEE")

    def run() -> None:
        parsed = parse_config("".join(pieces))
        derive_layout(image, parsed, family=family)

    _bounded(run)


@needs_fixtures
@pytest.mark.fixtures
@SETTINGS
@given(values=st.dictionaries(
    st.sampled_from(["TCSNum", "TCSMaxNum", "TCSMinPool", "HeapMaxSize", "HeapMinSize", "HeapInitSize",
                     "StackMaxSize", "StackMinSize", "ReservedMemMaxSize", "ReservedMemMinSize", "MiscSelect", "AMX"]),
    st.one_of(st.integers(0, 64), st.integers(0, 1 << 36).map(lambda v: v & ~0xFFF)),
    max_size=6,
))
def test_random_config_values(values: dict[str, int]) -> None:
    image, _note = sdk_image("sassiwalid-sgxPingPongTest")
    text = "<EnclaveConfiguration>" + "".join(f"<{k}>{v:#x}</{k}>" for k, v in values.items()) + "</EnclaveConfiguration>"

    def run() -> None:
        derived = derive_layout(image, parse_config(text), release="2.2.100")
        assert derived.enclave_size & (derived.enclave_size - 1) == 0

    _bounded(run)
