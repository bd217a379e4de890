"""The SGX SIGSTRUCT: parse, build, serialise and check the 1808-byte enclave signature structure.

The layout is one field table (``_FIELDS``) checked at import time to cover all 1808 bytes
exactly (``../shared/sgx/SPEC.md`` §2.1). :class:`Sigstruct` keeps every byte, reserved ones
included, so ``Sigstruct.from_bytes(b).to_bytes() == b`` for any 1808-byte input. The quirks
live in one small helper each: the BCD date (:func:`encode_bcd_date`, :func:`decode_date`), the
little-endian RSA integers (:func:`_le_int`), Q1/Q2 (:func:`compute_q1_q2`) and the PKCS#1 v1.5
check (:func:`verify_pkcs1_sha256_digest`).

This module only does arithmetic and byte layout. It never loads keys or signs (that is
``core.signing``), never prints, and never imports ``textual``/``rich``. Bad input raises
:class:`~core.errors.SigstructFormatError` (structure) or :class:`~core.errors.ParamError`
(values a signer must refuse); verification never raises on garbage, it answers ``False``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from core.errors import ParamError, SignatureError, SigstructFormatError

SIGSTRUCT_SIZE = 1808
"""Size of a SIGSTRUCT in bytes."""

MODULUS_SIZE = 384
"""Size in bytes of MODULUS, SIGNATURE, Q1 and Q2 (RSA-3072)."""

SGX_EXPONENT = 3
"""The only RSA public exponent EINIT accepts."""

HEADER = bytes.fromhex("06000000e10000000000010000000000")
"""Constant SIGSTRUCT.HEADER (SDM); bytes 12..15 are the SDK's ``type`` word, always 0 in practice."""

HEADER2 = bytes.fromhex("01010000600000006000000001000000")
"""Constant SIGSTRUCT.HEADER2 (SDM)."""

VENDOR_INTEL = 0x8086
"""VENDOR value of Intel-signed enclaves; everyone else writes 0."""

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
"""DER DigestInfo prefix for SHA-256 in EMSA-PKCS1-v1_5 (RFC 8017 §9.2 note 1)."""

ZERO16 = bytes(16)
"""Sixteen zero bytes: default ISVFAMILYID / ISVEXTPRODID."""

# --------------------------------------------------------------------------------------------
# The field table. One row per field: (name, offset in bytes, struct format). "Ns" rows are raw
# bytes; rows named in _LE_INTEGER_FIELDS are 384-byte little-endian integers kept as ``int``.
# --------------------------------------------------------------------------------------------

_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("header", 0, "16s"),
    ("vendor", 16, "<I"),
    ("date", 20, "<I"),
    ("header2", 24, "16s"),
    ("swdefined", 40, "<I"),
    ("reserved_44", 44, "84s"),
    ("modulus", 128, "384s"),
    ("exponent", 512, "<I"),
    ("signature", 516, "384s"),
    ("miscselect", 900, "<I"),
    ("miscmask", 904, "<I"),
    ("cet_attributes", 908, "<B"),
    ("cet_attributes_mask", 909, "<B"),
    ("reserved_910", 910, "2s"),
    ("isvfamilyid", 912, "16s"),
    ("attributes_flags", 928, "<Q"),
    ("attributes_xfrm", 936, "<Q"),
    ("attributemask_flags", 944, "<Q"),
    ("attributemask_xfrm", 952, "<Q"),
    ("enclavehash", 960, "32s"),
    ("reserved_992", 992, "16s"),
    ("isvextprodid", 1008, "16s"),
    ("isvprodid", 1024, "<H"),
    ("isvsvn", 1026, "<H"),
    ("reserved_1028", 1028, "12s"),
    ("q1", 1040, "384s"),
    ("q2", 1424, "384s"),
)

_LE_INTEGER_FIELDS = frozenset({"modulus", "signature", "q1", "q2"})

_RESERVED_FIELDS = ("reserved_44", "reserved_910", "reserved_992", "reserved_1028")

_STRUCTS: tuple[tuple[str, int, struct.Struct], ...] = tuple(
    (name, offset, struct.Struct(fmt)) for name, offset, fmt in _FIELDS
)

