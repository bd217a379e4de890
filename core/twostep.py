"""Two-step signing: export what a SIGSTRUCT signature covers, attach a signature made elsewhere.

Production keys live on offline machines and in HSMs that sign files and never see the enclave.
**Export** writes, for every SIGSTRUCT of an enclave (an ensign binary carries two, SGX1 and
EDMM; an Intel SDK enclave one), the 256 signed bytes (header ‖ body, SPEC §2.2, what
``sgx_sign gendata`` writes) or their SHA-256 (what ``oesign digest`` writes), plus a JSON
description of everything that went into them. **Attach** takes the signatures back in either
byte order (found by verifying), builds the full SIGSTRUCTs with Q1/Q2, and, when a signature
does not fit, says precisely why: wrong size, wrong key, signed over other data (naming what
changed since the export: date, a parameter, the program), or the wrong way of signing.

Files written by an export to ``FILE`` (docs/PRODUCTION.md has the full description):

* ``FILE``: the messages of all SIGSTRUCTs concatenated in SIGSTRUCT order (SGX1 ‖ EDMM, 512
  bytes; an SDK enclave's single message, 256 bytes, byte-identical to ``sgx_sign gendata``).
  For a digest export, their SHA-256 digests (64 or 32 bytes).
* ``FILE.sgx1``, ``FILE.edmm``: each message (or digest) alone, so tools that sign one whole
  file (``openssl dgst``, ``openssl pkeyutl``) can sign them; only when there are two.
* ``FILE.json``: the manifest (:data:`MANIFEST_FORMAT`): parameters, date, MRENCLAVEs, the
  messages in hex and the image page digests. ``attach --signing-data FILE`` reads it to name
  what changed; it is not needed to attach.

Attaching is signing with :class:`AttachedSigner`, a :class:`~core.signing.Signer` that hands
back the pre-made signature over the message it is asked to sign, so every code path that
signs through a Signer (ensign binaries, SDK re-signing) attaches too.

This module never prints, never sees a private key, never writes to the enclave file (the
caller stores the result) and never imports a UI. Problems raise
:class:`~core.errors.SignatureError` (a signature that does not fit) or
:class:`~core.errors.ContainerError` (an unreadable export or signature file).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.errors import ContainerError, SignatureError
from core.params import PARAMETERS, format_size
from core.signing import mrsigner_of_modulus
from core.sigstruct import (
    HEADER,
    MODULUS_SIZE,
    SGX_EXPONENT,
    SHA256_DIGEST_INFO,
    SIGNED_RANGES,
    SIGSTRUCT_SIZE,
    Sigstruct,
    decode_date,
    encode_bcd_date,
)

if TYPE_CHECKING:  # imported lazily at run time: core.enclave and core.sdk pull in the whole engine
    import threading

    from core.enclave import EnclaveBinary, MeasuredPair
    from core.measure import ProgressCallback
    from core.sdk import SdkEnclave
    from core.sdk_sign import ResignResult
    from core.signed import EnsignSignature

__all__ = [
    "AttachPlan",
    "AttachedSignature",
    "AttachedSigner",
    "ExportedData",
    "MANIFEST_FORMAT",
    "RecoveredSignature",
    "SigningRequest",
    "SDK_VARIANT",
    "attach_ensign",
    "attach_sdk",
    "ensign_request",
    "export_digest",
    "export_signing_data",
    "manifest_path",
    "match_signatures",
    "parse_signatures",
    "part_path",
    "read_exported",
    "read_signature_file",
    "recover_signature",
    "describe_changes",
    "exported_date",
    "sdk_request",
    "search_single_change",
    "signatures_from_files",
    "sigstruct_from_signed_bytes",
]

MESSAGE_SIZE = 256
"""Bytes a SIGSTRUCT signature covers: header [0,128) ‖ body [900,1028)."""

DIGEST_SIZE = 32
"""Bytes of a SHA-256 digest."""

SIGNATURE_SIZE = MODULUS_SIZE
"""Bytes of an RSA-3072 signature."""

MANIFEST_FORMAT = "ensign-signing-data"
"""Value of ``format`` in an export manifest (``FILE.json``)."""

MANIFEST_VERSION = 1
"""Version of the manifest format this module writes and reads."""

ByteOrder = Literal["big", "little"]

BYTE_ORDER_TEXT: dict[str, str] = {
    "big": "big-endian (PKCS#1 order, as openssl and PKCS#11 write it)",
    "little": "little-endian (SIGSTRUCT order)",
}
"""How each byte order is named in messages."""

# Message offsets of the fields a signer most often gets out of step with (SPEC §2.1: the body
# [900, 1028) follows the 128 header bytes in the message).
_MESSAGE_DATE = 20
_MESSAGE_FLAGS = 128 + (928 - 900)
_MESSAGE_ISVPRODID = 128 + (1024 - 900)
_MESSAGE_ISVSVN = 128 + (1026 - 900)

# DigestInfo prefixes of other hashes, to name a signature made with the wrong one (RFC 8017 §9.2).
_OTHER_DIGEST_INFOS: dict[bytes, str] = {
    bytes.fromhex("3021300906052b0e03021a05000414"): "SHA-1",
    bytes.fromhex("302d300d06096086480165030402040500041c"): "SHA-224",
    bytes.fromhex("3041300d060960864801650304020205000430"): "SHA-384",
    bytes.fromhex("3051300d060960864801650304020305000440"): "SHA-512",
}

_SIGN_HINT = (
    "sign the signing data with 'openssl dgst -sha256 -sign KEY', or the digest with "
    "'openssl pkeyutl -sign -pkeyopt digest:sha256'"
)


# --------------------------------------------------------------------------------------------
# What gets signed
# --------------------------------------------------------------------------------------------


def sigstruct_from_signed_bytes(message: bytes) -> Sigstruct:
    """Rebuild the unsigned SIGSTRUCT a 256-byte message was taken from.

    Args:
        message: header ‖ body, as exported.

    Returns:
        A :class:`Sigstruct` with those fields and everything else zero.

    Raises:
        ContainerError: ``message`` is not 256 bytes.
    """
    if len(message) != MESSAGE_SIZE:
        raise ContainerError(f"signing data is {len(message)} bytes; one SIGSTRUCT's is {MESSAGE_SIZE}")
    buffer = bytearray(SIGSTRUCT_SIZE)
    position = 0
    for start, end in SIGNED_RANGES:
        buffer[start:end] = message[position:position + end - start]
        position += end - start
    return Sigstruct.from_bytes(buffer)


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """The unsigned SIGSTRUCTs of one enclave and everything that went into them.

    ``variants`` and ``templates`` are parallel: ``("sgx1", "edmm")`` for an ensign binary, one
    name for an SDK enclave. ``params`` maps parameter names to values (for an ensign binary the
    ``scone-signer`` parameters); they are only used to name what changed between an export and
    an attach. Signing a template with a key gives exactly what one-step signing gives.
    """

    app: str  # the enclave file the SIGSTRUCTs are for
    kind: str  # "ensign" (SGX1 + EDMM SIGSTRUCTs) or "sdk" (one SIGSTRUCT)
    variants: tuple[str, ...]  # SIGSTRUCT names, in file order
    templates: tuple[Sigstruct, ...]  # the unsigned SIGSTRUCTs, same order
    params: Mapping[str, Any] = field(default_factory=dict)  # name → value that went in
    image_digests: bytes = b""  # 8 bytes per measured image page (ensign), to name a changed page
    expected_mrsigner: str | None = None  # MRSIGNER the signing key is meant to have, when known

    def __post_init__(self) -> None:
        if not self.variants or len(self.variants) != len(self.templates):
            raise ContainerError("a signing request needs one name per SIGSTRUCT")
        if len(set(self.variants)) != len(self.variants):
            raise ContainerError(f"SIGSTRUCT names repeat: {', '.join(self.variants)}")
        dates = {template.date for template in self.templates}
        if len(dates) != 1:
            raise ContainerError("the SIGSTRUCTs of one signing request must carry the same DATE")

    @property
    def date(self) -> int:
        """SIGSTRUCT DATE (raw BCD word) shared by every template."""
        return self.templates[0].date

    def messages(self) -> tuple[bytes, ...]:
        """The 256 signed bytes of each SIGSTRUCT, in :attr:`variants` order."""
        return tuple(template.signed_bytes() for template in self.templates)

    def digests(self) -> tuple[bytes, ...]:
        """SHA-256 of each message (the value PKCS#1 v1.5 signs), in :attr:`variants` order."""
        return tuple(hashlib.sha256(message).digest() for message in self.messages())

    def manifest(self, files: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The JSON manifest written next to an export.

        Args:
            files: what was written, e.g. ``{"signing_data": "req.bin", "sgx1": "req.bin.sgx1"}``.

        Returns:
            A JSON-ready dict (format :data:`MANIFEST_FORMAT`, version :data:`MANIFEST_VERSION`).
        """
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "app": self.app,
            "kind": self.kind,
            "date": f"{self.date:08x}",
            "date_text": decode_date(self.date).text,
            "params": {name: value for name, value in self.params.items()},
            "expected_mrsigner": self.expected_mrsigner,
            "image_page_digests": self.image_digests.hex(),
            "sigstructs": [
                {
                    "variant": variant,
                    "enclavehash": template.enclavehash.hex(),
                    "signed_bytes": message.hex(),
                    "sha256": hashlib.sha256(message).hexdigest(),
                }
                for variant, template, message in zip(self.variants, self.templates, self.messages(), strict=True)
            ],
            "files": dict(files or {}),
        }


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def part_path(path: str | os.PathLike[str], variant: str) -> str:
    """Where one SIGSTRUCT's part of an export goes: ``FILE.<variant>``."""
    return f"{os.fspath(path)}.{variant}"


def manifest_path(path: str | os.PathLike[str]) -> str:
    """Where an export's manifest goes: ``FILE.json``."""
    return f"{os.fspath(path)}.json"


def _write_export(request: SigningRequest, path: str | os.PathLike[str], parts: tuple[bytes, ...],
                  what: str) -> tuple[str, ...]:
    """Write FILE (all parts), FILE.<variant> (when there are several) and FILE.json; return the paths."""
    from core.elfedit import atomic_write_bytes

    base = os.fspath(path)
    written = [base]
    files = {what: base}
    atomic_write_bytes(base, b"".join(parts))
    if len(parts) > 1:
        for variant, part in zip(request.variants, parts, strict=True):
            target = part_path(base, variant)
            atomic_write_bytes(target, part)
            written.append(target)
            files[variant] = target
    manifest = manifest_path(base)
    files["manifest"] = manifest
    document = request.manifest(files)
    document["export"] = what
    atomic_write_bytes(manifest, (json.dumps(document, indent=2) + "\n").encode())
    written.append(manifest)
    return tuple(written)


def export_signing_data(request: SigningRequest, path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Write the bytes to sign (``sgx_sign gendata`` style) and the manifest.

    Args:
        request: what to export.
        path: ``FILE``; see the module docstring for the files written.

    Returns:
        The paths written: ``FILE``, then ``FILE.<variant>`` for each SIGSTRUCT when there are
        several, then ``FILE.json``.

    Raises:
        WriteError: a file could not be written.
    """
    return _write_export(request, path, request.messages(), "signing_data")


def export_digest(request: SigningRequest, path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Write the SHA-256 of the bytes to sign (``oesign digest`` style) and the manifest.

    Args:
        request: what to export.
        path: ``FILE``; 32 bytes per SIGSTRUCT, split into ``FILE.<variant>`` when several.

    Returns:
        The paths written, as for :func:`export_signing_data`.

    Raises:
        WriteError: a file could not be written.
    """
    return _write_export(request, path, request.digests(), "digest")


# --------------------------------------------------------------------------------------------
# Reading an export back
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportedData:
    """What an earlier export recorded, read back to explain a mismatch (``attach --signing-data``)."""

    path: str  # the file given
    variants: tuple[str, ...] | None  # SIGSTRUCT names from the manifest; None for a bare file
    messages: tuple[bytes, ...] | None  # the 256-byte messages; None when only digests are known
    digests: tuple[bytes, ...]  # SHA-256 of each message
    params: Mapping[str, Any] | None = None  # parameters recorded in the manifest
    image_digests: bytes = b""  # image page digests recorded in the manifest
    expected_mrsigner: str | None = None  # MRSIGNER recorded at export, if any

    @property
    def date(self) -> int | None:
        """The exported DATE (raw BCD word), when the messages are known."""
        if not self.messages:
            return None
        return int.from_bytes(self.messages[0][_MESSAGE_DATE:_MESSAGE_DATE + 4], "little")

    def variant_name(self, index: int) -> str:
        """Name of SIGSTRUCT ``index`` (``sigstruct 2`` for a bare file)."""
        if self.variants is not None:
            return self.variants[index]
        return f"sigstruct {index + 1}"


def _split(data: bytes, size: int) -> tuple[bytes, ...]:
    return tuple(data[start:start + size] for start in range(0, len(data), size))


def _looks_like_messages(data: bytes) -> bool:
    """True when ``data`` is one or more 256-byte messages (each starts with the HEADER constant)."""
    if not data or len(data) % MESSAGE_SIZE:
        return False
    # Bytes 12..15 of HEADER are the SDK's type word (bit 31: ReleaseType); compare the rest.
    return all(part[:12] == HEADER[:12] for part in _split(data, MESSAGE_SIZE))


def _read_bytes(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise ContainerError(f"{what} {path}: is a directory") from None
    except OSError as error:
        raise ContainerError(f"{what} {path}: {error.strerror or error}") from None


def _load_manifest(path: str) -> dict[str, Any]:
    text = _read_bytes(path, "manifest")
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ContainerError(f"{path}: not a JSON manifest ({error})") from None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ContainerError(f"{path}: not an ensign signing-data manifest (format is not {MANIFEST_FORMAT!r})")
    if document.get("version") != MANIFEST_VERSION:
        raise ContainerError(f"{path}: manifest version {document.get('version')} is not supported")
    return document


def _exported_from_manifest(path: str, document: dict[str, Any], only: str | None = None) -> ExportedData:
    try:
        entries = list(document["sigstructs"])
        if only is not None:
            entries = [entry for entry in entries if entry["variant"] == only]
        variants = tuple(str(entry["variant"]) for entry in entries)
        messages = tuple(bytes.fromhex(entry["signed_bytes"]) for entry in entries)
        params = document.get("params") or {}
        image_digests = bytes.fromhex(document.get("image_page_digests") or "")
        expected = document.get("expected_mrsigner")
    except (KeyError, TypeError, ValueError) as error:
        raise ContainerError(f"{path}: damaged manifest ({error!r})") from None
    if not messages or any(len(message) != MESSAGE_SIZE for message in messages):
        raise ContainerError(f"{path}: damaged manifest (signed_bytes are not 256 bytes each)")
    digests = tuple(hashlib.sha256(message).digest() for message in messages)
    return ExportedData(path, variants, messages, digests, params if isinstance(params, dict) else None,
                        image_digests, expected if isinstance(expected, str) else None)


def read_exported(path: str | os.PathLike[str]) -> ExportedData:
    """Read an export back: ``FILE``, ``FILE.<variant>`` or ``FILE.json``.

    A bare file is read as messages (multiples of 256 bytes starting with the SIGSTRUCT
    HEADER) or digests (multiples of 32 bytes). When its manifest is next to it (``FILE.json``,
    or ``STEM.json`` for a part ``STEM.<variant>``), the manifest supplies names, parameters and
    page digests, and must agree with the file.

    Args:
        path: the file given to ``--export-signing-data``/``--export-digest``, a part of it, or
            its manifest.

    Returns:
        The :class:`ExportedData`.

    Raises:
        ContainerError: unreadable, not an export, or the manifest disagrees with the file.
    """
    name = os.fspath(path)
    if name.endswith(".json"):
        return _exported_from_manifest(name, _load_manifest(name))
    data = _read_bytes(name, "signing data")
    manifest: dict[str, Any] | None = None
    only: str | None = None
    if Path(manifest_path(name)).is_file():
        manifest = _load_manifest(manifest_path(name))
    else:
        stem, _, suffix = name.rpartition(".")
        if stem and Path(manifest_path(stem)).is_file():
            manifest = _load_manifest(manifest_path(stem))
            only = suffix
    if manifest is not None:
        exported = _exported_from_manifest(name, manifest, only)
        assert exported.messages is not None
        if data not in (b"".join(exported.messages), b"".join(exported.digests)):
            raise ContainerError(f"{name}: its manifest describes other signing data (edited after export?)")
        return exported
    if _looks_like_messages(data):
        messages = _split(data, MESSAGE_SIZE)
        return ExportedData(name, None, messages, tuple(hashlib.sha256(m).digest() for m in messages))
    if data and len(data) % DIGEST_SIZE == 0 and len(data) <= 4 * DIGEST_SIZE:
        return ExportedData(name, None, None, _split(data, DIGEST_SIZE))
    raise ContainerError(
        f"{name}: {len(data)} bytes is neither signing data (256 bytes per SIGSTRUCT) nor digests (32 bytes each)"
    )


# --------------------------------------------------------------------------------------------
# Signature files
# --------------------------------------------------------------------------------------------

_HEX_TEXT = re.compile(rb"^[0-9a-fA-F\s:]+$")
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


def _decode_text_signature(data: bytes) -> bytes | None:
    """Decode hex (colons and whitespace allowed) or base64 (PEM-style armour allowed) text."""
    text = data.strip()
    lines = [line for line in text.splitlines() if not line.startswith(b"-----")]
    body = b"\n".join(lines).strip()
    if not body:
        return None
    if _HEX_TEXT.match(body):
        digits = re.sub(rb"[\s:]", b"", body)
        if len(digits) % 2 == 0 and len(digits) // 2 % SIGNATURE_SIZE == 0:
            return binascii.unhexlify(digits)
    if _BASE64_TEXT.match(body):
        try:
            decoded = base64.b64decode(re.sub(rb"\s", b"", body), validate=True)
        except binascii.Error:
            return None
        if decoded and len(decoded) % SIGNATURE_SIZE == 0:
            return decoded
    return None


def parse_signatures(data: bytes, *, name: str) -> tuple[bytes, ...]:
    """Split the contents of a signature file into 384-byte signatures.

    Accepted: raw bytes (384 per signature, any byte order: one, or SGX1 ‖ EDMM), or the same as
    hex or base64 text.

    Args:
        data: the file contents.
        name: the file name, for messages.

    Returns:
        The signatures, in file order, as found (byte order not yet known).

    Raises:
        SignatureError: the size is wrong, e.g. "sig.bin: 256 bytes; an RSA-3072 signature is
            384 bytes (this one is RSA-2048 sized: SGX needs an RSA-3072 key)".
    """
    # Text first: 768 hex digits are also 768 bytes, but a raw signature is never all ASCII hex/base64.
    decoded = _decode_text_signature(data) if data else None
    if decoded is not None and len(decoded) <= 4 * SIGNATURE_SIZE:
        return _split(decoded, SIGNATURE_SIZE)
    if data and len(data) % SIGNATURE_SIZE == 0 and len(data) <= 4 * SIGNATURE_SIZE:
        return _split(data, SIGNATURE_SIZE)
    size = len(data)
    hint = ""
    bits = {128: 1024, 256: 2048, 512: 4096}.get(size)
    if bits:
        hint = f" (RSA-{bits} sized: SGX needs an RSA-3072 key with exponent 3)"
    elif size == 0:
        hint = " (the file is empty: did the signing command fail?)"
    elif size == MESSAGE_SIZE * 2 or (size % MESSAGE_SIZE == 0 and data[:12] == HEADER[:12]):
        hint = " (this is signing data, not a signature)"
    raise SignatureError(
        f"{name}: {size} bytes; an RSA-3072 signature is {SIGNATURE_SIZE} bytes "
        f"(or {2 * SIGNATURE_SIZE} for SGX1 ‖ EDMM){hint}"
    )


def read_signature_file(path: str | os.PathLike[str]) -> tuple[bytes, ...]:
    """Read a signature file (see :func:`parse_signatures`).

    Raises:
        ContainerError: unreadable.
        SignatureError: wrong size.
    """
    name = os.fspath(path)
    return parse_signatures(_read_bytes(name, "signature"), name=name)


# --------------------------------------------------------------------------------------------
# What a signature signs: s**3 mod n, decoded
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveredSignature:
    """What ``s**3 mod n`` reveals about a signature under a public key (e = 3 makes this cheap).

    With the right key, one byte order gives a PKCS#1 v1.5 block ``00 01 FF… 00 payload``; the
    payload says what was signed. With the wrong key, neither order does.
    """

    byte_order: ByteOrder | None  # the order in which the block decodes; None: neither does
    digest: bytes | None  # the SHA-256 digest signed (payload = SHA-256 DigestInfo ‖ digest)
    payload: bytes | None  # the raw payload, whatever it is
    problem: str | None  # why this is not a usable SGX signature, when it is not
    signature: bytes = b""  # the signature in big-endian order, when byte_order is known


def _pkcs1_payload(block: bytes) -> bytes | None:
    """Payload of an EMSA-PKCS1-v1_5 block ``00 01 FF{8,} 00 payload``, or None."""
    if block[:2] != b"\x00\x01":
        return None
    separator = block.find(b"\x00", 2)
    if separator < 10 or block[2:separator] != b"\xff" * (separator - 2):
        return None
    return block[separator + 1:]


def _describe_payload(payload: bytes) -> str:
    """Name what a non-SHA-256 payload is (the usual ways of signing the wrong thing)."""
    for prefix, name in _OTHER_DIGEST_INFOS.items():
        if payload.startswith(prefix):
            return f"it signs a {name} digest, not SHA-256: {_SIGN_HINT}"
    if len(payload) == DIGEST_SIZE:
        return ("it signs a bare 32-byte digest without the SHA-256 DigestInfo "
                "(openssl pkeyutl without -pkeyopt digest:sha256?): " + _SIGN_HINT)
    if len(payload) == MESSAGE_SIZE:
        return "it signs the 256 bytes themselves, unhashed (openssl pkeyutl on the signing data?): " + _SIGN_HINT
    return f"it signs a {len(payload)}-byte value that is not a SHA-256 DigestInfo: {_SIGN_HINT}"


def recover_signature(modulus: int, signature: bytes) -> RecoveredSignature:
    """Find the byte order of a signature and what it signs, by raising it to the power 3 mod n.

    Args:
        modulus: the public modulus n.
        signature: 384 bytes in unknown byte order.

    Returns:
        A :class:`RecoveredSignature`; never raises for 384 bytes.
    """
    below_modulus = False
    orders: tuple[ByteOrder, ByteOrder] = ("big", "little")
    for order in orders:
        value = int.from_bytes(signature, order)
        if not 0 < value < modulus:
            continue
        below_modulus = True
        block = pow(value, SGX_EXPONENT, modulus).to_bytes(MODULUS_SIZE, "big")
        payload = _pkcs1_payload(block)
        if payload is None:
            if block[-1] == 0xBC and block[0] & 0x80 == 0 and order == "big":
                pss = ("it decodes as an RSA-PSS signature; SGX needs PKCS#1 v1.5 "
                       "(drop -sigopt rsa_padding_mode:pss / use CKM_SHA256_RSA_PKCS)")
                return RecoveredSignature(order, None, None, pss, value.to_bytes(SIGNATURE_SIZE, "big"))
            continue
        big = value.to_bytes(SIGNATURE_SIZE, "big")
        if payload.startswith(SHA256_DIGEST_INFO) and len(payload) == len(SHA256_DIGEST_INFO) + DIGEST_SIZE:
            return RecoveredSignature(order, payload[len(SHA256_DIGEST_INFO):], payload, None, big)
        return RecoveredSignature(order, None, payload, _describe_payload(payload), big)
    if not below_modulus:
        problem = "it is not below the public key's modulus in either byte order, so it was made with another key"
    else:
        problem = "it does not decode under the public key in either byte order: it was made with another key"
    return RecoveredSignature(None, None, None, problem)


# --------------------------------------------------------------------------------------------
# Explaining a mismatch
# --------------------------------------------------------------------------------------------

_SPECS = {spec.name: spec for spec in PARAMETERS}


def _format_param(name: str, value: Any) -> str:
    spec = _SPECS.get(name)
    if spec is None or value is None:
        return str(value)
    if spec.kind == "size" and isinstance(value, int):
        return format_size(value)
    if spec.kind == "xfrm" and isinstance(value, int):
        return f"{value:#x}"
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def _flag(name: str) -> str:
    spec = _SPECS.get(name)
    return spec.flag if spec is not None else name


def _date_hint(raw: int) -> str:
    info = decode_date(raw)
    return f" (give --date {info.date.isoformat()})" if info.date is not None else ""


_PARAMETER_FIELDS = frozenset({"isvsvn", "isvprodid", "attributes_flags", "attributes_xfrm", "attributemask_xfrm"})
"""SIGSTRUCT fields that follow from parameters: not listed again when a parameter change explains them."""

_COMPARED_FIELDS: tuple[tuple[str, str], ...] = (
    ("isvsvn", "ISVSVN"), ("isvprodid", "ISVPRODID"), ("attributes_flags", "ATTRIBUTES.FLAGS"),
    ("attributes_xfrm", "ATTRIBUTES.XFRM"), ("attributemask_flags", "ATTRIBUTEMASK.FLAGS"),
    ("attributemask_xfrm", "ATTRIBUTEMASK.XFRM"), ("miscselect", "MISCSELECT"), ("miscmask", "MISCMASK"),
    ("vendor", "VENDOR"), ("swdefined", "SWDEFINED"), ("header", "HEADER"),
    ("isvfamilyid", "ISVFAMILYID"), ("isvextprodid", "ISVEXTPRODID"),
)


def _show_field(name: str, value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if name.startswith(("attribute", "misc")):
        return f"{value:#x}"
    return str(value)


def describe_changes(
    exported: Sigstruct,
    current: Sigstruct,
    *,
    exported_params: Mapping[str, Any] | None = None,
    current_params: Mapping[str, Any] | None = None,
    exported_image_digests: bytes = b"",
    describe_image_change: Callable[[bytes], str | None] | None = None,
) -> list[str]:
    """Name every difference between exported and current SIGSTRUCT data, with its cause.

    Args:
        exported: the SIGSTRUCT rebuilt from exported signing data.
        current: the SIGSTRUCT the attach would build.
        exported_params: parameters recorded at export (manifest), if known.
        current_params: parameters now.
        exported_image_digests: image page digests recorded at export, if known.
        describe_image_change: given those digests, describes the first image page that changed
            since (None when none did).

    Returns:
        One phrase per change, e.g. ``"DATE 2025-01-01 → 2025-01-02 (give --date 2025-01-01)"``,
        ``"--heap 64M → 128M"``, ``"MRENCLAVE … → …: the program changed since the export; first
        changed image page 0x3000 …"``.
    """
    changes: list[str] = []
    if exported.date != current.date:
        changes.append(
            f"DATE {decode_date(exported.date).text} → {decode_date(current.date).text}{_date_hint(exported.date)}"
        )
    params_known = exported_params is not None and current_params is not None
    parameter_changes: list[str] = []
    mrenclave_parameter_changed = False
    if exported_params is not None and current_params is not None:
        names = [*exported_params, *(name for name in current_params if name not in exported_params)]
        for name in names:
            before, after = exported_params.get(name), current_params.get(name)
            if name == "key" or before == after:
                continue
            parameter_changes.append(f"{_flag(name)} {_format_param(name, before)} → {_format_param(name, after)}")
            spec = _SPECS.get(name)
            mrenclave_parameter_changed |= spec is None or spec.affects_mrenclave
    changes += parameter_changes
    for name, label in _COMPARED_FIELDS:
        before, after = getattr(exported, name), getattr(current, name)
        if before == after or (parameter_changes and name in _PARAMETER_FIELDS):
            continue
        if name == "attributes_flags" and (before ^ after) & 0x2:
            label += " (DEBUG: --production)"
        changes.append(f"{label} {_show_field(name, before)} → {_show_field(name, after)}")
    if exported.enclavehash != current.enclavehash:
        hashes = "MRENCLAVE changed"
        if mrenclave_parameter_changed:
            changes.append(f"{hashes} (follows from the parameter change)")
        elif params_known:
            where = None
            if exported_image_digests and describe_image_change is not None:
                where = describe_image_change(exported_image_digests)
            changes.append(f"{hashes}: the program changed since the export"
                           + (f"; first changed image {where}" if where else ""))
        else:
            changes.append(f"{hashes} (an MRENCLAVE parameter or the program changed)")
    return changes


def _date_candidates() -> list[int]:
    """Every BCD date 2000-01-01 … 2099-12-31, and 0 (no date)."""
    day, last = _dt.date(2000, 1, 1), _dt.date(2099, 12, 31)
    candidates = [0]
    while day <= last:
        candidates.append(encode_bcd_date(day))
        day += _dt.timedelta(days=1)
    return candidates


def _find_field_value(message: bytes, offset: int, size: int, values: Sequence[int], digest: bytes) -> int | None:
    """The value of the ``size``-byte field at ``offset`` that makes ``message`` hash to ``digest``."""
    prefix = hashlib.sha256(message[:offset])
    suffix = message[offset + size:]
    for value in values:
        trial = prefix.copy()
        trial.update(value.to_bytes(size, "little"))
        trial.update(suffix)
        if trial.digest() == digest:
            return value
    return None


def search_single_change(template: Sigstruct, digest: bytes) -> str | None:
    """Find a one-field change of ``template`` (DEBUG, DATE, ISVSVN, ISVPRODID) whose message has ``digest``.

    About 170,000 SHA-256s of 256 bytes (a fraction of a second); run only after a mismatch, so
    that a signature made with another --date, --isvsvn, --isvprodid or --production is named
    even without the export.

    Args:
        template: the SIGSTRUCT as it would be built now.
        digest: SHA-256 the signature signs.

    Returns:
        A phrase naming the change, or None.
    """
    message = template.signed_bytes()
    flags = int.from_bytes(message[_MESSAGE_FLAGS:_MESSAGE_FLAGS + 8], "little")
    if _find_field_value(message, _MESSAGE_FLAGS, 8, [flags ^ 0x2], digest) is not None:
        if flags & 0x2:
            return "it signs the production SIGSTRUCT, and this is a debug one (give --production)"
        return "it signs the debug SIGSTRUCT, and this is a production one (leave out --production)"
    raw = _find_field_value(message, _MESSAGE_DATE, 4, _date_candidates(), digest)
    if raw is not None:
        return (f"it signs the same SIGSTRUCT with DATE {decode_date(raw).text}, not "
                f"{decode_date(template.date).text}{_date_hint(raw)}")
    for offset, flag, current in ((_MESSAGE_ISVSVN, "--isvsvn", template.isvsvn),
                                  (_MESSAGE_ISVPRODID, "--isvprodid", template.isvprodid)):
        value = _find_field_value(message, offset, 2, range(0x10000), digest)
        if value is not None and value != current:
            return f"it signs the same SIGSTRUCT with {flag} {value}, not {current} (give {flag} {value})"
    return None


# --------------------------------------------------------------------------------------------
# Attaching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachedSignature:
    """One signature matched to the SIGSTRUCT it signs."""

    variant: str  # which SIGSTRUCT
    source: str  # "sig.bin", or "sig.bin (signature 2 of 2)"
    byte_order: ByteOrder  # the order it was found in
    signature: bytes = field(repr=False)  # 384 bytes, big-endian


@dataclass(frozen=True, slots=True)
class AttachedSigner:
    """A :class:`~core.signing.Signer` that returns signatures made elsewhere.

    It holds pre-made signatures by the SHA-256 of the message each one signs and hands back
    the matching one, so ``sign_sigstruct_with(template, signer)`` attaches and self-checks.
    """

    public_modulus: int  # n of the public key given
    by_digest: Mapping[bytes, bytes] = field(repr=False)  # SHA-256(message) → big-endian signature

    @property
    def modulus(self) -> int:
        """The RSA modulus n."""
        return self.public_modulus

    def sign_pkcs1_sha256(self, message: bytes) -> bytes:
        """Return the pre-made signature over ``message``.

        Raises:
            SignatureError: none of the attached signatures signs ``message``.
        """
        digest = hashlib.sha256(message).digest()
        try:
            return self.by_digest[digest]
        except KeyError:
            raise SignatureError(
                f"no attached signature signs this SIGSTRUCT (signed bytes SHA-256 {digest.hex()})"
            ) from None


@dataclass(frozen=True, slots=True)
class AttachPlan:
    """Signatures matched to every SIGSTRUCT of a request, ready to sign with :attr:`signer`."""

    signer: AttachedSigner
    matches: tuple[AttachedSignature, ...]  # one per SIGSTRUCT, in request order
    mrsigner: str  # MRSIGNER of the public key


def _debug_key_modulus() -> int | None:
    try:
        from core.signing import load_debug_key

        return load_debug_key().public_key().public_numbers().n
    except Exception:  # the packaged key is a diagnostic aid only
        return None


def _combined_digests(request: SigningRequest) -> dict[bytes, str]:
    """Digests of the wrong files people sign: the combined export, a digest file hashed again."""
    messages, digests = request.messages(), request.digests()
    wrong: dict[bytes, str] = {}
    if len(messages) > 1:
        wrong[hashlib.sha256(b"".join(messages)).digest()] = (
            "it signs the combined signing data FILE (all SIGSTRUCTs at once); sign each "
            f"FILE.{request.variants[0]}, FILE.{request.variants[1]}… separately"
        )
        wrong[hashlib.sha256(b"".join(digests)).digest()] = (
            "it signs the combined digest file; sign each FILE.<variant> digest separately"
        )
    for variant, digest in zip(request.variants, digests, strict=True):
        wrong[hashlib.sha256(digest).digest()] = (
            f"it signs the {variant.upper()} digest file hashed once more (openssl dgst on the digest?): "
            "sign a digest with 'openssl pkeyutl -sign -pkeyopt digest:sha256', or the signing data with "
            "'openssl dgst -sha256 -sign'"
        )
    return wrong


def _explain(
    request: SigningRequest,
    candidates: Sequence[int],
    digest: bytes,
    *,
    exported: ExportedData | None,
    describe_image_change: Callable[[bytes], str | None] | None,
) -> tuple[int | None, str]:
    """Why a signature over ``digest`` (right key, right padding) signs none of the SIGSTRUCTs.

    Args:
        request: the SIGSTRUCTs now.
        candidates: indexes of the SIGSTRUCTs still without a signature.
        digest: what the signature signs.
        exported: the export, if given.
        describe_image_change: see :func:`describe_changes`.

    Returns:
        (index of the SIGSTRUCT the signature was meant for, when that can be told; the reason).
    """
    wrong_file = _combined_digests(request).get(digest)
    if wrong_file:
        return None, wrong_file
    if exported is not None:
        for position, exported_digest in enumerate(exported.digests):
            if exported_digest != digest:
                continue
            name = exported.variant_name(position)
            if name in request.variants:
                index: int | None = request.variants.index(name)
            elif exported.variants is None and len(exported.digests) == len(request.variants):
                index = position  # a bare file: same order as the SIGSTRUCTs
            else:
                index = candidates[0] if len(candidates) == 1 else None
            where = f"the data exported to {exported.path}" if index is not None else (
                f"the {name.upper()} data exported to {exported.path}")
            if exported.messages is None:
                return index, (f"it signs {where}, which differs from what would be signed now; the manifest "
                               f"{manifest_path(exported.path)} is missing, so what changed cannot be named")
            if index is None:
                return None, f"it signs {where}, which is none of the SIGSTRUCTs of this enclave"
            params_known = exported.params is not None
            changes = describe_changes(
                sigstruct_from_signed_bytes(exported.messages[position]), request.templates[index],
                exported_params=exported.params, current_params=request.params if params_known else None,
                exported_image_digests=exported.image_digests, describe_image_change=describe_image_change,
            )
            return index, f"it signs {where}, and since that export: " + ("; ".join(changes) or "nothing named changed")
    for index in candidates:
        found = search_single_change(request.templates[index], digest)
        if found:
            return index, found
    return (candidates[0] if len(candidates) == 1 else None), (
        "it signs other data: parameters, --date or the program changed since the export"
        + ("" if exported is not None else "; give --signing-data FILE (the export) to name what changed")
    )


def match_signatures(
    request: SigningRequest,
    modulus: int,
    signatures: Sequence[tuple[str, bytes]],
    *,
    exported: ExportedData | None = None,
    expected_mrsigner: str | None = None,
    describe_image_change: Callable[[bytes], str | None] | None = None,
) -> AttachPlan:
    """Match signatures made elsewhere to the SIGSTRUCTs of ``request``, or say exactly why not.

    Every signature is tried against every SIGSTRUCT in both byte orders, so files may be given
    in any order and each in either byte order.

    Args:
        request: the SIGSTRUCTs as they would be built now.
        modulus: n of the public key (or certificate) given with the signatures.
        signatures: ``(source name, 384 bytes)`` pairs, see :func:`signatures_from_files`.
        exported: the export the signatures were made from, to name what changed since.
        expected_mrsigner: MRSIGNER the key must have (hex); also taken from ``exported`` or
            ``request`` when not given.
        describe_image_change: names the first image page that differs from recorded digests.

    Returns:
        An :class:`AttachPlan` whose signer signs exactly the request's SIGSTRUCTs.

    Raises:
        SignatureError: a wrong key (MRSIGNER of the given key vs the one expected; or a signature
            that does not decode under it), the wrong signing method, a signature over other data
            (naming what changed: date, parameters, program), or a SIGSTRUCT left without a
            signature. One line, naming the SIGSTRUCT and the file.
    """
    if modulus.bit_length() != MODULUS_SIZE * 8:
        raise SignatureError(f"the public key is RSA-{modulus.bit_length()}; SGX needs RSA-3072 with exponent 3")
    mrsigner = mrsigner_of_modulus(modulus)
    expected = expected_mrsigner or (exported.expected_mrsigner if exported else None) or request.expected_mrsigner
    if expected and expected.lower() != mrsigner:
        raise SignatureError(
            f"wrong key: the public key given has MRSIGNER {mrsigner}, but MRSIGNER {expected.lower()} is expected"
        )
    if not signatures:
        raise SignatureError("no signature given")
    digests = request.digests()
    matched: dict[int, AttachedSignature] = {}
    problems: dict[str, list[str]] = {}  # reason → the signatures it applies to (grouped in the message)
    unmatched: list[tuple[str, bytes, RecoveredSignature]] = []
    for source, raw in signatures:
        if len(raw) != SIGNATURE_SIZE:
            raise SignatureError(f"{source}: {len(raw)} bytes; an RSA-3072 signature is {SIGNATURE_SIZE} bytes")
        recovered = recover_signature(modulus, raw)
        if recovered.digest is None or recovered.digest not in digests:
            unmatched.append((source, raw, recovered))
            continue
        index = digests.index(recovered.digest)
        assert recovered.byte_order is not None
        if index in matched:
            reason = f"both sign the {request.variants[index].upper()} SIGSTRUCT"
            problems.setdefault(reason, []).extend([matched[index].source, source])
            continue
        matched[index] = AttachedSignature(request.variants[index], source, recovered.byte_order,
                                           recovered.signature)
    missing = [index for index in range(len(request.variants)) if index not in matched]
    for source, raw, recovered in unmatched:
        if recovered.digest is None:
            if recovered.byte_order is None:
                reason = (f"wrong key: the signature does not verify under the public key given (MRSIGNER "
                          f"{mrsigner}) in either byte order")
                debug_modulus = _debug_key_modulus()
                if debug_modulus and debug_modulus != modulus and recover_signature(debug_modulus, raw).byte_order:
                    reason += f"; it was made with ensign's built-in debug key (MRSIGNER {mrsigner_of_modulus(debug_modulus)})"
            else:
                detail = recovered.problem or "it is not a PKCS#1 v1.5 SHA-256 signature"
                reason = f"right key ({BYTE_ORDER_TEXT[recovered.byte_order]}), but {detail}"
            problems.setdefault(reason, []).append(source)
            continue
        meant_for, reason = _explain(request, missing or list(range(len(request.variants))), recovered.digest,
                                     exported=exported, describe_image_change=describe_image_change)
        label = f"{source} ({request.variants[meant_for].upper()})" if meant_for is not None else source
        problems.setdefault(f"signed over different data: {reason}", []).append(label)
    if problems:
        raise SignatureError("; ".join(f"{', '.join(dict.fromkeys(sources))}: {reason}"
                                       for reason, sources in problems.items()))
    if missing:
        names = " and ".join(request.variants[index].upper() for index in missing)
        raise SignatureError(
            f"no signature for the {names} SIGSTRUCT: this enclave has {len(request.variants)} SIGSTRUCTs "
            f"({', '.join(v.upper() for v in request.variants)}) and each needs its own signature; "
            f"got {len(signatures)}"
        )
    ordered = tuple(matched[index] for index in range(len(request.variants)))
    signer = AttachedSigner(modulus, {digests[index]: match.signature for index, match in matched.items()})
    return AttachPlan(signer=signer, matches=ordered, mrsigner=mrsigner)


def signatures_from_files(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[str, bytes]]:
    """Read signature files into ``(source, bytes)`` pairs for :func:`match_signatures`.

    A file with two signatures gives ``"FILE (signature 1 of 2)"`` and ``"… 2 of 2"``.

    Raises:
        ContainerError: unreadable file.
        SignatureError: wrong size.
    """
    pairs: list[tuple[str, bytes]] = []
    for path in paths:
        name = os.fspath(path)
        parts = read_signature_file(name)
        if len(parts) == 1:
            pairs.append((name, parts[0]))
        else:
            pairs.extend((f"{name} (signature {i + 1} of {len(parts)})", part) for i, part in enumerate(parts))
    return pairs


# --------------------------------------------------------------------------------------------
# ensign binaries
# --------------------------------------------------------------------------------------------


def ensign_request(binary: EnclaveBinary, pair: MeasuredPair, date: _dt.date, *,
                   expected_mrsigner: str | None = None) -> SigningRequest:
    """The two unsigned SIGSTRUCTs (SGX1, EDMM) ``ensign sign`` would sign for ``pair``.

    Args:
        binary: the open binary.
        pair: its measurements under the parameters to sign.
        date: SIGSTRUCT DATE.
        expected_mrsigner: MRSIGNER the signing key should have, recorded in the manifest.

    Returns:
        The :class:`SigningRequest` (kind ``"ensign"``, variants ``("sgx1", "edmm")``).
    """
    from core.enclave import sigstruct_template
    from core.layout import VARIANT_EDMM, VARIANT_SGX1

    params = pair.params
    values = {name: value for name, value in params.values().items() if name != "key"}
    return SigningRequest(
        app=binary.path,
        kind="ensign",
        variants=(VARIANT_SGX1, VARIANT_EDMM),
        templates=(sigstruct_template(params, pair.sgx1_measurement.mrenclave, date),
                   sigstruct_template(params, pair.edmm_measurement.mrenclave, date)),
        params=values,
        image_digests=binary.image_page_digests(),
        expected_mrsigner=expected_mrsigner,
    )


def attach_ensign(
    binary: EnclaveBinary,
    pair: MeasuredPair,
    date: _dt.date,
    modulus: int,
    signatures: Sequence[tuple[str, bytes]],
    *,
    exported: ExportedData | None = None,
    expected_mrsigner: str | None = None,
) -> tuple[EnsignSignature, AttachPlan]:
    """Attach externally made signatures to an ensign binary's two SIGSTRUCTs.

    Args:
        binary: the open binary.
        pair: its measurements under the parameters given now.
        date: SIGSTRUCT DATE (the one used at export).
        modulus: n of the public key.
        signatures: ``(source, 384 bytes)`` pairs, any order, either byte order.
        exported: the export, to name what changed when a signature does not fit.
        expected_mrsigner: MRSIGNER the key must have.

    Returns:
        The ``.ensign`` record to store (with :func:`core.enclave.write_signature`), and the plan
        (which file signed which SIGSTRUCT, in which byte order).

    Raises:
        SignatureError: see :func:`match_signatures`.
    """
    from core.enclave import build_signature

    request = ensign_request(binary, pair, date)

    def image_change(digests: bytes) -> str | None:
        location = binary.first_changed_image_page(digests)
        return location.describe() if location is not None else None

    plan = match_signatures(request, modulus, signatures, exported=exported, expected_mrsigner=expected_mrsigner,
                            describe_image_change=image_change)
    return build_signature(binary, pair, plan.signer, date), plan


def exported_date(exported: ExportedData) -> _dt.date | None:
    """The calendar DATE of an export (for ``attach`` without ``--date``), when it is a BCD date."""
    raw = exported.date
    if raw is None:
        return None
    return decode_date(raw).date if decode_date(raw).kind == "bcd" else None


# --------------------------------------------------------------------------------------------
# Intel SGX SDK enclaves
# --------------------------------------------------------------------------------------------

SDK_VARIANT = "sdk"
"""Name of the one SIGSTRUCT of an SDK enclave (the same one is in every metadata block)."""


class _Captured(Exception):
    """Carries the message a signer was asked to sign out of ``sign_sigstruct_with``."""

    def __init__(self, message: bytes) -> None:
        super().__init__("message captured")
        self.message = message


@dataclass(frozen=True, slots=True)
class _CapturingSigner:
    """A Signer that signs nothing: it hands the message it is given back through :class:`_Captured`."""

    modulus: int = (1 << (MODULUS_SIZE * 8 - 1)) | 1  # any 3072-bit number: never used to verify

    def sign_pkcs1_sha256(self, message: bytes) -> bytes:
        raise _Captured(bytes(message))


def sdk_request(
    enclave: SdkEnclave,
    *,
    date: _dt.date | int | None,
    isvprodid: int | None = None,
    isvsvn: int | None = None,
    disable_debug: bool | None = None,
    expected_mrsigner: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SigningRequest:
    """The SIGSTRUCT ``ensign resign`` would sign for an SDK enclave, as a signing request.

    The message is taken from :func:`core.sdk_sign.resigned_sigstruct` itself (through a
    signer that records what it is asked to sign), so exported bytes and one-step re-signing
    cannot disagree. Arguments mean what they mean there (None keeps the old value).

    Args:
        enclave: the open, signed SDK enclave.
        date: DATE (a date or a raw word; None keeps the enclave's).
        isvprodid: new ISVPRODID, or None.
        isvsvn: new ISVSVN, or None.
        disable_debug: set/clear DEBUG in ATTRIBUTEMASK, or None.
        expected_mrsigner: MRSIGNER the signing key should have, recorded in the manifest.
        on_progress: measurement progress.
        cancel: cancels the measurement.

    Returns:
        A request of kind ``"sdk"`` with one SIGSTRUCT named :data:`SDK_VARIANT`.

    Raises:
        SdkError: the enclave is not signed, or its metadata is corrupt.
    """
    from core.sdk_sign import resigned_sigstruct

    measurement = enclave.measure(on_progress=on_progress, cancel=cancel)
    try:
        resigned_sigstruct(enclave.sigstruct, _CapturingSigner(), enclavehash=measurement.mrenclave, date=date,
                           isvprodid=isvprodid, isvsvn=isvsvn, disable_debug=disable_debug)
    except _Captured as captured:
        message = captured.message
    else:  # pragma: no cover - resigned_sigstruct always asks its signer
        raise SignatureError("internal error: re-signing did not ask for a signature")
    return SigningRequest(
        app=enclave.path,
        kind="sdk",
        variants=(SDK_VARIANT,),
        templates=(sigstruct_from_signed_bytes(message),),
        params={},  # the SIGSTRUCT fields say it all: nothing else goes into an SDK signature
        expected_mrsigner=expected_mrsigner,
    )


def attach_sdk(
    enclave: SdkEnclave,
    modulus: int,
    signatures: Sequence[tuple[str, bytes]],
    *,
    date: _dt.date | int | None,
    isvprodid: int | None = None,
    isvsvn: int | None = None,
    disable_debug: bool | None = None,
    exported: ExportedData | None = None,
    expected_mrsigner: str | None = None,
    output: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[ResignResult, AttachPlan]:
    """Attach a signature made elsewhere to an SDK enclave: its SIGSTRUCT into every metadata block.

    Same result as ``resign_sdk_enclave`` with the key itself: byte-identical files.

    Args:
        enclave: the open, signed SDK enclave.
        modulus: n of the public key.
        signatures: ``(source, 384 bytes)`` pairs (one is needed).
        date, isvprodid, isvsvn, disable_debug: as at export (see :func:`sdk_request`).
        exported: the export, to name what changed when the signature does not fit.
        expected_mrsigner: MRSIGNER the key must have.
        output: write here instead of replacing the enclave.
        on_progress: measurement progress.

    Returns:
        What was written, and the plan (which file, which byte order).

    Raises:
        SignatureError: see :func:`match_signatures`.
        SdkError / WriteError: as for re-signing.
    """
    from core.sdk_sign import resign_sdk_enclave

    request = sdk_request(enclave, date=date, isvprodid=isvprodid, isvsvn=isvsvn, disable_debug=disable_debug,
                          on_progress=on_progress)
    plan = match_signatures(request, modulus, signatures, exported=exported, expected_mrsigner=expected_mrsigner)
    result = resign_sdk_enclave(enclave, plan.signer, output=output, date=date, isvprodid=isvprodid, isvsvn=isvsvn,
                                disable_debug=disable_debug)
    return result, plan
