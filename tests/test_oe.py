"""Open Enclave: the SIGSTRUCT in ``.oeinfo`` at offset 144, properties, unsigned and corrupt sections."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_sdk_support import expected

from core.containers import KIND_OE, KIND_OE_UNSIGNED, open_any
from core.elf import load_elf
from core.errors import ContainerError
from core.oe import parse_oeinfo, read_oe_enclave

FOLDER = "openenclave/ChampionNan-sgx_test"


@pytest.mark.fixtures
def test_signed_oe_enclave(fixtures_dir: Path) -> None:
    want = expected(fixtures_dir)["derived"][f"{FOLDER}/enclave.signed.027b2f4"]
    with load_elf(fixtures_dir / FOLDER / "enclave.signed.027b2f4") as image:
        oe = read_oe_enclave(image)
    assert oe is not None and oe.signed
    assert oe.oeinfo_offset == want["oeinfo_offset"] and oe.sigstruct_offset == want["sigstruct_offset_in_oeinfo"]
    fields = oe.sigstruct.to_dict()
    assert {key: fields[key] for key in want["sigstruct"]} == want["sigstruct"]
    assert oe.header["num_heap_pages"] == 1024 and oe.header["num_tcs"] == 1
    assert oe.config["product_id"] == 1 and oe.config["security_version"] == 1  # sgx_test.conf
    assert oe.to_dict()["sigstruct_offset_in_oeinfo"] == 144
    with open_any(fixtures_dir / FOLDER / "enclave.signed.027b2f4") as container:
        assert container.kind == KIND_OE and container.sigstructs[0].label == "oeinfo"
        assert container.plan() is None and not container.measurable


@pytest.mark.fixtures
def test_unsigned_oe_enclave(fixtures_dir: Path) -> None:
    with open_any(fixtures_dir / FOLDER / "enclave.027b2f4") as container:
        assert container.kind == KIND_OE_UNSIGNED and container.sigstructs == () and not container.oe.signed


def _properties(size: int, sigstruct_offset: int) -> bytearray:
    data = bytearray(sigstruct_offset + 1808 + 8)
    struct.pack_into("<IIQQQ", data, 0, size, 2, 16, 8, 2)
    return data


def test_older_layouts_and_corruption() -> None:
    for size, offset in ((1912, 96), (1928, 112), (1960, 144)):
        data = _properties(size, offset)
        struct.pack_into("<HH", data, 32, 5, 6)
        data[offset : offset + 4] = b"\x06\x00\x00\x00"
        oe = parse_oeinfo(bytes(data))
        assert oe.sigstruct_offset == offset and oe.config["product_id"] == 5 and oe.signed
    with pytest.raises(ContainerError, match="not a known Open Enclave layout"):
        parse_oeinfo(bytes(_properties(2000, 144)))
    with pytest.raises(ContainerError, match="too small"):
        parse_oeinfo(b"\x00" * 10)
    with pytest.raises(ContainerError, match="ends before its SIGSTRUCT"):
        parse_oeinfo(bytes(_properties(1960, 144))[:500])
