"""One way to open anything: detect what a file is and return the same models for every kind.

:func:`open_any` recognises every container ensign reads (docs/FORMATS.md):

===========================  ===================================================================
kind                          what
===========================  ===================================================================
``sigstruct``                 a raw 1808-byte SIGSTRUCT (Gramine/Fortanix ``.sig``, Intel ``*_css.bin``)
``sdk-signed-enclave``        an Intel SGX SDK enclave with ``.note.sgxmeta`` metadata
``sdk-unsigned-enclave``      an SDK enclave whose metadata note is still empty (before ``sgx_sign``)
``oe-signed-enclave``         an Open Enclave enclave with a SIGSTRUCT in ``.oeinfo``
``oe-unsigned-enclave``       an Open Enclave enclave whose ``.oeinfo`` SIGSTRUCT is zero
``ensign-signed-binary``      a program signed by ensign (``.ensign`` section)
``measurement-stream``        a Fortanix ``.sgxs`` stream (also ``.sgxs.gz``), UNMEASRD records included
``einittoken``                an EINITTOKEN (304 bytes, or the SDK's 1024-byte launch token)
===========================  ===================================================================

Every :class:`Container` offers the same things where they exist: its SIGSTRUCTs (labelled),
a :class:`~core.records.MeasurementPlan`, address-ordered layout regions, and the kind-specific
model (``sdk``, ``oe``, ``sgxs``, ``token``, ``ensign``). :func:`hash_file` and
:func:`verify_file` are what ``ensign hash``/``verify`` call for files whose measurement is fixed
by the file itself. A file that is none of these raises :class:`~core.errors.ContainerError`
saying what it looked like.

Never prints, never imports a UI.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from core import elfedit
from core.elf import ELF_MAGIC, ElfImage, load_elf
from core.enclave import EnclaveBinary
from core.errors import ContainerError
from core.layout import Region
from core.measure import Measurement, Measurer, ProgressCallback
from core.oe import OE_SECTION, OeEnclave, read_oe_enclave
from core.records import MeasurementPlan
from core.sdk import SdkEnclave
from core.sdk_metadata import NOTE_SECTION
from core.sgxs import SgxsStream, looks_like_sgxs, parse_sgxs, read_sgxs
from core.sigstruct import HEADER, HEADER2, SIGSTRUCT_SIZE, Sigstruct
from core.token import EINITTOKEN_SIZE, SDK_TOKEN_SIZE, EinitToken, looks_like_token, match_token, parse_token

__all__ = [
    "KIND_ENSIGN",
    "KIND_OE",
    "KIND_OE_UNSIGNED",
    "KIND_SDK",
    "KIND_SDK_UNSIGNED",
    "KIND_SGXS",
    "KIND_SIGSTRUCT",
    "KIND_TOKEN",
    "Container",
    "ContainerVerification",
    "HashResult",
    "LabeledSigstruct",
    "SigstructCheck",
    "find_companion_sigstruct",
    "hash_file",
    "measure_container",
    "open_any",
    "verify_container",
    "verify_file",
]

KIND_SIGSTRUCT: Final = "sigstruct"
KIND_SDK: Final = "sdk-signed-enclave"
KIND_SDK_UNSIGNED: Final = "sdk-unsigned-enclave"
KIND_OE: Final = "oe-signed-enclave"
KIND_OE_UNSIGNED: Final = "oe-unsigned-enclave"
KIND_ENSIGN: Final = "ensign-signed-binary"
KIND_SGXS: Final = "measurement-stream"
KIND_TOKEN: Final = "einittoken"
KINDS: Final = (KIND_SIGSTRUCT, KIND_SDK, KIND_SDK_UNSIGNED, KIND_OE, KIND_OE_UNSIGNED, KIND_ENSIGN, KIND_SGXS, KIND_TOKEN)


@dataclass(frozen=True, slots=True)
class LabeledSigstruct:
    """A SIGSTRUCT found in a container, with a stable label (``'sigstruct'``, ``'metadata[0]'``, ``'sgx1'``...)."""

    label: str  # JSON key and display label
    sigstruct: Sigstruct
    description: str  # where it was found, e.g. "metadata block 0 (version 2.3) at file offset 0x32421"


@dataclass(frozen=True, slots=True)
class Container:
    """An opened file of any kind ensign reads. Close it (or use ``with``) when done."""

    path: str  # as given
    kind: str  # one of KINDS
    title: str  # one line: what the file is
    file_size: int  # bytes
    sigstructs: tuple[LabeledSigstruct, ...]  # every SIGSTRUCT in the file, primary first
    sdk: SdkEnclave | None = None  # Intel SGX SDK enclaves
    oe: OeEnclave | None = None  # Open Enclave enclaves
    sgxs: SgxsStream | None = None  # .sgxs streams
    token: EinitToken | None = None  # EINITTOKENs
    ensign: EnclaveBinary | None = None  # ensign-signed programs
    notes: tuple[str, ...] = ()  # findings worth showing (not errors)
    _image: ElfImage | None = field(default=None, repr=False, compare=False)

    @property
    def sigstruct(self) -> Sigstruct | None:
        """The primary SIGSTRUCT (the one EINIT would use), if any."""
        return self.sigstructs[0].sigstruct if self.sigstructs else None

    @property
    def measurable(self) -> bool:
        """True when ensign can compute MRENCLAVE from this file alone."""
        if self.sdk is not None:
            return self.sdk.signed
        if self.sgxs is not None:
            return not self.sgxs.unsized
        return self.ensign is not None and self.ensign.signature is not None

    def plan(self) -> MeasurementPlan | None:
        """The measurement plan, where the file determines one.

        SDK enclaves: the primary metadata block's plan. Streams: the stream's plan (None when
        it measures parts of pages). ensign-signed programs: the SGX1 layout of the signed
        parameters. Others: None.

        Raises:
            SdkError: corrupt SDK metadata.
        """
        if self.sdk is not None:
            return self.sdk.plan() if self.sdk.signed else None
        if self.sgxs is not None:
            return self.sgxs.plan
        if self.ensign is not None and self.ensign.signature is not None:
            return self.ensign.layout(self.ensign.signature.params).plan
        return None

    def regions(self) -> tuple[Region, ...]:
        """Address-ordered layout regions (empty when the layout is unknown)."""
        if self.sdk is not None and self.sdk.signed:
            return self.sdk.load().regions
        if self.sgxs is not None:
            return tuple(
                Region(
                    name=f"{page_range.pages} page(s) {page_range.status}",
                    kind="tcs" if page_range.flags >> 8 & 0xFF == 1 else "image",
                    offset=page_range.start,
                    pages=page_range.pages,
                    flags=page_range.flags,
                    treatment="measured" if page_range.status == "measured" else "added",
                )
                for page_range in self.sgxs.ranges()
            )
        if self.ensign is not None and self.ensign.signature is not None:
            return self.ensign.layout(self.ensign.signature.params).regions
        return ()

    def close(self) -> None:
        """Release file mappings."""
        if self.sdk is not None:
            self.sdk.close()
        elif self._image is not None:
            self._image.close()
        if self.ensign is not None:
            self.ensign.image.close()

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------


def _describe_unknown(head: bytes, size: int) -> str:
    """What a file we do not read looks like, for the error message."""
    shown = repr(head[:8])[1:]
    guesses = (
        (b"PK\x03\x04", "a zip archive"),
        (b"\x1f\x8b", "gzip-compressed data that is not an .sgxs stream"),
        (b"MZ", "a Windows PE executable"),
        (b"-----BEGIN", "a PEM file (key or certificate)"),
        (b"#!", "a script"),
        (b"<?xml", "an XML file (Enclave.config.xml? give it with --config)"),
        (b"<Enclave", "an XML file (Enclave.config.xml? give it with --config)"),
    )
    for magic, guess in guesses:
        if head.startswith(magic):
            return f"{size} bytes starting {shown}: looks like {guess}"
    if size == SIGSTRUCT_SIZE:
        return f"{size} bytes (SIGSTRUCT size) but neither SIGSTRUCT header constant is present"
    if b"<EnclaveConfiguration" in head:
        return f"{size} bytes: looks like an Enclave.config.xml (give it with --config)"
    if head.startswith(b"[") or b"\n[loader]" in head or b"\n[sgx]" in head:
        return f"{size} bytes of text starting {shown}: looks like a Gramine manifest (TOML)"
    if head and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head[:64]):
        return f"{size} bytes of text starting {shown}"
    return f"{size} bytes starting {shown}"


def _looks_like_sigstruct(data: bytes) -> bool:
    # HEADER bytes 12..15 are the SDK's 'type' word (bit 31 for ReleaseType=1): compare the first 12.
    return len(data) == SIGSTRUCT_SIZE and (data[:12] == HEADER[:12] or data[24:40] == HEADER2)


def _stat(path: str) -> int:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise ContainerError(f"{path}: no such file") from None
    except OSError as error:
        raise ContainerError(f"{path}: cannot open ({error.strerror or error})") from None
    if os.path.isdir(path):
        raise ContainerError(f"{path}: is a directory")
    if status.st_size == 0:
        raise ContainerError(f"{path}: empty file")
    return status.st_size


def _read_head(path: str, count: int = 4096) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(count)
    except OSError as error:
        raise ContainerError(f"{path}: cannot read ({error.strerror or error})") from None


def _gzip_head(path: str) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(64)
    except (OSError, EOFError):
        return b""


def open_any(path: str | Path) -> Container:
    """Open ``path`` as whichever container it is.

    Args:
        path: the file.

    Returns:
        The container; close it when done.

    Raises:
        ContainerError: missing, empty, a directory, none of the known kinds (the message says
            what it looked like), or a corrupt container of a known kind.
        ElfFormatError: an ELF file that cannot be loaded.
        SdkError: an SDK enclave with corrupt metadata.
    """
    path = os.fspath(path)
    opened = _open(path, allow_plain_elf=False)
    assert opened is not None
    return opened


def _open(path: str, *, allow_plain_elf: bool, unknown_ok: bool = False) -> Container | None:
    """Detect and open; None for plain/ensign ELF programs (``allow_plain_elf``) and, with
    ``unknown_ok``, for files of no known kind (the caller reports them its own way)."""
    size = _stat(path)
    head = _read_head(path)
    if head.startswith(ELF_MAGIC):
        return _open_elf(path, size, allow_plain_elf)
    if head.startswith(b"\x1f\x8b"):
        if looks_like_sgxs(_gzip_head(path)):
            return _sgxs_container(path, size, read_sgxs(path))
        if unknown_ok:
            return None
        raise ContainerError(f"{path}: {_describe_unknown(head, size)}")
    if looks_like_sgxs(head):
        return _sgxs_container(path, size, read_sgxs(path))
    if size == SIGSTRUCT_SIZE:
        data = Path(path).read_bytes()
        if _looks_like_sigstruct(data):
            sigstruct = Sigstruct.from_bytes(data)
            return Container(path, KIND_SIGSTRUCT, f"SIGSTRUCT ({SIGSTRUCT_SIZE} bytes)", size,
                             (LabeledSigstruct("sigstruct", sigstruct, "the whole file"),))
    if size in (EINITTOKEN_SIZE, SDK_TOKEN_SIZE):
        data = Path(path).read_bytes()
        if looks_like_token(data):
            token = parse_token(data, origin=path)
            what = "Intel SDK launch token" if size == SDK_TOKEN_SIZE else "EINITTOKEN"
            return Container(path, KIND_TOKEN, f"{what} ({size} bytes, VALID={token.valid})", size, (), token=token)
    if unknown_ok:
        return None
    if path.endswith(".token"):
        raise ContainerError(f"{path}: named .token, but {_describe_unknown(head, size)} (an EINITTOKEN is 304 bytes)")
    raise ContainerError(f"{path}: not a file ensign reads ({_describe_unknown(head, size)})")


def _sgxs_container(path: str, size: int, stream: SgxsStream) -> Container:
    counts = stream.counts
    title = (
        f"SGXS measurement stream ({counts['EADD']} EADD, {counts['EEXTEND']} EEXTEND"
        + (f", {counts['UNMEASRD']} UNMEASRD" if counts["UNMEASRD"] else "")
        + f"; SIZE {stream.size:#x}, SSAFRAMESIZE {stream.ssaframesize})"
    )
    notes = tuple(stream.problems[:20])
    return Container(path, KIND_SGXS, title, size, (), sgxs=stream, notes=notes)


def _open_elf(path: str, size: int, allow_plain_elf: bool) -> Container | None:
    image = load_elf(path)
    try:
        if image.section_by_name(NOTE_SECTION) is not None:
            sdk = SdkEnclave.from_image(image)
            return _sdk_container(path, size, sdk)
        if image.section_by_name(OE_SECTION) is not None:
            oe = read_oe_enclave(image)
            assert oe is not None
            sigstructs = (
                (LabeledSigstruct("oeinfo", oe.sigstruct, f"{OE_SECTION} at offset {oe.sigstruct_offset}"),)
                if oe.sigstruct is not None
                else ()
            )
            kind = KIND_OE if oe.signed else KIND_OE_UNSIGNED
            title = "Open Enclave enclave" + ("" if oe.signed else " (not signed: .oeinfo SIGSTRUCT is zero)")
            return Container(path, kind, title, size, sigstructs, oe=oe,
                             notes=("Open Enclave layout is not derived: MRENCLAVE is not recomputed",), _image=image)
    except BaseException:
        image.close()
        raise
    from core.signed import SECTION_NAME

    has_ensign = image.section_by_name(SECTION_NAME) is not None
    image.close()
    if not has_ensign:
        if allow_plain_elf:
            return None
        raise ContainerError(
            f"{path}: an ELF program without SGX signature data (no {NOTE_SECTION}, {OE_SECTION} or "
            f"{SECTION_NAME} section); run 'ensign hash' to see its MRENCLAVE under given parameters"
        )
    if allow_plain_elf:
        return None
    binary = EnclaveBinary.open(path)
    signature = binary.signature
    assert signature is not None
    return Container(
        path,
        KIND_ENSIGN,
        f"ensign-signed ELF ({binary.image.elf_type}, {size} bytes)",
        size,
        (
            LabeledSigstruct("sgx1", signature.sgx1, f"{SECTION_NAME} section, SGX1 measurement"),
            LabeledSigstruct("edmm", signature.edmm, f"{SECTION_NAME} section, EDMM measurement"),
        ),
        ensign=binary,
    )


def _sdk_container(path: str, size: int, sdk: SdkEnclave) -> Container:
    release = f"SDK {sdk.release}" if sdk.release else "SDK release unknown"
    if not sdk.signed:
        return Container(path, KIND_SDK_UNSIGNED,
                         f"Intel SGX SDK enclave, not signed yet ({release}; empty {NOTE_SECTION})", size, (), sdk=sdk,
                         notes=("the metadata note is empty: sign it with sgx_sign (layout from Enclave.config.xml: "
                                "give --config to see it)",))
    sigstructs = tuple(
        LabeledSigstruct(
            f"metadata[{block.position}]",
            block.sigstruct,
            f"metadata block {block.position} (version {block.version_text}) at file offset {block.file_offset:#x}",
        )
        for block in sdk.blocks
    )
    notes: list[str] = []
    if len({labeled.sigstruct.to_bytes() for labeled in sigstructs}) > 1:
        notes.append("the metadata blocks carry different SIGSTRUCTs (sgx_sign writes the same one into each)")
    versions = " + ".join(sdk.metadata.versions)
    title = f"Intel SGX SDK enclave ({release}; metadata {versions}, {len(sdk.blocks)} block" + (
        "s)" if len(sdk.blocks) != 1 else ")"
    )
    return Container(path, KIND_SDK, title, size, sigstructs, sdk=sdk, notes=tuple(notes))


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def measure_container(
    container: Container,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    sgxs_out: BinaryIO | None = None,
    measurer: Measurer | None = None,
) -> Measurement:
    """MRENCLAVE of a container whose file fixes the measurement (SDK enclave, ``.sgxs``, ensign-signed).

    Args:
        container: the opened container.
        on_progress: ``(done, total)`` stream bytes, at most every 50 ms.
        cancel: stops the measurement at the next batch.
        sgxs_out: also write the record stream there.
        measurer: reuse this Measurer's checkpoints (default: the SDK enclave's own, or a new one).

    Returns:
        The measurement.

    Raises:
        ContainerError: nothing to measure (a SIGSTRUCT, token, Open Enclave or unsigned enclave).
        SdkError: corrupt SDK metadata.
        MeasurementCancelled: ``cancel`` was set.
    """
    if container.sdk is not None:
        if not container.sdk.signed:
            raise ContainerError(
                f"{container.path}: SDK enclave not signed yet: its layout is decided by sgx_sign "
                "(see 'ensign sdk-config --config Enclave.config.xml')"
            )
        engine = measurer or container.sdk.measurer
        return engine.measure(container.sdk.plan(), on_progress=on_progress, cancel=cancel, sgxs_out=sgxs_out)
    if container.sgxs is not None:
        stream = container.sgxs
        if stream.plan is not None:
            return (measurer or Measurer()).measure(stream.plan, on_progress=on_progress, cancel=cancel, sgxs_out=sgxs_out)
        if stream.unsized:
            raise ContainerError(f"{container.path}: UNSIZED stream: its SIZE is not final, so it has no MRENCLAVE")
        # Partial-page measurement cannot be a plan: hash the stream's measured records directly.
        started = _dt.datetime.now()
        digest = stream.stream_digest(on_progress=on_progress, cancel=cancel)
        if sgxs_out is not None:
            sgxs_out.write(stream.data)
        hashed = stream.stream_bytes - stream.counts["UNMEASRD"] * 320
        return Measurement(digest, stream.size, stream.ssaframesize, hashed, hashed, 0,
                           (_dt.datetime.now() - started).total_seconds(), stream.record_counts)
    plan = container.plan()
    if plan is not None:
        return (measurer or Measurer()).measure(plan, on_progress=on_progress, cancel=cancel, sgxs_out=sgxs_out)
    reasons = {
        KIND_SIGSTRUCT: "a SIGSTRUCT names an MRENCLAVE (ENCLAVEHASH) but holds no pages to measure",
        KIND_TOKEN: "an EINITTOKEN names an MRENCLAVE but holds no pages to measure",
        KIND_OE: "ensign does not derive Open Enclave layouts, so it cannot recompute MRENCLAVE",
        KIND_OE_UNSIGNED: "ensign does not derive Open Enclave layouts, so it cannot recompute MRENCLAVE",
    }
    raise ContainerError(f"{container.path}: {reasons.get(container.kind, 'nothing to measure')}")


@dataclass(frozen=True, slots=True)
class HashResult:
    """What ``ensign hash`` reports for a file whose measurement it fixes."""

    path: str
    kind: str
    title: str
    measurement: Measurement
    expected: str  # ENCLAVEHASH of the file's primary SIGSTRUCT ('' when it has none)
    sgxs_out: str | None  # where the record stream was written

    @property
    def mrenclave(self) -> str:
        """MRENCLAVE as hex."""
        return self.measurement.hex

    @property
    def matches(self) -> bool | None:
        """Whether MRENCLAVE equals the file's ENCLAVEHASH (None when it has no SIGSTRUCT)."""
        return None if not self.expected else self.expected == self.measurement.hex


