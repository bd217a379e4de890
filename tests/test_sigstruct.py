"""Golden and property tests for core.sigstruct (SPEC §2, fixtures in ../shared/fixtures)."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParamError, SignatureError, SigstructFormatError
from core.sigstruct import (
    _FIELDS,
    HEADER,
    HEADER2,
    SIGSTRUCT_SIZE,
    DateInfo,
    Sigstruct,
    attribute_flag_names,
    binary_ymd_fields,
    build_sigstruct,
    compute_q1_q2,
    decode_date,
    encode_bcd_date,
    miscselect_names,
    pkcs1_sha256_encoded_message,
    verify_pkcs1_sha256_digest,
    xfrm_names,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"shared fixtures not found at {FIXTURES} (checkout without ../shared)"
)

# SPEC §1.6 MRENCLAVE(A), used by the §2.9 SIGSTRUCT vector.
SPEC_ENCLAVEHASH = bytes.fromhex("1f2cf80bd03ffd8bfac33f7cba128aff511c3af666b93bb66e7ef718418bdade")
SPEC_SIGNED_SHA256 = "21e4b356c1994fb6bc85279908374338cca42b7209fc6024920b8740ffe718ae"


def spec_vector_sigstruct() -> Sigstruct:
    """The unsigned SIGSTRUCT of SPEC §2.9."""
    return build_sigstruct(
        enclavehash=SPEC_ENCLAVEHASH,
        attributes_flags=0x4,
        attributes_xfrm=0x3,
        attributemask_flags=0xFF00FFFFFFFFFFFD,
        attributemask_xfrm=0xFFFFFFFFFFFFFF1B,
        date_raw=0x20240101,
    )


def _expected() -> dict[str, Any]:
    if not FIXTURES.is_dir():
        return {}
    return json.loads((FIXTURES / "expected.json").read_text())["derived"]


def _fixture_sigstructs() -> list[Any]:
    """(fixture path, offset of the SIGSTRUCT in the file, expected entry) for every fixture SIGSTRUCT.

    SDK-signed enclaves are left to the SDK container tests.
    """
    cases = []
    for name, entry in sorted(_expected().items()):
        if entry["kind"] == "sigstruct":
            cases.append(pytest.param(name, 0, entry, id=name))
        elif entry["kind"] == "oe-signed-enclave":
            offset = entry["oeinfo_offset"] + entry["sigstruct_offset_in_oeinfo"]
            cases.append(pytest.param(name, offset, entry["sigstruct"], id=name))
    return cases or [pytest.param(None, 0, {}, id="no-fixtures")]


def _read_sigstruct_bytes(name: str, offset: int) -> bytes:
    data = (FIXTURES / name).read_bytes()
    return data[offset : offset + SIGSTRUCT_SIZE]


# ---- the field table ---------------------------------------------------------------------------


def test_field_table_covers_1808_bytes_without_gaps() -> None:
    offset = 0
    for _name, field_offset, fmt in _FIELDS:
        assert field_offset == offset
        assert fmt.startswith("<") or fmt.endswith("s")
        offset += struct.calcsize(fmt)
    assert offset == SIGSTRUCT_SIZE == 1808


def test_field_offsets_match_spec_table() -> None:
    offsets = {name: offset for name, offset, _fmt in _FIELDS}
    assert offsets["vendor"] == 16
    assert offsets["date"] == 20
    assert offsets["modulus"] == 128
    assert offsets["exponent"] == 512
    assert offsets["signature"] == 516
    assert offsets["miscselect"] == 900
    assert offsets["attributes_flags"] == 928
    assert offsets["attributemask_xfrm"] == 952
    assert offsets["enclavehash"] == 960
    assert offsets["isvprodid"] == 1024
    assert offsets["isvsvn"] == 1026
    assert offsets["q1"] == 1040
    assert offsets["q2"] == 1424


def test_default_sigstruct_has_the_constants() -> None:
    raw = Sigstruct().to_bytes()
    assert raw[0:16] == HEADER == bytes.fromhex("06000000E10000000000010000000000")
    assert raw[24:40] == HEADER2 == bytes.fromhex("01010000600000006000000001000000")
    assert raw[512:516] == (3).to_bytes(4, "little")


# ---- SPEC §2.9 -----------------------------------------------------------------------------------


def test_spec_vector_signed_bytes() -> None:
    sigstruct = spec_vector_sigstruct()
    signed = sigstruct.signed_bytes()
    assert len(signed) == 256
    assert hashlib.sha256(signed).hexdigest() == SPEC_SIGNED_SHA256
    assert sigstruct.signed_sha256() == SPEC_SIGNED_SHA256
    raw = sigstruct.to_bytes()
    assert signed == raw[0:128] + raw[900:1028]
    assert raw[20:24] == bytes.fromhex("01012420")
    assert raw[904:908] == b"\xff\xff\xff\xff"
    assert raw[960:992] == SPEC_ENCLAVEHASH


def test_unsigned_sigstruct_checks_false_without_raising() -> None:
    sigstruct = spec_vector_sigstruct()
    assert not sigstruct.is_signed
    assert sigstruct.verify_signature() is False
    assert sigstruct.q1_ok() is False
    check = sigstruct.check()
    assert (check.signature_valid, check.q1_ok, check.q2_ok) == (False, False, False)
    assert any("not signed" in problem for problem in check.problems)
    assert sigstruct.header_problems() == []


# ---- fixtures: round trip and every expected value ---------------------------------------------


@pytest.mark.fixtures
@needs_fixtures
@pytest.mark.parametrize(("name", "offset", "expected"), _fixture_sigstructs())
def test_fixture_round_trip_and_fields(name: str, offset: int, expected: dict[str, Any]) -> None:
    raw = _read_sigstruct_bytes(name, offset)
    sigstruct = Sigstruct.from_bytes(raw)
    assert sigstruct.to_bytes() == raw
    as_dict = sigstruct.to_dict()
    json.dumps(as_dict)  # JSON-ready
    compared = {key: value for key, value in expected.items() if key != "kind"}  # 'kind' labels the file
    assert {key: as_dict[key] for key in compared} == compared
    assert sigstruct.check().valid
    assert sigstruct.mrsigner == hashlib.sha256(raw[128:512]).hexdigest()


@pytest.mark.fixtures
@needs_fixtures
def test_gramine_binary_date_fixture() -> None:
    raw = (FIXTURES / "gramine/victormassy-gramine_attribution/36c3785-helloworld.sig").read_bytes()
    assert raw[20:24] == bytes.fromhex("e6070b1c")
    info = Sigstruct.from_bytes(raw).date_info
    assert info == DateInfo(
        0x1C0B07E6,
        "binary-ymd",
        datetime.date(2022, 11, 28),
        "2022-11-28 (binary y/m/d, not BCD: older Gramine)",
    )


@pytest.mark.fixtures
@needs_fixtures
def test_intel_launch_enclave_names() -> None:
    sigstruct = Sigstruct.from_bytes((FIXTURES / "intel-le-prod-css/le_prod_css.6b694c05.bin").read_bytes())
    assert sigstruct.vendor == 0x8086
    assert attribute_flag_names(sigstruct.attributes_flags) == ["MODE64BIT", "EINITTOKEN_KEY"]
    assert sigstruct.to_dict()["attributes_flags_names"] == ["MODE64BIT", "EINITTOKEN_KEY"]
    assert sigstruct.header_problems() == []


@pytest.mark.fixtures
@needs_fixtures
def test_tampered_fixture_fails_verification() -> None:
    raw = bytearray((FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes())
    raw[1024] ^= 1  # ISVPRODID: signed
    check = Sigstruct.from_bytes(bytes(raw)).check()
    assert not check.signature_valid
    assert check.q1_ok and check.q2_ok  # Q1/Q2 only depend on s and n
    assert any("does not verify" in problem for problem in check.problems)

    raw = bytearray((FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes())
    raw[1040] ^= 1  # Q1
    check = Sigstruct.from_bytes(bytes(raw)).check()
    assert check.signature_valid and not check.q1_ok and check.q2_ok


# ---- fortanix sig1 RSA vectors --------------------------------------------------------------------


@pytest.mark.fixtures
@needs_fixtures
def test_fortanix_sig1_q1_q2() -> None:
    modulus = int.from_bytes((FIXTURES / "fortanix/sig1.key_n.bin").read_bytes(), "little")
    signature = int.from_bytes((FIXTURES / "fortanix/sig1.sig.bin").read_bytes(), "little")
    q1 = int.from_bytes((FIXTURES / "fortanix/sig1.q1.bin").read_bytes(), "little")
    q2 = int.from_bytes((FIXTURES / "fortanix/sig1.q2.bin").read_bytes(), "little")
    assert compute_q1_q2(signature, modulus) == (q1, q2)


@pytest.mark.fixtures
@needs_fixtures
def test_fortanix_sig1_prehashed_signature_verifies() -> None:
    modulus = int.from_bytes((FIXTURES / "fortanix/sig1.key_n.bin").read_bytes(), "little")
    signature = int.from_bytes((FIXTURES / "fortanix/sig1.sig.bin").read_bytes(), "little")
    digest = (FIXTURES / "fortanix/sig1.data.bin").read_bytes()
    assert verify_pkcs1_sha256_digest(modulus, signature, digest)
    assert not verify_pkcs1_sha256_digest(modulus, signature, bytes(32))


@pytest.mark.fixtures
@needs_fixtures
def test_fortanix_sigstruct_big_endian_signature_file() -> None:
    sigstruct = Sigstruct.from_bytes((FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes())
    big_endian = (FIXTURES / "fortanix/sig1.sigstruct.sha256.sig").read_bytes()
    assert sigstruct.to_bytes()[516:900] == big_endian[::-1]
    assert sigstruct.signature == int.from_bytes(big_endian, "big")
    assert sigstruct.signed_sha256() == (FIXTURES / "fortanix/sig1.sigstruct.sha256.bin").read_bytes().hex()


@pytest.mark.fixtures
@needs_fixtures
def test_with_signature_recomputes_q1_q2() -> None:
    original = Sigstruct.from_bytes((FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes())
    stripped = dataclasses.replace(original, modulus=0, exponent=0, signature=0, q1=0, q2=0)
    assert stripped.with_signature(original.modulus, original.signature).to_bytes() == original.to_bytes()


def test_with_signature_rejects_bad_values() -> None:
    sigstruct = spec_vector_sigstruct()
    with pytest.raises(SignatureError, match="3072-bit"):
        sigstruct.with_signature(12345, 1)
    modulus = (1 << 3071) + 1
    with pytest.raises(SignatureError, match="below the modulus"):
        sigstruct.with_signature(modulus, modulus)


def test_pkcs1_encoding_layout() -> None:
    encoded = pkcs1_sha256_encoded_message(bytes(range(32)))
    assert len(encoded) == 384
    assert encoded.startswith(b"\x00\x01\xff")
    assert encoded.endswith(bytes.fromhex("003031300d060960864801650304020105000420") + bytes(range(32)))
    with pytest.raises(SignatureError):
        pkcs1_sha256_encoded_message(b"short")


@pytest.mark.parametrize(
    ("modulus", "signature", "digest"),
    [
        (0, 0, bytes(32)),
        (1, 0, bytes(32)),
        (7, 9, bytes(32)),
        (1 << 4000, 5, bytes(32)),
        ((1 << 3071) + 1, 2, b"x"),
    ],
)
def test_verify_never_raises_on_garbage(modulus: int, signature: int, digest: bytes) -> None:
    assert verify_pkcs1_sha256_digest(modulus, signature, digest) is False


# ---- corrupt input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 1807, 1809, 4096])
def test_wrong_length_raises_format_error(size: int) -> None:
    with pytest.raises(SigstructFormatError, match=f"SIGSTRUCT is {size} bytes; expected 1808"):
        Sigstruct.from_bytes(bytes(size))


@pytest.mark.fixtures
@needs_fixtures
def test_truncated_fixture_raises_format_error() -> None:
    raw = (FIXTURES / "fortanix/test_enclave.sig").read_bytes()
    for size in (0, 16, 128, 900, 1040, 1807):
        with pytest.raises(SigstructFormatError):
            Sigstruct.from_bytes(raw[:size])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=4000))
def test_random_bytes_raise_only_format_error(data: bytes) -> None:
    try:
        sigstruct = Sigstruct.from_bytes(data)
    except SigstructFormatError:
        assert len(data) != SIGSTRUCT_SIZE
    else:
        assert sigstruct.to_bytes() == data


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=SIGSTRUCT_SIZE, max_size=SIGSTRUCT_SIZE))
def test_random_sigstructs_round_trip_and_check_without_raising(data: bytes) -> None:
    sigstruct = Sigstruct.from_bytes(data)
    assert sigstruct.to_bytes() == data
    assert Sigstruct.from_bytes(bytearray(data)) == sigstruct
    check = sigstruct.check()
    assert check.signature_valid is False
    json.dumps(sigstruct.to_dict())
    assert len(sigstruct.signed_bytes()) == 256


def test_field_values_are_range_checked() -> None:
    with pytest.raises(SigstructFormatError, match="ISVPRODID"):
        Sigstruct(isvprodid=0x10000)
    with pytest.raises(SigstructFormatError, match="ENCLAVEHASH must be 32 bytes"):
        Sigstruct(enclavehash=bytes(31))
    with pytest.raises(SigstructFormatError, match="MODULUS"):
        Sigstruct(modulus=1 << 3072)
    with pytest.raises(SigstructFormatError, match="VENDOR"):
        Sigstruct(vendor=-1)
    assert Sigstruct(enclavehash=bytearray(32)).enclavehash == bytes(32)


# ---- header problems and build validation -------------------------------------------------------------


def test_header_problems_lists_each_problem() -> None:
    sigstruct = dataclasses.replace(
        spec_vector_sigstruct(),
        header=bytes(16),
        header2=bytes(16),
        vendor=0x1234,
        exponent=65537,
        attributes_flags=0x5,
        attributemask_flags=0x0,
        miscselect=1,
        miscmask=0,
        reserved_992=b"\x01" + bytes(15),
    )
    problems = sigstruct.header_problems()
    assert any(problem.startswith("HEADER is") for problem in problems)
    assert any(problem.startswith("HEADER2 is") for problem in problems)
    assert "VENDOR is 0x1234; expected 0 or 0x8086" in problems
    assert "EXPONENT is 65537; SGX requires 3" in problems
    assert "ATTRIBUTES sets INIT; it must be clear in a SIGSTRUCT" in problems
    assert any("ATTRIBUTES.FLAGS" in problem and "INIT, MODE64BIT" in problem for problem in problems)
    assert any("MISCSELECT" in problem and "EXINFO" in problem for problem in problems)
    assert "reserved bytes at offset 992 are not zero" in problems
    assert len(problems) == 8


def test_build_refuses_init_and_unmasked_attributes() -> None:
    arguments: dict[str, Any] = {
        "enclavehash": SPEC_ENCLAVEHASH,
        "attributes_xfrm": 0x3,
        "attributemask_xfrm": 0xFFFFFFFFFFFFFF1B,
        "date_raw": 0x20240101,
    }
    with pytest.raises(ParamError, match="INIT"):
        build_sigstruct(attributes_flags=0x5, attributemask_flags=0xFFFFFFFFFFFFFFFF, **arguments)
    with pytest.raises(ParamError, match="DEBUG"):
        build_sigstruct(attributes_flags=0x6, attributemask_flags=0xFF00FFFFFFFFFFFD, **arguments)
    with pytest.raises(ParamError, match="VENDOR"):
        build_sigstruct(attributes_flags=0x4, attributemask_flags=0xFFFFFFFFFFFFFFFF, vendor=1, **arguments)
    with pytest.raises(SigstructFormatError, match="ENCLAVEHASH"):
        build_sigstruct(
            attributes_flags=0x4,
            attributemask_flags=0xFFFFFFFFFFFFFFFF,
            **{**arguments, "enclavehash": b"short"},
        )


def test_build_sets_every_argument() -> None:
    sigstruct = build_sigstruct(
        enclavehash=bytes(range(32)),
        attributes_flags=0x86,
        attributes_xfrm=0xE7,
        attributemask_flags=0xFFFFFFFFFFFFFFFF,
        attributemask_xfrm=0xFFFFFFFFFFFFFFFF,
        date_raw=0x20251231,
        isvprodid=7,
        isvsvn=3,
        vendor=0x8086,
        swdefined=0x10,
        miscselect=1,
        miscmask=0xFFFFFFFF,
        isvfamilyid=b"F" * 16,
        isvextprodid=b"E" * 16,
    )
    raw = sigstruct.to_bytes()
    assert struct.unpack_from("<IIII", raw, 16)[0:2] == (0x8086, 0x20251231)
    assert struct.unpack_from("<I", raw, 40) == (0x10,)
    assert raw[912:928] == b"F" * 16 and raw[1008:1024] == b"E" * 16
    assert struct.unpack_from("<HH", raw, 1024) == (7, 3)
    assert struct.unpack_from("<QQ", raw, 928) == (0x86, 0xE7)
    assert sigstruct.modulus == sigstruct.signature == sigstruct.q1 == sigstruct.q2 == 0


# ---- dates ---------------------------------------------------------------------------------------------------


def test_encode_bcd_date() -> None:
    assert encode_bcd_date(datetime.date(2024, 1, 1)) == 0x20240101
    assert encode_bcd_date(datetime.date(2016, 1, 9)) == 0x20160109
    assert encode_bcd_date(datetime.date(1999, 12, 31)) == 0x19991231


def test_decode_bcd_date() -> None:
    info = decode_date(0x20240101)
    assert info == DateInfo(0x20240101, "bcd", datetime.date(2024, 1, 1), "2024-01-01")


def test_decode_binary_ymd_date() -> None:
    assert binary_ymd_fields(0x1C0B07E6) == (2022, 11, 28)
    info = decode_date(0x1C0B07E6)
    assert info.kind == "binary-ymd"
    assert info.date == datetime.date(2022, 11, 28)
    assert info.text == "2022-11-28 (binary y/m/d, not BCD: older Gramine)"


def test_decode_zero_date() -> None:
    info = decode_date(0)
    assert (info.kind, info.date) == ("zero", None)
    assert "no date" in info.text


@pytest.mark.parametrize("raw", [0x12345678, 0x20241301, 0x20240230, 0xFFFFFFFF, 0x2024AB01])
def test_decode_invalid_date(raw: int) -> None:
    info = decode_date(raw)
    assert (info.kind, info.date) == ("invalid", None)
    assert info.text == f"0x{raw:08x} (not a valid date)"


@given(st.dates(min_value=datetime.date(1000, 1, 1)))
def test_bcd_date_round_trip(day: datetime.date) -> None:
    assert decode_date(encode_bcd_date(day)).date == day


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_decode_date_never_raises(raw: int) -> None:
    assert decode_date(raw).kind in {"bcd", "binary-ymd", "zero", "invalid"}


# ---- bit names -----------------------------------------------------------------------------------------


def test_attribute_flag_names() -> None:
    assert attribute_flag_names(0) == []
    assert attribute_flag_names(0x6) == ["DEBUG", "MODE64BIT"]
    assert attribute_flag_names(0x4F7) == [
        "INIT",
        "DEBUG",
        "MODE64BIT",
        "PROVISIONKEY",
        "EINITTOKEN_KEY",
        "CET",
        "KSS",
        "AEXNOTIFY",
    ]
    assert attribute_flag_names(0x8 | (1 << 63)) == ["reserved bit 3", "reserved bit 63"]


def test_xfrm_names() -> None:
    assert xfrm_names(0x3) == ["x87", "SSE"]
    assert xfrm_names(0x602E7) == [
        "x87",
        "SSE",
        "AVX",
        "AVX512_OPMASK",
        "AVX512_ZMM_HI256",
        "AVX512_HI16_ZMM",
        "PKRU",
        "AMX_TILECFG",
        "AMX_TILEDATA",
    ]
    assert xfrm_names(0x18 | 0x100) == ["MPX_BNDREGS", "MPX_BNDCSR", "bit 8"]


def test_miscselect_names() -> None:
    assert miscselect_names(0) == []
    assert miscselect_names(0x3) == ["EXINFO", "CPINFO"]
    assert miscselect_names(1 << 31) == ["bit 31"]
