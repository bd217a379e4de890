"""Re-signing an Intel SGX SDK enclave: a new SIGSTRUCT in every metadata block, nothing else changed.

``sgx_sign`` stores the SIGSTRUCT (``enclave_css``) at offset 64 of every ``metadata_t`` block of
``.note.sgxmeta``. Nothing else in the file depends on the key, the date, ISVPRODID, ISVSVN or the
DEBUG bit of ATTRIBUTEMASK (SDK-WHATIF.md §5: none of them is measured), so re-signing writes
exactly those 1808-byte ranges and copies every other byte. The ENCLAVEHASH signed is the one
ensign measures from the primary block (SPEC §4.6), so a file whose pages changed is signed for
what it now is, and the result says so. Re-signing a fixture with its own key and date
reproduces ``sgx_sign``'s file byte for byte (PKCS#1 v1.5 is deterministic).

The write is atomic (temporary file, fsync, rename); the original is intact on any error. This
module never prints and never imports a UI.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core import elfedit
from core.errors import SdkError
from core.measure import ProgressCallback
from core.sdk import SdkEnclave
from core.sdk_metadata import METADATA_HEADER_SIZE
from core.signing import Signer, sign_sigstruct_with
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct, encode_bcd_date

__all__ = ["ResignResult", "resign_sdk_enclave", "resigned_sigstruct", "sdk_file_with_sigstruct"]

CSS_OFFSET = 64  # enclave_css inside metadata_t (bytes)
ATTRIBUTE_DEBUG = 0x2
_CHUNK = 1 << 20

assert CSS_OFFSET + SIGSTRUCT_SIZE == METADATA_HEADER_SIZE


@dataclass(frozen=True, slots=True)
class ResignResult:
    """What :func:`resign_sdk_enclave` wrote."""

    output: str  # the file written
    sigstruct: Sigstruct  # the new SIGSTRUCT (identical in every block)
    blocks: int  # number of metadata blocks rewritten
    mrenclave: str  # ENCLAVEHASH signed (hex), as measured
    previous_enclavehash: str  # ENCLAVEHASH of the old SIGSTRUCT (hex)
    mrsigner: str  # MRSIGNER of the new key (hex)

    @property
    def enclavehash_changed(self) -> bool:
        """True when the file's pages no longer measured to the old ENCLAVEHASH."""
        return self.mrenclave != self.previous_enclavehash


def resigned_sigstruct(
    old: Sigstruct,
    signer: Signer,
    *,
    enclavehash: bytes | None = None,
    date: _dt.date | int | None = None,
    isvprodid: int | None = None,
    isvsvn: int | None = None,
    disable_debug: bool | None = None,
) -> Sigstruct:
    """A new SIGSTRUCT with the old one's fields, the given changes, signed by ``signer``.

    Args:
        old: the SIGSTRUCT to start from (every unsigned field is kept).
        signer: the new key (RSA-3072, e=3).
        enclavehash: MRENCLAVE to sign (default: keep the old ENCLAVEHASH).
        date: a calendar date (written as BCD) or a raw DATE word; None keeps the old DATE.
        isvprodid: new ISVPRODID; None keeps it.
        isvsvn: new ISVSVN; None keeps it.
        disable_debug: True sets DEBUG in ATTRIBUTEMASK (as ``DisableDebug=1``), False clears it,
            None keeps it.

    Returns:
        The signed SIGSTRUCT (self-checked).

    Raises:
        SigstructFormatError: a value does not fit its field.
        SigningKeyError / SignatureError: the signer is unusable.
    """
    changes: dict[str, object] = {"modulus": 0, "signature": 0, "q1": 0, "q2": 0}
    if enclavehash is not None:
        changes["enclavehash"] = enclavehash
    if date is not None:
        changes["date"] = encode_bcd_date(date) if isinstance(date, _dt.date) else date
    if isvprodid is not None:
        changes["isvprodid"] = isvprodid
    if isvsvn is not None:
        changes["isvsvn"] = isvsvn
    if disable_debug is not None:
        mask = old.attributemask_flags
        changes["attributemask_flags"] = mask | ATTRIBUTE_DEBUG if disable_debug else mask & ~ATTRIBUTE_DEBUG
    unsigned = dataclasses.replace(old, **changes)  # type: ignore[arg-type]
    return sign_sigstruct_with(unsigned, signer)


def sdk_file_with_sigstruct(enclave: SdkEnclave, sigstruct: Sigstruct, out: BinaryIO) -> None:
    """Write the enclave's file to ``out`` with ``sigstruct`` in every metadata block.

    Raises:
        SdkError: the enclave has no metadata block.
    """
    if not enclave.blocks:
        raise SdkError(f"{enclave.path}: not signed yet (empty metadata note): ensign cannot re-sign it")
    replacement = sigstruct.to_bytes()
    ranges = sorted(block.file_offset + CSS_OFFSET for block in enclave.blocks)
    data = enclave.image.data
    position = 0
    for start in ranges:
        while position < start:
            end = min(start, position + _CHUNK)
            out.write(data[position:end])
            position = end
        out.write(replacement)
        position = start + SIGSTRUCT_SIZE
    while position < len(data):
        end = min(len(data), position + _CHUNK)
        out.write(data[position:end])
        position = end


def resign_sdk_enclave(
    enclave: SdkEnclave,
    signer: Signer,
    *,
    output: str | Path | None = None,
    date: _dt.date | int | None = None,
    isvprodid: int | None = None,
    isvsvn: int | None = None,
    disable_debug: bool | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ResignResult:
    """Re-sign an SDK enclave: measure it, sign a new SIGSTRUCT, write it into every block.

    Args:
        enclave: the open, signed SDK enclave.
        signer: the new signing key.
        output: where to write (default: replace the input atomically).
        date: DATE for the new SIGSTRUCT (a date, or a raw word); None keeps the old DATE.
        isvprodid: new ISVPRODID (None keeps it).
        isvsvn: new ISVSVN (None keeps it).
        disable_debug: set (True) or clear (False) DEBUG in ATTRIBUTEMASK; None keeps it.
        on_progress: measurement progress callback.
        cancel: cancels the measurement.

    Returns:
        What was written.

    Raises:
        SdkError: not signed, or corrupt metadata.
        MeasurementCancelled: ``cancel`` was set.
        SigningKeyError / SignatureError: the signer is unusable.
        WriteError: the output could not be written (the original is unchanged).
    """
    old = enclave.sigstruct
    measurement = enclave.measure(on_progress=on_progress, cancel=cancel)
    new = resigned_sigstruct(
        old,
        signer,
        enclavehash=measurement.mrenclave,
        date=date,
        isvprodid=isvprodid,
        isvsvn=isvsvn,
        disable_debug=disable_debug,
    )
    target = str(output) if output is not None else enclave.path

    def build(out: BinaryIO) -> None:
        sdk_file_with_sigstruct(enclave, new, out)

    def verify(temp_path: str) -> None:
        with SdkEnclave.open(temp_path) as written:
            if any(block.sigstruct != new for block in written.blocks) or len(written.blocks) != len(enclave.blocks):
                raise SdkError(f"{target}: the re-signed file did not read back correctly")

    elfedit.atomic_write_from(enclave.path, target, build, verify=verify)
    return ResignResult(
        output=target,
        sigstruct=new,
        blocks=len(enclave.blocks),
        mrenclave=measurement.hex,
        previous_enclavehash=old.enclavehash.hex(),
        mrsigner=new.mrsigner,
    )