SIGNED_RANGES: tuple[tuple[int, int], ...] = ((0, 128), (900, 1028))
"""Byte ranges [start, end) covered by the signature: header ‖ body, 256 bytes (SPEC §2.2)."""


def _check_field_table() -> None:
    """Fail at import if the field table has a gap, an overlap, or does not end at 1808."""
    expected_offset = 0
    for name, offset, fmt in _FIELDS:
        if not (fmt.startswith("<") or fmt.endswith("s")):
            raise RuntimeError(f"SIGSTRUCT field {name}: format {fmt!r} is not explicitly little-endian")
        if offset != expected_offset:
            raise RuntimeError(f"SIGSTRUCT field {name} at {offset}; expected {expected_offset}")
        expected_offset += struct.calcsize(fmt)
    if expected_offset != SIGSTRUCT_SIZE:
        raise RuntimeError(f"SIGSTRUCT field table covers {expected_offset} bytes; expected {SIGSTRUCT_SIZE}")
    if sum(end - start for start, end in SIGNED_RANGES) != 256:
        raise RuntimeError("SIGSTRUCT signed ranges do not add up to 256 bytes")


_check_field_table()


def _le_int(data: bytes) -> int:
    """Read a little-endian unsigned integer (SIGSTRUCT stores n, s, Q1, Q2 least byte first)."""
    return int.from_bytes(data, "little")


# --------------------------------------------------------------------------------------------
# Arithmetic helpers (SPEC §2.2, §2.3)
# --------------------------------------------------------------------------------------------


def pkcs1_sha256_encoded_message(digest: bytes) -> bytes:
    """Build the 384-byte EMSA-PKCS1-v1_5 encoding of a SHA-256 digest.

    Args:
        digest: the 32-byte SHA-256 digest of the signed message.

    Returns:
        ``00 01 FF..FF 00 ‖ DigestInfo ‖ digest``, 384 bytes.

    Raises:
        SignatureError: the digest is not 32 bytes.
    """
    if len(digest) != 32:
        raise SignatureError(f"a SHA-256 digest is 32 bytes, not {len(digest)}")
    tail = SHA256_DIGEST_INFO + digest
    return b"\x00\x01" + b"\xff" * (MODULUS_SIZE - 3 - len(tail)) + b"\x00" + tail


def verify_pkcs1_sha256_digest(modulus: int, signature: int, digest: bytes) -> bool:
    """Check an RSA e=3 PKCS#1 v1.5 SHA-256 signature given the digest of the message.

    Args:
        modulus: RSA modulus n as an integer.
        signature: signature s as an integer (already converted from its little-endian bytes).
        digest: 32-byte SHA-256 digest of the signed message.

    Returns:
        True when ``s**3 mod n`` is exactly the PKCS#1 v1.5 encoding of ``digest``; False for any
        other input, however malformed (zero modulus, s >= n, wrong digest size, ...).
    """
    if modulus <= 1 or not 0 < signature < modulus or len(digest) != 32:
        return False
    if modulus.bit_length() > MODULUS_SIZE * 8:
        return False
    return pow(signature, SGX_EXPONENT, modulus) == int.from_bytes(
        pkcs1_sha256_encoded_message(digest), "big"
    )


def compute_q1_q2(signature: int, modulus: int) -> tuple[int, int]:
    """Compute the EINIT helper values Q1 and Q2 (SPEC §2.3).

    Args:
        signature: signature s as an integer.
        modulus: RSA modulus n as an integer (> 0).

    Returns:
        ``(Q1, Q2)`` with Q1 = floor(s² / n) and Q2 = floor(((s² mod n) · s) / n).

    Raises:
        SignatureError: the modulus is not positive.
    """
    if modulus <= 0:
        raise SignatureError("cannot compute Q1/Q2 for a zero modulus")
    square = signature * signature
    q1, remainder = divmod(square, modulus)
    q2 = (remainder * signature) // modulus
    return q1, q2


