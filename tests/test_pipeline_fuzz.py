"""Corrupted program headers through the whole pipeline (open → layout → plan): only our errors.

Each example rewrites one PT_LOAD field of a real gcc-built binary with an extreme or
random value; loading, deriving the layout and sizing the plan must either work or raise
an EnsignError, quickly, never anything else.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.enclave import EnclaveBinary
from core.errors import EnsignError
from core.params import Params

FIELDS = {"p_offset": (8, "Q"), "p_vaddr": (16, "Q"), "p_filesz": (32, "Q"), "p_memsz": (40, "Q"),
          "p_align": (48, "Q"), "p_flags": (4, "I"), "p_type": (0, "I")}
EXTREMES = [0, 1, 0xFFF, 0x1000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 40, 1 << 36, 0x400000]


@pytest.fixture(scope="module")
def original(gcc_static_binary) -> bytes:
    return Path(gcc_static_binary).read_bytes()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_program_headers_raise_only_our_errors(original: bytes, tmp_path_factory, data) -> None:
    phoff = struct.unpack_from("<Q", original, 0x20)[0]
    phnum = struct.unpack_from("<H", original, 0x38)[0]
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, phnum - 1))
        field = data.draw(st.sampled_from(sorted(FIELDS)))
        offset, fmt = FIELDS[field]
        limit = (1 << 64) - 1 if fmt == "Q" else (1 << 32) - 1
        value = data.draw(st.one_of(st.sampled_from([v & limit for v in EXTREMES]), st.integers(0, limit)))
        struct.pack_into("<" + fmt, mutated, phoff + index * 56 + offset, value)
    path = tmp_path_factory.mktemp("fuzz") / "app"
    path.write_bytes(bytes(mutated))
    try:
        binary = EnclaveBinary.open(path)
        layout = binary.layout(Params(tcs=1, heap=1 << 20, minheap=1 << 20, stack=1 << 16))
        assert layout.plan.record_count > 0
        layout.plan.check()
    except EnsignError as error:
        assert error.message and "\n" not in error.message