def hash_file(
    path: str | Path,
    *,
    sgxs_out: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> HashResult | None:
    """Measure a file whose MRENCLAVE the file itself determines.

    Args:
        path: an SDK enclave or ``.sgxs`` stream (any other known kind raises).
        sgxs_out: write the record stream there too (atomically).
        on_progress: progress callback.
        cancel: cancels the measurement.

    Returns:
        The result, or None for an ELF program without SDK/OE metadata (ensign or plain) and for
        files of no known kind: those go to ``core.enclave`` (which measures programs under
        ensign's parameters and reports non-ELF files as it always did).

    Raises:
        ContainerError: a kind that cannot be measured (SIGSTRUCT, token, Open Enclave, unsigned SDK).
        SdkError / ElfFormatError: corrupt input.
        MeasurementCancelled: ``cancel`` was set.
    """
    container = _open(os.fspath(path), allow_plain_elf=True, unknown_ok=True)
    if container is None:
        return None
    with container:
        if sgxs_out is not None:
            results: list[Measurement] = []
            elfedit.atomic_write(
                sgxs_out,
                lambda handle: results.append(
                    measure_container(container, on_progress=on_progress, cancel=cancel, sgxs_out=handle, measurer=Measurer())
                ),
            )
            measurement = results[0]
        else:
            measurement = measure_container(container, on_progress=on_progress, cancel=cancel)
        expected = container.sigstruct.enclavehash.hex() if container.sigstruct is not None else ""
        return HashResult(container.path, container.kind, container.title, measurement, expected,
                          os.fspath(sgxs_out) if sgxs_out is not None else None)


# --------------------------------------------------------------------------------------------
# Verifying
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigstructCheck:
    """One SIGSTRUCT checked: signature, Q1/Q2, header fields, and the MRENCLAVE it names."""

    label: str  # "metadata[0]", "sigstruct", "sgx1", ...
    enclavehash: str  # hex
    mrsigner: str  # hex
    signature_valid: bool
    q1_ok: bool
    q2_ok: bool
    matches_measurement: bool | None  # ENCLAVEHASH == computed MRENCLAVE (None when not measured)
    problems: tuple[str, ...]  # findings that make the check fail
    warnings: tuple[str, ...]  # findings that do not (bits outside the masks, binary dates, ...)


@dataclass(frozen=True, slots=True)
class ContainerVerification:
    """Outcome of verifying any container (``ensign verify``)."""

    path: str
    kind: str
    ok: bool  # every SIGSTRUCT valid and (when measured) every ENCLAVEHASH equals the measurement
    measured: bool  # True when ensign recomputed MRENCLAVE from the file
    computed: str  # MRENCLAVE ensign computed (hex; '' when not measured)
    expected: str  # ENCLAVEHASH of the primary SIGSTRUCT (hex; '' when there is none)
    signature_valid: bool  # every checked signature verifies
    mrsigner: str  # MRSIGNER of the primary SIGSTRUCT (hex; '' when none)
    checks: tuple[SigstructCheck, ...]
    problems: tuple[str, ...]  # every reason ``ok`` is False
    notes: tuple[str, ...]  # what was and was not checked


def _check_sigstruct(label: str, sigstruct: Sigstruct, computed: str | None) -> SigstructCheck:
    result = sigstruct.check()
    problems: list[str] = []
    warnings: list[str] = []
    for problem in result.problems:
        (warnings if "EINIT will not check them" in problem else problems).append(f"{label}: {problem}")
    if sigstruct.date_info.kind == "binary-ymd":
        warnings.append(f"{label}: DATE is written as binary year/month/day, not BCD ({sigstruct.date_info.text})")
    matches = None
    if computed is not None:
        matches = computed == sigstruct.enclavehash.hex()
        if not matches:
            problems.append(
                f"{label}: ENCLAVEHASH {sigstruct.enclavehash.hex()} does not match the computed MRENCLAVE {computed}"
            )
    return SigstructCheck(label, sigstruct.enclavehash.hex(), sigstruct.mrsigner, result.signature_valid,
                          result.q1_ok, result.q2_ok, matches, tuple(problems), tuple(warnings))


def find_companion_sigstruct(path: str | Path) -> str | None:
    """A SIGSTRUCT file next to ``path`` with the same stem (``x.sgxs`` → ``x.sig``; ``x.token`` → ``x.sig``,
    ``x.signed.so``), or None."""
    path = Path(path)
    stem = path.name
    for suffix in (".gz", ".sgxs", ".token"):
        stem = stem.removesuffix(suffix)
    for candidate in (f"{stem}.sig", f"{stem}_css.bin", f"{stem}.signed.so"):
        full = path.with_name(candidate)
        if full.is_file() and full != path:
            return str(full)
    return None


def _sigstruct_from(path: str) -> Sigstruct:
    with open_any(path) as container:
        if container.sigstruct is None:
            raise ContainerError(f"{path}: holds no SIGSTRUCT ({container.title})")
        return container.sigstruct


def verify_container(
    container: Container,
    *,
    sigstruct: Sigstruct | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ContainerVerification:
    """Verify a container: recompute MRENCLAVE where possible and check every SIGSTRUCT.

    * SDK enclave: measure every metadata block (the primary decides; the others must agree)
      and check each block's SIGSTRUCT (or ``sigstruct`` instead).
    * ``.sgxs`` stream: measure it and check ``sigstruct`` (default: the companion ``.sig``).
    * SIGSTRUCT file, Open Enclave enclave: check the signature, Q1/Q2 and header fields only.
    * EINITTOKEN: match it against ``sigstruct`` (default: a companion file).
    * ensign-signed program: see ``core.enclave.verify_enclave`` (used through ``verify_file``).

    Raises:
        ContainerError: nothing to verify against (a stream or token without a SIGSTRUCT, an
            unsigned enclave).
        SdkError: corrupt SDK metadata.
        MeasurementCancelled: ``cancel`` was set.
    """
    notes: list[str] = list(container.notes)
    problems: list[str] = []
    computed: str | None = None
    labeled: list[tuple[str, Sigstruct]] = [(item.label, item.sigstruct) for item in container.sigstructs]
    if sigstruct is not None:
        labeled = [("given SIGSTRUCT", sigstruct)]

    if container.kind in (KIND_SDK_UNSIGNED, KIND_OE_UNSIGNED):
        raise ContainerError(f"{container.path}: not signed, nothing to verify ({container.title})")
    if container.sdk is not None:
        sdk = container.sdk
        computed = measure_container(container, on_progress=on_progress, cancel=cancel).hex
        for block in sdk.blocks[1:]:
            other = sdk.measure(block.position, cancel=cancel)
            if other.hex != computed:
                problems.append(
                    f"metadata block {block.position} (version {block.version_text}) measures to {other.hex}, "
                    f"not {computed} like the first block"
                )
        notes.append(f"MRENCLAVE recomputed as the SDK loader does, from metadata {sdk.primary.version_text}")
    elif container.sgxs is not None:
        if sigstruct is None:
            companion = find_companion_sigstruct(container.path)
            if companion is None:
                raise ContainerError(
                    f"{container.path}: a measurement stream holds no SIGSTRUCT: give --sig FILE to check against"
                )
            labeled = [(Path(companion).name, _sigstruct_from(companion))]
            notes.append(f"checked against {companion}")
        computed = measure_container(container, on_progress=on_progress, cancel=cancel).hex
    elif container.token is not None:
        if sigstruct is None:
            companion = find_companion_sigstruct(container.path)
            if companion is None:
                raise ContainerError(f"{container.path}: an EINITTOKEN alone: give --sig FILE to match it against")
            sigstruct = _sigstruct_from(companion)
            notes.append(f"matched against {companion}")
        match = match_token(container.token, sigstruct)
        problems += match.problems()
        check = _check_sigstruct("SIGSTRUCT", sigstruct, None)
        return ContainerVerification(container.path, container.kind, not problems and not check.problems, False, "",
                                     sigstruct.enclavehash.hex(), check.signature_valid, sigstruct.mrsigner, (check,),
                                     tuple(problems + list(check.problems)), tuple(notes))
    elif container.kind in (KIND_SIGSTRUCT, KIND_OE):
        notes.append("only the signature, Q1/Q2 and header fields were checked: MRENCLAVE was not recomputed")
    else:
        raise ContainerError(f"{container.path}: use core.enclave.verify_enclave for ensign-signed programs")

    if not labeled:
        raise ContainerError(f"{container.path}: holds no SIGSTRUCT to verify")
    checks = tuple(_check_sigstruct(label, item, computed) for label, item in labeled)
    for check in checks:
        problems += check.problems
        if not check.signature_valid:
            problems.append(f"{check.label}: the signature does not verify against its modulus")
        elif not (check.q1_ok and check.q2_ok):
            problems.append(f"{check.label}: Q1/Q2 are wrong (EINIT would reject it)")
    primary = labeled[0][1]
    return ContainerVerification(
        path=container.path,
        kind=container.kind,
        ok=not problems,
        measured=computed is not None,
        computed=computed or "",
        expected=primary.enclavehash.hex(),
        signature_valid=all(check.signature_valid for check in checks),
        mrsigner=primary.mrsigner,
        checks=checks,
        problems=tuple(dict.fromkeys(problems)),
        notes=tuple(notes),
    )


def verify_file(
    path: str | Path,
    *,
    sigstruct: Sigstruct | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ContainerVerification | None:
    """Verify any file ensign reads, except programs measured under ensign parameters.

    Returns:
        The verification, or None for an ELF program without SDK/OE metadata (ensign-signed or
        plain) and for files of no known kind: verify those with ``core.enclave.verify_enclave``.

    Raises:
        see :func:`verify_container`; plus ContainerError for unknown files.
    """
    container = _open(os.fspath(path), allow_plain_elf=True, unknown_ok=True)
    if container is None:
        return None
    with container:
        return verify_container(container, sigstruct=sigstruct, on_progress=on_progress, cancel=cancel)


def sgxs_container_from_bytes(data: bytes, *, origin: str = "<sgxs>") -> Container:
    """A measurement-stream container from bytes already in memory (tests, the TUI)."""
    return _sgxs_container(origin, len(data), parse_sgxs(data, origin=origin))


def page_count(container: Container) -> int:
    """Pages the container's plan adds (0 when it has none)."""
    plan = container.plan()
    return sum(run.pages for run in plan.runs) if plan is not None else 0