def mrsigner_of_modulus_bytes(modulus: int) -> bytes:
    """MRSIGNER of a modulus: SHA-256 of its 384 little-endian bytes as stored in SIGSTRUCT (SPEC §2.4).

    Args:
        modulus: RSA-3072 modulus n as an integer.

    Returns:
        The 32-byte digest.

    Raises:
        SignatureError: the modulus does not fit in 384 bytes or is negative.
    """
    if not 0 <= modulus < 1 << (MODULUS_SIZE * 8):
        raise SignatureError(f"a SIGSTRUCT modulus is at most {MODULUS_SIZE * 8} bits")
    return hashlib.sha256(modulus.to_bytes(MODULUS_SIZE, "little")).digest()


# --------------------------------------------------------------------------------------------
# DATE (one quirk, two helpers)
# --------------------------------------------------------------------------------------------

DateKind = Literal["bcd", "binary-ymd", "zero", "invalid"]


@dataclass(frozen=True, slots=True)
class DateInfo:
    """What a raw SIGSTRUCT.DATE word means.

    ``kind`` is ``'bcd'`` (the standard yyyymmdd in BCD), ``'binary-ymd'`` (older Gramine: year
    u16 at byte 20, month at 22, day at 23, all binary), ``'zero'`` or ``'invalid'``.
    """

    raw: int  # the u32 at offset 20 (SIGSTRUCT.DATE)
    kind: DateKind  # how ``raw`` was understood
    date: datetime.date | None  # the calendar date, None for 'zero'/'invalid'
    text: str  # one-line display text, e.g. "2024-01-01"


def encode_bcd_date(day: datetime.date) -> int:
    """Encode a calendar date as the BCD yyyymmdd word SIGSTRUCT.DATE expects.

    Args:
        day: the date (2024-01-01 → 0x20240101, stored as bytes ``01 01 24 20``).

    Returns:
        The u32 value.
    """
    return int(f"{day.year:04d}{day.month:02d}{day.day:02d}", 16)


def _bcd_date(raw: int) -> datetime.date | None:
    """Read ``raw`` as BCD yyyymmdd; None unless every nibble is a decimal digit and the date exists."""
    digits = f"{raw:08x}"
    if not digits.isdigit():
        return None
    try:
        return datetime.date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def binary_ymd_fields(raw: int) -> tuple[int, int, int]:
    """Split ``raw`` the way older Gramine wrote it: ``struct.pack('<HBB', year, month, day)`` at 20.

    Args:
        raw: the DATE u32 (as read little-endian).

    Returns:
        ``(year, month, day)``; e.g. 0x1c0b07e6 (bytes ``e6 07 0b 1c``) → (2022, 11, 28).
    """
    return raw & 0xFFFF, (raw >> 16) & 0xFF, raw >> 24


def decode_date(raw: int) -> DateInfo:
    """Interpret a raw SIGSTRUCT.DATE word for display; never raises for a u32.

    Args:
        raw: the DATE u32.

    Returns:
        A :class:`DateInfo`. BCD wins when both readings are valid dates; a binary y/m/d date is
        accepted only for years 1970..2200 so that random words are not presented as dates.
    """
    if raw == 0:
        return DateInfo(raw, "zero", None, "00000000 (no date)")
    bcd = _bcd_date(raw)
    if bcd is not None:
        return DateInfo(raw, "bcd", bcd, bcd.isoformat())
    year, month, day = binary_ymd_fields(raw)
    if 1970 <= year <= 2200:
        try:
            binary = datetime.date(year, month, day)
        except ValueError:
            pass
        else:
            return DateInfo(
                raw, "binary-ymd", binary, f"{binary.isoformat()} (binary y/m/d, not BCD: older Gramine)"
            )
    return DateInfo(raw, "invalid", None, f"0x{raw:08x} (not a valid date)")


# --------------------------------------------------------------------------------------------
# Bit names (SPEC §2.6)
# --------------------------------------------------------------------------------------------

FLAG_INIT = 0x1
FLAG_DEBUG = 0x2
FLAG_MODE64BIT = 0x4
FLAG_PROVISIONKEY = 0x10
FLAG_EINITTOKEN_KEY = 0x20
FLAG_CET = 0x40
FLAG_KSS = 0x80
FLAG_AEXNOTIFY = 0x400

