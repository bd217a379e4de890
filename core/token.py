"""EINITTOKEN: the launch token EINIT takes besides the SIGSTRUCT (SDM "EINITTOKEN", 304 bytes).

A launch enclave (or, for tests, a tool) writes a token naming the MRENCLAVE, MRSIGNER and
ATTRIBUTES it allows; EINIT refuses the enclave when a valid token does not match. The Intel SDK
stores it in a 1024-byte ``sgx_launch_token_t`` (token + zero padding), Gramine as a bare 304-byte
``.token`` (often a dummy with VALID = 0). :func:`parse_token` decodes either; :func:`match_token`
says whether a token fits a SIGSTRUCT. The layout is one field table checked at import time.

Never prints, never imports a UI; bad input raises :class:`~core.errors.ContainerError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from core.errors import ContainerError
from core.fieldtable import FieldTable
from core.sigstruct import Sigstruct, attribute_flag_names, xfrm_names

__all__ = ["EINITTOKEN_SIZE", "SDK_TOKEN_SIZE", "EinitToken", "TokenMatch", "looks_like_token", "match_token", "parse_token"]

EINITTOKEN_SIZE: Final = 304
SDK_TOKEN_SIZE: Final = 1024  # sgx_launch_token_t

TOKEN_TABLE = FieldTable(
    "EINITTOKEN",
    EINITTOKEN_SIZE,
    (
        ("valid", 0, "<I"),  # VALID: bit 0 = 1 for a token from a launch enclave
        ("reserved_4", 4, "44s"),
        ("attributes_flags", 48, "<Q"),  # ATTRIBUTES.FLAGS of the enclave
        ("attributes_xfrm", 56, "<Q"),  # ATTRIBUTES.XFRM
        ("mrenclave", 64, "32s"),  # MRENCLAVE
        ("reserved_96", 96, "32s"),
        ("mrsigner", 128, "32s"),  # MRSIGNER
        ("reserved_160", 160, "32s"),
        ("cpusvnle", 192, "16s"),  # CPUSVN of the launch enclave
        ("isvprodidle", 208, "<H"),  # ISVPRODID of the launch enclave
        ("isvsvnle", 210, "<H"),  # ISVSVN of the launch enclave
        ("reserved_212", 212, "24s"),
        ("maskedmiscselectle", 236, "<I"),  # the LE's MISCSELECT, masked
        ("maskedattributesle", 240, "16s"),  # the LE's ATTRIBUTES, masked
        ("keyid", 256, "32s"),  # KEYID of the launch key
        ("mac", 288, "16s"),  # MAC over the token with the launch key
    ),
)


@dataclass(frozen=True, slots=True)
class EinitToken:
    """A decoded EINITTOKEN."""

    valid: int  # VALID (1 = issued by a launch enclave; 0 = dummy)
    attributes_flags: int  # ATTRIBUTES.FLAGS
    attributes_xfrm: int  # ATTRIBUTES.XFRM
    mrenclave: bytes  # 32 bytes
    mrsigner: bytes  # 32 bytes
    cpusvnle: bytes  # 16 bytes
    isvprodidle: int  # u16
    isvsvnle: int  # u16
    maskedmiscselectle: int  # u32
    maskedattributesle: bytes  # 16 bytes
    keyid: bytes  # 32 bytes
    mac: bytes  # 16 bytes
    file_size: int  # 304 (bare) or 1024 (SDK sgx_launch_token_t), bytes
    trailing_nonzero: bool  # any non-zero byte after the 304 token bytes

    def to_dict(self) -> dict[str, Any]:
        """The fields in ``expected.json`` form, plus bit names."""
        return {
            "attributes_flags": f"0x{self.attributes_flags:016x}",
            "attributes_flags_names": attribute_flag_names(self.attributes_flags),
            "attributes_xfrm": f"0x{self.attributes_xfrm:016x}",
            "attributes_xfrm_names": xfrm_names(self.attributes_xfrm),
            "cpusvnle": self.cpusvnle.hex(),
            "isvprodidle": self.isvprodidle,
            "isvsvnle": self.isvsvnle,
            "keyid": self.keyid.hex(),
            "kind": "einittoken",
            "mac": self.mac.hex(),
            "maskedattributesle": self.maskedattributesle.hex(),
            "maskedmiscselectle": f"0x{self.maskedmiscselectle:08x}",
            "mrenclave": self.mrenclave.hex(),
            "mrsigner": self.mrsigner.hex(),
            "trailing_nonzero": self.trailing_nonzero,
            "valid": self.valid,
            "file_size": self.file_size,
        }


@dataclass(frozen=True, slots=True)
class TokenMatch:
    """Whether a token fits a SIGSTRUCT (what EINIT compares)."""

    mrenclave: bool  # token MRENCLAVE == SIGSTRUCT ENCLAVEHASH
    mrsigner: bool  # token MRSIGNER == SHA-256 of the SIGSTRUCT modulus
    attributes: bool  # token ATTRIBUTES agree with SIGSTRUCT ATTRIBUTES under ATTRIBUTEMASK
    valid: bool  # token VALID bit set

    @property
    def ok(self) -> bool:
        """True when EINIT would accept this token with this SIGSTRUCT (MAC aside)."""
        return self.mrenclave and self.mrsigner and self.attributes and self.valid

    def problems(self) -> list[str]:
        """What does not match, one line each."""
        lines = []
        if not self.valid:
            lines.append("the token is not valid (VALID bit 0 is clear): a dummy token")
        if not self.mrenclave:
            lines.append("token MRENCLAVE differs from the SIGSTRUCT's ENCLAVEHASH")
        if not self.mrsigner:
            lines.append("token MRSIGNER differs from the SIGSTRUCT signer")
        if not self.attributes:
            lines.append("token ATTRIBUTES disagree with the SIGSTRUCT under its ATTRIBUTEMASK")
        return lines


def looks_like_token(data: bytes) -> bool:
    """True for 304 or 1024 bytes with VALID 0/1 and a zero reserved area (bytes 4..48)."""
    if len(data) not in (EINITTOKEN_SIZE, SDK_TOKEN_SIZE):
        return False
    valid = int.from_bytes(data[:4], "little")
    return valid in (0, 1) and not any(data[4:48])


def parse_token(data: bytes, *, origin: str = "<token>") -> EinitToken:
    """Decode a 304-byte EINITTOKEN or a 1024-byte SDK launch token.

    Raises:
        ContainerError: the size is neither 304 nor 1024 bytes.
    """
    data = bytes(data)
    if len(data) not in (EINITTOKEN_SIZE, SDK_TOKEN_SIZE):
        raise ContainerError(
            f"{origin}: {len(data)} bytes; an EINITTOKEN is {EINITTOKEN_SIZE} bytes (SDK launch token: {SDK_TOKEN_SIZE})"
        )
    values = TOKEN_TABLE.unpack(data)
    return EinitToken(
        valid=values["valid"],
        attributes_flags=values["attributes_flags"],
        attributes_xfrm=values["attributes_xfrm"],
        mrenclave=values["mrenclave"],
        mrsigner=values["mrsigner"],
        cpusvnle=values["cpusvnle"],
        isvprodidle=values["isvprodidle"],
        isvsvnle=values["isvsvnle"],
        maskedmiscselectle=values["maskedmiscselectle"],
        maskedattributesle=values["maskedattributesle"],
        keyid=values["keyid"],
        mac=values["mac"],
        file_size=len(data),
        trailing_nonzero=any(data[EINITTOKEN_SIZE:]),
    )


def match_token(token: EinitToken, sigstruct: Sigstruct) -> TokenMatch:
    """Compare a token with a SIGSTRUCT the way EINIT does (SPEC §2.5), without the MAC.

    The token's ATTRIBUTES are the SECS attributes the launch enclave allowed; they must agree
    with the SIGSTRUCT's ATTRIBUTES in every bit ATTRIBUTEMASK covers.
    """
    flags_ok = (token.attributes_flags ^ sigstruct.attributes_flags) & sigstruct.attributemask_flags == 0
    xfrm_ok = (token.attributes_xfrm ^ sigstruct.attributes_xfrm) & sigstruct.attributemask_xfrm == 0
    return TokenMatch(
        mrenclave=token.mrenclave == sigstruct.enclavehash,
        mrsigner=token.mrsigner == sigstruct.mrsigner_bytes(),
        attributes=flags_ok and xfrm_ok,
        valid=bool(token.valid & 1),
    )
