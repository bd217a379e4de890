"""``Enclave.config.xml`` parsing (as sgx_sign) and layout derivation (SPEC §5, SDK-WHATIF.md §4)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from test_sdk_support import SDK_ENCLAVES, SDK_RELEASES, whatif_image, whatif_runs

from core.elf import load_elf
from core.errors import SdkError
from core.sdk import SdkEnclave
from core.sdk_config import (
    compare_layout,
    compare_with_metadata,
    derive_layout,
    load_config,
    parse_config,
    release_family,
)
from core.sdk_metadata import parse_sgxmeta


def config(body: str) -> str:
    return f"<EnclaveConfiguration>{body}</EnclaveConfiguration>"


def test_values_are_read_like_strtoull() -> None:
    parsed = parse_config(config("<HeapMaxSize>0x100000</HeapMaxSize><TCSNum> 010 </TCSNum><ISVSVN>42</ISVSVN>"
                                 "<ProdID>0</ProdID><StackMaxSize>0X40000</StackMaxSize>"))
    assert parsed.value("HeapMaxSize") == 0x100000
    assert parsed.value("TCSNum") == 8  # a leading 0 means octal
    assert parsed.value("ISVSVN") == 42 and parsed.value("ProdID") == 0 and parsed.value("StackMaxSize") == 0x40000
    assert parsed.given("TCSNum") and not parsed.given("TCSMaxNum")


def test_absent_elements_follow_the_sdk_rules() -> None:
    parsed = parse_config(config("<TCSNum>4</TCSNum><HeapMaxSize>0x200000</HeapMaxSize>"))
    assert parsed.value("TCSMaxNum") == 4 and parsed.value("HeapInitSize") == 0x200000
    assert parsed.value("TCSMinPool") == 1 and parsed.value("MiscMask") == 0xFFFFFFFF
    assert parsed.value("StackMinSize", "2.2") == 0x1000 and parsed.value("StackMinSize", "2.13") == 0x2000
    assert parse_config(config("")).value("HeapMaxSize", "1.8") == 0x100000
    settings = parsed.settings("1.8")
    assert "TCSMaxNum" not in settings and "HeapMaxSize" in settings


@pytest.mark.parametrize(
    "text, fragment",
    [
        (config("<Bogus>1</Bogus>"), "unknown element"),
        (config("<TCSNum>1</TCSNum><TCSNum>2</TCSNum>"), "appears twice"),
        (config("<TCSNum>-1</TCSNum>"), "no valid unsigned number"),
        (config("<TCSNum>12abc</TCSNum>"), "not a number"),
        (config("<TCSNum>09</TCSNum>"), "not a number"),  # 0-prefixed octal has no 9
        (config("<TCSNum></TCSNum>"), "no valid unsigned number"),
        (config("<ProdID>0x10000</ProdID>"), "above its maximum"),
        (config("<TCSNum><X>1</X></TCSNum>"), "must hold a number"),
        ("<Other><TCSNum>1</TCSNum></Other>", "root element"),
        ("<EnclaveConfiguration>", "not well-formed"),
        ('<!DOCTYPE x [<!ENTITY a "b">]>' + config(""), "DTD"),
    ],
)
def test_invalid_configs(text: str, fragment: str) -> None:
    with pytest.raises(SdkError, match=fragment):
        parse_config(text)


def test_release_families() -> None:
    assert release_family("1.8.100.37739") == "1.8"
    assert release_family("2.0.100.0") == release_family("2.1.102.1") == "2.0"
    assert release_family("2.1.103.1") == "2.2"
    assert release_family("2.2.100.45311") == "2.2"
    assert release_family("2.8.100.3") == "2.8"
    assert release_family("2.13.100.4") == "2.13"
    assert release_family("2.25.100.3") == release_family("2.26.100.0") == "2.25"
    assert release_family(None) == "2.25" and release_family("garbage") == "2.25"


@pytest.mark.fixtures
def test_h0mur0_config_derives_its_layout(fixtures_dir: Path) -> None:
    """SPEC §5.4's worked example: segments end 0x51000, HEAP_MIN @0x51000, cursor 0x9ED000 → SIZE 0x1000000."""
    folder = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE"
    with SdkEnclave.open(folder / "enclave.signed.so") as enclave:
        derived = derive_layout(enclave.image, load_config(folder / "Enclave.config.xml"), release=enclave.release)
        assert derived.family == "2.25" and derived.image_end == 0x51000 and derived.enclave_size == 0x1000000
        assert derived.primary[0].rva == 0x51000 and derived.primary[1].page_count == 255
        assert derived.primary[2].rva == 0x151000
        assert derived.primary[-1].name == "GUARD" and derived.primary[-1].rva == 0x9ED000
        assert derived.compat == enclave.primary.layout
        comparisons = compare_with_metadata(derived, enclave.metadata)
        assert [(c.version, c.compared_with, c.equal) for c in comparisons] == [("1.5", "compat", True)]


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_fixture_configs_match_their_metadata(fixtures_dir: Path, name: str) -> None:
    folder = fixtures_dir / "sdk" / name
    with SdkEnclave.open(folder / "enclave.signed.so") as enclave:
        assert enclave.release == SDK_RELEASES[name]
        derived = derive_layout(enclave.image, load_config(folder / "Enclave.config.xml"), release=enclave.release)
        results = compare_with_metadata(derived, enclave.metadata)
        assert results and all(item.equal for item in results), [item.differences for item in results]