ATTRIBUTE_FLAG_NAMES: dict[int, str] = {
    0: "INIT",
    1: "DEBUG",
    2: "MODE64BIT",
    4: "PROVISIONKEY",
    5: "EINITTOKEN_KEY",
    6: "CET",
    7: "KSS",
    10: "AEXNOTIFY",
}
"""ATTRIBUTES.FLAGS bit number → SDM name."""

XFRM_NAMES: dict[int, str] = {
    0: "x87",
    1: "SSE",
    2: "AVX",
    3: "MPX_BNDREGS",
    4: "MPX_BNDCSR",
    5: "AVX512_OPMASK",
    6: "AVX512_ZMM_HI256",
    7: "AVX512_HI16_ZMM",
    9: "PKRU",
    17: "AMX_TILECFG",
    18: "AMX_TILEDATA",
}
"""ATTRIBUTES.XFRM bit number → XCR0 component name."""

MISCSELECT_NAMES: dict[int, str] = {0: "EXINFO", 1: "CPINFO"}
"""MISCSELECT bit number → name."""


def _set_bits(value: int) -> Iterable[int]:
    """Yield the numbers of the set bits of ``value``, lowest first."""
    bit = 0
    while value >> bit:
        if (value >> bit) & 1:
            yield bit
        bit += 1


def attribute_flag_names(flags: int) -> list[str]:
    """Name the set bits of ATTRIBUTES.FLAGS (or of its mask).

    Args:
        flags: the u64 FLAGS value.

    Returns:
        Names lowest bit first, ``'reserved bit N'`` for bits without a name.
    """
    return [ATTRIBUTE_FLAG_NAMES.get(bit, f"reserved bit {bit}") for bit in _set_bits(flags)]


def xfrm_names(xfrm: int) -> list[str]:
    """Name the set bits of ATTRIBUTES.XFRM (or of its mask).

    Args:
        xfrm: the u64 XFRM value (XCR0 layout).

    Returns:
        Names lowest bit first, ``'bit N'`` for bits without a name.
    """
    return [XFRM_NAMES.get(bit, f"bit {bit}") for bit in _set_bits(xfrm)]


def miscselect_names(miscselect: int) -> list[str]:
    """Name the set bits of MISCSELECT (or MISCMASK).

    Args:
        miscselect: the u32 value.

    Returns:
        Names lowest bit first, ``'bit N'`` for bits without a name.
    """
    return [MISCSELECT_NAMES.get(bit, f"bit {bit}") for bit in _set_bits(miscselect)]


# --------------------------------------------------------------------------------------------
# The structure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """Result of :meth:`Sigstruct.check`."""

    signature_valid: bool  # s**3 mod n is the PKCS#1 v1.5 SHA-256 encoding of the signed bytes
    q1_ok: bool  # Q1 == floor(s² / n)
    q2_ok: bool  # Q2 == floor((s² mod n)·s / n)
    problems: tuple[str, ...]  # every human-readable problem found, header checks included

    @property
    def valid(self) -> bool:
        """True when the signature, Q1 and Q2 are all correct (header findings aside)."""
        return self.signature_valid and self.q1_ok and self.q2_ok


@dataclass(frozen=True, slots=True)
class Sigstruct:
    """One SIGSTRUCT, every byte of it (SDM "SIGSTRUCT"; SDK ``enclave_css_t``; SPEC §2.1).

    Fields are in layout order; the comment gives offset, size and the SDM name. RSA integers
    are plain ``int`` here and little-endian in the bytes. Reserved areas are kept verbatim so
    that any 1808 bytes round-trip exactly. Values are range-checked on construction.
    """

    header: bytes = HEADER  # @0, 16 bytes: HEADER constant (SDK: header[12] + u32 type)
    vendor: int = 0  # @16, u32: VENDOR, 0x8086 for Intel, else 0
    date: int = 0  # @20, u32: DATE, raw (normally BCD yyyymmdd; see decode_date)
    header2: bytes = HEADER2  # @24, 16 bytes: HEADER2 constant
    swdefined: int = 0  # @40, u32: SWDEFINED (SDK hw_version)
    reserved_44: bytes = bytes(84)  # @44, 84 bytes: reserved, signed, must be 0
    modulus: int = 0  # @128, 384 bytes LE: MODULUS n (RSA-3072)
    exponent: int = SGX_EXPONENT  # @512, u32: EXPONENT, must be 3
    signature: int = 0  # @516, 384 bytes LE: SIGNATURE s
    miscselect: int = 0  # @900, u32: MISCSELECT
    miscmask: int = 0  # @904, u32: MISCMASK
    cet_attributes: int = 0  # @908, u8: CET_ATTRIBUTES (SDK: reserved)
    cet_attributes_mask: int = 0  # @909, u8: CET_ATTRIBUTES_MASK (SDK: reserved)
    reserved_910: bytes = bytes(2)  # @910, 2 bytes: reserved, signed, must be 0
    isvfamilyid: bytes = ZERO16  # @912, 16 bytes: ISVFAMILYID (KSS only)
    attributes_flags: int = 0  # @928, u64: ATTRIBUTES.FLAGS
    attributes_xfrm: int = 0  # @936, u64: ATTRIBUTES.XFRM
    attributemask_flags: int = 0  # @944, u64: ATTRIBUTEMASK.FLAGS
    attributemask_xfrm: int = 0  # @952, u64: ATTRIBUTEMASK.XFRM
    enclavehash: bytes = bytes(32)  # @960, 32 bytes: ENCLAVEHASH (MRENCLAVE, digest byte order)
    reserved_992: bytes = ZERO16  # @992, 16 bytes: reserved, signed, must be 0
    isvextprodid: bytes = ZERO16  # @1008, 16 bytes: ISVEXTPRODID (KSS only)
    isvprodid: int = 0  # @1024, u16: ISVPRODID
    isvsvn: int = 0  # @1026, u16: ISVSVN
    reserved_1028: bytes = bytes(12)  # @1028, 12 bytes: reserved, not signed, must be 0
    q1: int = 0  # @1040, 384 bytes LE: Q1 = floor(s² / n)
    q2: int = 0  # @1424, 384 bytes LE: Q2 = floor((s² mod n)·s / n)

    def __post_init__(self) -> None:
        """Range-check every field against the table so ``to_bytes`` cannot fail later.

        Raises:
            SigstructFormatError: a value does not fit its field.
        """
        for name, _offset, packer in _STRUCTS:
            value = getattr(self, name)
            if name in _LE_INTEGER_FIELDS:
                if not isinstance(value, int) or not 0 <= value < 1 << (8 * packer.size):
                    raise SigstructFormatError(
                        f"SIGSTRUCT {name.upper()} must be an integer of at most {8 * packer.size} bits"
                    )
            elif packer.format.endswith("s"):
                if isinstance(value, bytearray | memoryview):
                    value = bytes(value)
                    object.__setattr__(self, name, value)
                if not isinstance(value, bytes) or len(value) != packer.size:
                    raise SigstructFormatError(f"SIGSTRUCT {name.upper()} must be {packer.size} bytes")
            elif not isinstance(value, int) or not 0 <= value < 1 << (8 * packer.size):
                raise SigstructFormatError(
                    f"SIGSTRUCT {name.upper()} must be an unsigned {8 * packer.size}-bit integer, not {value!r}"
                )

    # ---- bytes ---------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Sigstruct:
        """Parse exactly 1808 bytes.

        Args:
            data: the SIGSTRUCT bytes.

        Returns:
            The parsed structure; every input of the right length parses.

        Raises:
            SigstructFormatError: ``data`` is not 1808 bytes long.
        """
        data = bytes(data)
        if len(data) != SIGSTRUCT_SIZE:
            raise SigstructFormatError(f"SIGSTRUCT is {len(data)} bytes; expected {SIGSTRUCT_SIZE}")
        values: dict[str, Any] = {}
        for name, offset, packer in _STRUCTS:
            (value,) = packer.unpack_from(data, offset)
            values[name] = _le_int(value) if name in _LE_INTEGER_FIELDS else value
        return cls(**values)

    def to_bytes(self) -> bytes:
        """Serialise to the 1808-byte layout.

        Returns:
            The bytes; for a parsed structure, identical to what was parsed.
        """
        buffer = bytearray(SIGSTRUCT_SIZE)
        for name, offset, packer in _STRUCTS:
            value = getattr(self, name)
            if name in _LE_INTEGER_FIELDS:
                value = value.to_bytes(packer.size, "little")
            packer.pack_into(buffer, offset, value)
        return bytes(buffer)

    def signed_bytes(self) -> bytes:
        """The 256 bytes the signature covers: bytes [0,128) ‖ [900,1028) (SPEC §2.2).

        Returns:
            The message M.
        """
        raw = self.to_bytes()
        return b"".join(raw[start:end] for start, end in SIGNED_RANGES)

    def signed_sha256(self) -> str:
        """SHA-256 of :meth:`signed_bytes` as lowercase hex (the value PKCS#1 signs)."""
        return hashlib.sha256(self.signed_bytes()).hexdigest()

    # ---- identity ------------------------------------------------------------------------

    def mrsigner_bytes(self) -> bytes:
        """MRSIGNER: SHA-256 of the 384 MODULUS bytes as stored (little-endian).

        Returns:
            32 bytes.
        """
        return mrsigner_of_modulus_bytes(self.modulus)

    @property
    def mrsigner(self) -> str:
        """MRSIGNER as 64 lowercase hex digits."""
        return self.mrsigner_bytes().hex()

    @property
    def date_info(self) -> DateInfo:
        """DATE decoded for display (see :func:`decode_date`)."""
        return decode_date(self.date)

    @property
    def is_signed(self) -> bool:
        """True once a modulus has been attached (an unsigned SIGSTRUCT has MODULUS 0)."""
        return self.modulus != 0

    # ---- checks --------------------------------------------------------------------------

    def header_problems(self) -> list[str]:
        """List what EINIT (or a careful signer) would object to, apart from the signature.

        Returns:
            Human-readable problems, empty when the constant fields, VENDOR, EXPONENT, reserved
            bytes, INIT and the attribute/MISC masks are all as SPEC §2.5/§2.10 require.
        """
        problems: list[str] = []
        if self.header != HEADER:
            problems.append(f"HEADER is {self.header.hex()}; expected the constant {HEADER.hex()}")
        if self.header2 != HEADER2:
            problems.append(f"HEADER2 is {self.header2.hex()}; expected the constant {HEADER2.hex()}")
        if self.vendor not in (0, VENDOR_INTEL):
            problems.append(f"VENDOR is 0x{self.vendor:x}; expected 0 or 0x8086")
        if self.exponent != SGX_EXPONENT:
            problems.append(f"EXPONENT is {self.exponent}; SGX requires 3")
        if self.attributes_flags & FLAG_INIT:
            problems.append("ATTRIBUTES sets INIT; it must be clear in a SIGSTRUCT")
        unmasked_flags = self.attributes_flags & ~self.attributemask_flags
        if unmasked_flags:
            problems.append(
                f"ATTRIBUTES.FLAGS sets bits ATTRIBUTEMASK does not cover: 0x{unmasked_flags:x} "
                f"({', '.join(attribute_flag_names(unmasked_flags))}); EINIT will not check them"
            )
        unmasked_xfrm = self.attributes_xfrm & ~self.attributemask_xfrm
        if unmasked_xfrm:
            problems.append(
                f"ATTRIBUTES.XFRM sets bits ATTRIBUTEMASK does not cover: 0x{unmasked_xfrm:x} "
                f"({', '.join(xfrm_names(unmasked_xfrm))}); EINIT will not check them"
            )
        unmasked_misc = self.miscselect & ~self.miscmask
        if unmasked_misc:
            problems.append(
                f"MISCSELECT sets bits MISCMASK does not cover: 0x{unmasked_misc:x} "
                f"({', '.join(miscselect_names(unmasked_misc))}); EINIT will not check them"
            )
        for name in _RESERVED_FIELDS:
            if any(getattr(self, name)):
                offset = name.removeprefix("reserved_")
                problems.append(f"reserved bytes at offset {offset} are not zero")
        return problems

    def verify_signature(self) -> bool:
        """Check SIGNATURE against MODULUS and the signed bytes (e = 3, PKCS#1 v1.5, SHA-256).

        Returns:
            True if valid; False for anything else, including an unsigned or garbage structure.
        """
        digest = hashlib.sha256(self.signed_bytes()).digest()
        return verify_pkcs1_sha256_digest(self.modulus, self.signature, digest)

    def q1_ok(self) -> bool:
        """True when Q1 = floor(s² / n); False when the modulus is zero."""
        return self.modulus > 0 and self.q1 == compute_q1_q2(self.signature, self.modulus)[0]

    def q2_ok(self) -> bool:
        """True when Q2 = floor((s² mod n)·s / n); False when the modulus is zero."""
        return self.modulus > 0 and self.q2 == compute_q1_q2(self.signature, self.modulus)[1]

    def check(self) -> SignatureCheck:
        """Verify the signature, Q1 and Q2, and collect every problem found.

        Returns:
            A :class:`SignatureCheck`; never raises for a parsed structure.
        """
        problems = self.header_problems()
        if not self.is_signed:
            return SignatureCheck(
                False, False, False, (*problems, "the SIGSTRUCT is not signed (MODULUS is 0)")
            )
        signature_valid = self.verify_signature()
        q1_ok = self.q1_ok()
        q2_ok = self.q2_ok()
        if not signature_valid:
            problems.append("the signature does not verify against MODULUS and the signed fields")
        if not q1_ok:
            problems.append("Q1 does not match the signature and modulus")
        if not q2_ok:
            problems.append("Q2 does not match the signature and modulus")
        return SignatureCheck(signature_valid, q1_ok, q2_ok, tuple(problems))

    # ---- changes -------------------------------------------------------------------------

    def with_signature(self, modulus: int, signature: int) -> Sigstruct:
        """Attach a signature: set MODULUS, EXPONENT = 3, SIGNATURE, Q1 and Q2.

        The signature is not verified here; :func:`core.signing.sign_sigstruct_with` does that.

        Args:
            modulus: RSA-3072 modulus n.
            signature: signature s as an integer (big-endian PKCS#1 output read as an integer).

        Returns:
            A new :class:`Sigstruct`.

        Raises:
            SignatureError: the modulus is not 3072 bits or the signature is not below it.
        """
        if modulus.bit_length() != MODULUS_SIZE * 8:
            raise SignatureError(f"the modulus is {modulus.bit_length()} bits; SGX needs a 3072-bit modulus")
        if not 0 <= signature < modulus:
            raise SignatureError("the signature is not an integer below the modulus")
        q1, q2 = compute_q1_q2(signature, modulus)
        return dataclasses.replace(
            self, modulus=modulus, exponent=SGX_EXPONENT, signature=signature, q1=q1, q2=q2
        )

    # ---- display -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every field and derived value, JSON-ready.

        Keys match ``expected.json``'s SIGSTRUCT entries (``attributes_flags`` as ``0x%016x``,
        ``miscmask`` as ``0x%08x``, ``date`` as 8 hex digits, byte strings as hex, ...), plus the
        raw constant/reserved areas, the RSA integers as 768-digit big-endian hex, the decoded
        date, bit names and the problem list.

        Returns:
            A dict of str, int, bool and lists thereof.
        """
        check = self.check()
        date_info = self.date_info
        year, month, day = binary_ymd_fields(self.date)
        return {
            "header": self.header.hex(),
            "vendor": self.vendor,
            "date": f"{self.date:08x}",
            "date_kind": date_info.kind,
            "date_text": date_info.text,
            "date_as_binary_ymd": f"{year:04d}-{month:02d}-{day:02d}",
            "header2": self.header2.hex(),
            "swdefined": self.swdefined,
            "reserved_44": self.reserved_44.hex(),
            "modulus": f"{self.modulus:0768x}",
            "exponent": self.exponent,
            "signature": f"{self.signature:0768x}",
            "miscselect": f"0x{self.miscselect:08x}",
            "miscselect_names": miscselect_names(self.miscselect),
            "miscmask": f"0x{self.miscmask:08x}",
            "cet_attributes": f"0x{self.cet_attributes:02x}",
            "cet_attributes_mask": f"0x{self.cet_attributes_mask:02x}",
            "reserved_910": self.reserved_910.hex(),
            "isvfamilyid": self.isvfamilyid.hex(),
            "attributes_flags": f"0x{self.attributes_flags:016x}",
            "attributes_flags_names": attribute_flag_names(self.attributes_flags),
            "attributes_xfrm": f"0x{self.attributes_xfrm:016x}",
            "attributes_xfrm_names": xfrm_names(self.attributes_xfrm),
            "attributemask_flags": f"0x{self.attributemask_flags:016x}",
            "attributemask_xfrm": f"0x{self.attributemask_xfrm:016x}",
            "enclavehash": self.enclavehash.hex(),
            "reserved_992": self.reserved_992.hex(),
            "isvextprodid": self.isvextprodid.hex(),
            "isvprodid": self.isvprodid,
            "isvsvn": self.isvsvn,
            "reserved_1028": self.reserved_1028.hex(),
            "q1": f"{self.q1:0768x}",
            "q2": f"{self.q2:0768x}",
            "mrsigner": self.mrsigner,
            "signed_sha256": self.signed_sha256(),
            "signature_valid": check.signature_valid,
            "q1_ok": check.q1_ok,
            "q2_ok": check.q2_ok,
            "problems": list(check.problems),
        }


def _check_dataclass_matches_table() -> None:
    """Fail at import if :class:`Sigstruct` and the field table name different fields."""
    names = [field.name for field in dataclasses.fields(Sigstruct)]
    if names != [name for name, _offset, _fmt in _FIELDS]:
        raise RuntimeError("Sigstruct dataclass fields differ from the SIGSTRUCT field table")


_check_dataclass_matches_table()


def build_sigstruct(
    *,
    enclavehash: bytes,
    attributes_flags: int,
    attributes_xfrm: int,
    attributemask_flags: int,
    attributemask_xfrm: int,
    date_raw: int,
    isvprodid: int = 0,
    isvsvn: int = 0,
    vendor: int = 0,
    swdefined: int = 0,
    miscselect: int = 0,
    miscmask: int = 0xFFFFFFFF,
    isvfamilyid: bytes = ZERO16,
    isvextprodid: bytes = ZERO16,
) -> Sigstruct:
    """Build an unsigned SIGSTRUCT (SPEC §2.10 steps 1–2): constants set, MODULUS/SIGNATURE/Q1/Q2 zero.

    Args:
        enclavehash: MRENCLAVE, 32 bytes in digest order.
        attributes_flags: ATTRIBUTES.FLAGS (INIT must be clear).
        attributes_xfrm: ATTRIBUTES.XFRM.
        attributemask_flags: ATTRIBUTEMASK.FLAGS; must cover every bit set in FLAGS.
        attributemask_xfrm: ATTRIBUTEMASK.XFRM; must cover every bit set in XFRM.
        date_raw: DATE word as stored (use :func:`encode_bcd_date`).
        isvprodid: ISVPRODID (u16).
        isvsvn: ISVSVN (u16).
        vendor: VENDOR, 0 or 0x8086.
        swdefined: SWDEFINED (u32).
        miscselect: MISCSELECT; must be covered by ``miscmask``.
        miscmask: MISCMASK.
        isvfamilyid: ISVFAMILYID, 16 bytes (KSS).
        isvextprodid: ISVEXTPRODID, 16 bytes (KSS).

    Returns:
        The unsigned :class:`Sigstruct` (EXPONENT already 3).

    Raises:
        SigstructFormatError: a value does not fit its field (wrong length, out of range).
        ParamError: INIT is set, VENDOR is neither 0 nor 0x8086, or ATTRIBUTES/MISCSELECT set bits
            their masks do not cover.
    """
    sigstruct = Sigstruct(
        vendor=vendor,
        date=date_raw,
        swdefined=swdefined,
        miscselect=miscselect,
        miscmask=miscmask,
        isvfamilyid=isvfamilyid,
        attributes_flags=attributes_flags,
        attributes_xfrm=attributes_xfrm,
        attributemask_flags=attributemask_flags,
        attributemask_xfrm=attributemask_xfrm,
        enclavehash=enclavehash,
        isvextprodid=isvextprodid,
        isvprodid=isvprodid,
        isvsvn=isvsvn,
    )
    problems = sigstruct.header_problems()
    if problems:
        raise ParamError(
            "cannot build this SIGSTRUCT: " + "; ".join(problems), title="Invalid SIGSTRUCT fields"
        )
    return sigstruct