@pytest.mark.fixtures
def test_every_whatif_config_derives_the_written_layout(fixtures_dir: Path, tmp_path: Path) -> None:
    """All 86 sgx_sign runs: every metadata block equals the derived layout; refused configs are refused."""
    checked = 0
    for number, run in enumerate(whatif_runs(fixtures_dir)):
        path = tmp_path / f"e{number}.so"
        if run.get("sgxmeta"):
            path.write_bytes(whatif_image(fixtures_dir, run))
        else:
            path.write_bytes((fixtures_dir / "sdk" / run["enclave"] / "enclave.so").read_bytes())
        with load_elf(path) as image:
            parsed = parse_config(run["config_xml"], origin=run["variant"])
            if run.get("rejected_by_sgx_sign"):
                with pytest.raises(SdkError):
                    derive_layout(image, parsed, release=SDK_RELEASES[run["enclave"]])
                continue
            derived = derive_layout(image, parsed, release=SDK_RELEASES[run["enclave"]])
            metadata = parse_sgxmeta(gzip.decompress((fixtures_dir / run["sgxmeta"]).read_bytes()))
            assert int(run["enclave_size"], 16) == derived.enclave_size
            assert run["ssa_frame_size"] == derived.ssa_frame_size
            for result in compare_with_metadata(derived, metadata):
                assert result.equal, (run["enclave"], run["variant"], result.version, result.differences[:3])
                checked += 1
        path.unlink()
    assert checked >= 150


@pytest.mark.fixtures
def test_differences_are_named(fixtures_dir: Path) -> None:
    other = load_config(fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark" / "Enclave.config.xml")
    with SdkEnclave.open(fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE" / "enclave.signed.so") as enclave:
        derived = derive_layout(enclave.image, other, release=enclave.release)
        (result,) = compare_with_metadata(derived, enclave.metadata)
        assert not result.equal
        text = "\n".join(result.differences)
        assert "entry 1:" in text and "HEAP_INIT 8191 pages" in text and "HEAP_INIT 255 pages" in text
        assert "THREAD_GROUP repeats 8 entries x0" in text and "x9" in text
    assert compare_layout(derived.primary, derived.primary) == []


@pytest.mark.fixtures
def test_refusals(fixtures_dir: Path) -> None:
    with load_elf(fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest" / "enclave.so") as image:
        with pytest.raises(SdkError, match="not known to sgx_sign of SDK 1.8"):
            derive_layout(image, parse_config(config("<TCSMaxNum>2</TCSMaxNum>")), family="1.8")
        with pytest.raises(SdkError, match="TCSMaxNum is smaller"):
            derive_layout(image, parse_config(config("<TCSNum>4</TCSNum><TCSMaxNum>2</TCSMaxNum>")), family="2.2")
        with pytest.raises(SdkError, match="multiple of 4 KiB"):
            derive_layout(image, parse_config(config("<HeapMaxSize>0x1001</HeapMaxSize>")), family="2.2")
        with pytest.raises(SdkError, match="UserRegionSize"):
            derive_layout(image, parse_config(config("<UserRegionSize>0x1000</UserRegionSize>")), family="2.25")
        with pytest.raises(SdkError, match="unknown SDK release family"):
            derive_layout(image, parse_config(config("")), family="3.0")
