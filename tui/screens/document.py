"""What the main screen shows: an opened file ("document") and a SIGSTRUCT to compare with.

The main screen talks to :class:`EnclaveDocument` only, never to ``core.enclave`` directly, so
another kind of file (an Intel SGX SDK enclave, an ``.sgxs`` stream) can plug in later as a
second class with the same methods. Every method here is headless and thread-safe enough to run
in a worker: it returns data or raises :class:`~core.errors.EnsignError`, and never touches a
widget.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.elf import ElfImage
from core.enclave import EnclaveBinary, MeasuredPair, PageLocation, SignResult, sign_enclave
from core.errors import ContainerError, EnsignError
from core.layout import VARIANT_EDMM, VARIANT_SGX1, Layout, Region
from core.measure import Measurement, ProgressCallback
from core.params import Params
from core.records import MeasurementPlan
from core.signing import Signer
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct

if TYPE_CHECKING:
    from core.containers import Container
    from core.diagnose import ExplainReport
    from core.diff import DiffReport
    from core.sdk_config import SdkConfig
    from core.sdk_whatif import SdkWhatIf, WhatIf

SAMPLE_PATH = Path(__file__).resolve().parent.parent / "sample" / "sample-enclave"
"""The bundled sample program that ``ensign inspect`` opens without an APP."""


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:
        return text
    return relative if not relative.startswith("..") else text


@dataclass(frozen=True, slots=True)
class Comparison:
    """A SIGSTRUCT to compare the current parameters against.

    ``sigstructs`` pairs each SIGSTRUCT with the measurement variant it belongs to; ``None``
    means "unknown" (a raw ``.sig``): the comparison then picks the variant whose current
    MRENCLAVE it matches, else SGX1.
    """

    origin: str  # what to call the source: "embedded .ensign", "app.sig", ...
    path: str  # the file it came from
    sigstructs: tuple[tuple[str | None, Sigstruct], ...]
    signed_params: Params | None  # the signed parameters when the source records them (.ensign)


class EnclaveDocument:
    """An ensign ELF program opened for inspection, measurement and signing.

    Args:
        binary: the opened binary (core).
        bundled: True for the bundled sample, which is package data: signing defaults to a copy.
    """

    kind = "ELF program"
    has_params = True  # ensign's parameters decide the layout: the form edits them
    has_config = False  # no SDK configuration form
    measurable = True
    unmeasurable_reason = ""
    notes: tuple[str, ...] = ()

    def __init__(self, binary: EnclaveBinary, *, bundled: bool = False) -> None:
        self.binary = binary
        self.bundled = bundled
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> EnclaveDocument:
        """Open ``path`` (the bundled sample when None).

        Raises:
            EnsignError: the file cannot be opened or is not a usable ELF program.
        """
        if path is None:
            return cls(EnclaveBinary.open(SAMPLE_PATH), bundled=True)
        if os.path.isdir(path):
            raise EnsignError(f"{path}: is a directory", title="Cannot open")
        if not os.path.exists(path):
            raise EnsignError(f"{path}: no such file", title="Cannot open")
        bundled = Path(path).resolve() == SAMPLE_PATH
        return cls(EnclaveBinary.open(path), bundled=bundled)

    # -- description ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The file's path as given."""
        return self.binary.path

    @property
    def name(self) -> str:
        """File name without directories."""
        return os.path.basename(self.binary.path)

    @property
    def file_size(self) -> int:
        """Bytes on disk."""
        return self.binary.image.file_size

    @property
    def type_text(self) -> str:
        """e.g. ``ELF EXEC``."""
        return f"ELF {self.binary.image.elf_type}"

    @property
    def image(self) -> ElfImage | None:
        """The ELF image (segments and sections)."""
        return self.binary.image

    @property
    def signed_text(self) -> str:
        """What the header says about the signature."""
        return "signed (.ensign)" if self.binary.signature is not None else "not signed"

    def signed_comparison(self) -> Comparison | None:
        """The signature embedded in the file (``.ensign``), if any."""
        signature = self.binary.signature
        if signature is None:
            return None
        return Comparison(origin=f"{self.name} (embedded .ensign)", path=self.path,
                          sigstructs=((VARIANT_SGX1, signature.sgx1), (VARIANT_EDMM, signature.edmm)),
                          signed_params=signature.params)

    @property
    def signed_params(self) -> Params | None:
        """The parameters signed into the file, if it is signed."""
        signature = self.binary.signature
        return signature.params if signature is not None else None

    # -- measurement ------------------------------------------------------------------------

    def layouts(self, params: Params) -> tuple[Layout, Layout]:
        """SGX1 and EDMM layouts for ``params`` (cheap: no hashing).

        Raises:
            LayoutError: the parameters give no valid layout (e.g. SIZE beyond 2^47).
        """
        return self.binary.layout(params, VARIANT_SGX1), self.binary.layout(params, VARIANT_EDMM)

    def measure(self, layouts: tuple[Layout, Layout], *, on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> MeasuredPair:
        """Both MRENCLAVEs, resuming from the binary's checkpoints; progress spans both.

        Raises:
            MeasurementCancelled: ``cancel`` was set.
        """
        sgx1, edmm = layouts
        total = sgx1.plan.stream_size + edmm.plan.stream_size

        def first(done: int, _total: int) -> None:
            if on_progress is not None:
                on_progress(done, total)

        def second(done: int, _total: int) -> None:
            if on_progress is not None:
                on_progress(sgx1.plan.stream_size + done, total)

        measurer = self.binary.measurer
        sgx1_measurement = measurer.measure(sgx1.plan, on_progress=first, cancel=cancel)
        edmm_measurement = measurer.measure(edmm.plan, on_progress=second, cancel=cancel)
        return MeasuredPair(sgx1.params, sgx1, edmm, sgx1_measurement, edmm_measurement)

    def locate(self, offset: int, layout: Layout) -> PageLocation:
        """Region, segment, section and symbol of an enclave offset."""
        with self._lock:  # the symbol index is built lazily
            return self.binary.locate(offset, layout)

    # -- writing ----------------------------------------------------------------------------

    def sign(self, params: Params, signer: Signer, *, date: _dt.date, output: str | None,
             on_progress: ProgressCallback | None = None,
             cancel: threading.Event | None = None) -> SignResult:
        """Sign with ``params`` and write atomically (in place when ``output`` is None)."""
        return sign_enclave(self.binary, params, signer, date=date, output=output,
                            on_progress=on_progress, cancel=cancel)

    def export_signing_data(self, params: Params, date: _dt.date, path: str, *, digest: bool = False,
                            on_progress: ProgressCallback | None = None,
                            cancel: threading.Event | None = None) -> tuple[str, ...]:
        """Write what an offline signer signs (both SIGSTRUCTs): the 256-byte messages, or their digests.

        Returns:
            The paths written: ``path`` (both parts), one file per variant, and the ``.json`` manifest.

        Raises:
            EnsignError: measurement failed or a file could not be written.
        """
        from core import twostep

        pair = self.binary.measure_pair(params, on_progress=on_progress, cancel=cancel)
        request = twostep.ensign_request(self.binary, pair, date)
        write = twostep.export_digest if digest else twostep.export_signing_data
        return write(request, path)

    def attach(self, params: Params, date: _dt.date | None, *, public_key: str, signatures: list[str],
               signing_data: str | None, output: str | None, on_progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None) -> tuple[SignResult, str]:
        """Attach signatures made elsewhere and write the signed file (in place when ``output`` is None).

        Args:
            params: the parameters the export was made with.
            date: SIGSTRUCT DATE; None: the date recorded in ``signing_data``.
            public_key: the signer's public key (PEM, certificate, or a private key file).
            signatures: files holding the SGX1 and EDMM signatures (either order and byte order).
            signing_data: the earlier export, to name what changed when a signature does not fit.
            output: where to write a signed copy.

        Returns:
            What was written, and which file signed which SIGSTRUCT.

        Raises:
            SignatureError: the signatures do not fit (the message says why); EnsignError otherwise.
        """
        from core import twostep
        from core.enclave import today_utc, write_signature
        from core.signing import load_public_key

        exported = twostep.read_exported(signing_data) if signing_data else None
        if date is None:
            date = (twostep.exported_date(exported) if exported is not None else None) or today_utc()
        modulus = load_public_key(public_key).public_numbers().n
        pair = self.binary.measure_pair(params, on_progress=on_progress, cancel=cancel)
        signature, plan = twostep.attach_ensign(self.binary, pair, date, modulus,
                                                twostep.signatures_from_files(signatures), exported=exported)
        target = write_signature(self.binary, signature, output=output)
        how = "; ".join(f"{match.variant.upper()} from {display_path(match.source)} ({match.byte_order}-endian)"
                        for match in plan.matches)
        return SignResult(output=target, signature=signature, pair=pair, mrsigner=signature.sgx1.mrsigner), how

    # -- diagnosis ----------------------------------------------------------------------------

    def explain(self, params: Params, comparison: Comparison | None, *,
                on_progress: Callable[[str, int, int], None] | None = None,
                cancel: threading.Event | None = None) -> ExplainReport:
        """Why ``params`` do not measure to the comparison's MRENCLAVE (the embedded signature by default).

        Raises:
            ContainerError: nothing to explain against (unsigned, no SIGSTRUCT loaded).
            MeasurementCancelled: ``cancel`` was set.
        """
        from core.diagnose import explain, load_target, target_from_signature
        from core.search import build_space

        if comparison is None or os.path.abspath(comparison.path) == os.path.abspath(self.path):
            if self.binary.signature is None:
                raise ContainerError(f"{self.name} is not signed: load a SIGSTRUCT to explain against (l)",
                                     title="Nothing to explain")
            target = target_from_signature(self.binary, origin=f"the signature embedded in {self.name}")
        else:
            target = load_target(comparison.path)
        # Not under self._lock: the UI thread locates records while this runs for seconds.
        return explain(self.binary, params, target, build_space(), on_progress=on_progress, cancel=cancel)

    def diff(self, signed: Params, params: Params, variant: str, *,
             on_progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> DiffReport:
        """Record-by-record diff of the signed parameters' stream (A) against ``params``' stream (B).

        Raises:
            LayoutError: either side gives no valid layout. MeasurementCancelled: ``cancel`` was set.
        """
        from core.diff import diff_sides, side_for_binary

        side_a = side_for_binary(self.binary, signed, variant, label=f"signed parameters ({variant.upper()})")
        side_b = side_for_binary(self.binary, params, variant, label=f"current parameters ({variant.upper()})")
        return diff_sides(side_a, side_b, on_progress=on_progress, cancel=cancel)

    def export_sgxs(self, layout: Layout, path: str, *, on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> Measurement:
        """Write the record stream of ``layout`` as an ``.sgxs`` file (atomically)."""
        from core import elfedit
        from core.measure import Measurer

        written: list[Measurement] = []
        elfedit.atomic_write(path, lambda handle: written.append(
            Measurer().measure(layout.plan, sgxs_out=handle, on_progress=on_progress, cancel=cancel)))
        return written[0]


def load_comparison(path: str, document: EnclaveDocument | ContainerDocument | None = None) -> Comparison:
    """Read a SIGSTRUCT to compare against: a raw 1808-byte ``.sig`` or an ensign-signed ELF.

    A raw ``.sig`` records no layout parameters; when its ENCLAVEHASH is one of the open
    document's embedded signatures, those signed parameters are used.

    Raises:
        EnsignError: unreadable, or neither a SIGSTRUCT nor an ensign-signed ELF.
    """
    file = Path(path)
    if file.is_dir():
        raise EnsignError(f"{path}: is a directory", title="Cannot load SIGSTRUCT")
    try:
        with file.open("rb") as handle:
            head = handle.read(4)
        size = file.stat().st_size
    except OSError as error:
        raise EnsignError(f"{path}: {error.strerror or error}", title="Cannot load SIGSTRUCT") from None
    name = os.path.basename(path)
    if head == b"\x7fELF":
        signed = EnclaveBinary.open(path).signature
        if signed is None:
            raise ContainerError(f"{path}: an ELF file without an ensign signature (.ensign section)",
                                 title="Nothing to compare")
        return Comparison(origin=f"{name} (.ensign)", path=path,
                          sigstructs=((VARIANT_SGX1, signed.sgx1), (VARIANT_EDMM, signed.edmm)),
                          signed_params=signed.params)
    if size != SIGSTRUCT_SIZE:
        raise ContainerError(f"{path}: {size} bytes is neither a SIGSTRUCT ({SIGSTRUCT_SIZE} bytes) "
                             "nor an ensign-signed ELF", title="Cannot load SIGSTRUCT")
    sigstruct = Sigstruct.from_bytes(file.read_bytes())
    signed_params = None
    variant: str | None = None
    embedded = document.binary.signature if isinstance(document, EnclaveDocument) else None
    if embedded is not None:
        for candidate_variant, candidate in ((VARIANT_SGX1, embedded.sgx1), (VARIANT_EDMM, embedded.edmm)):
            if candidate.enclavehash == sigstruct.enclavehash:
                signed_params, variant = embedded.params, candidate_variant
                break
    return Comparison(origin=name, path=path, sigstructs=((variant, sigstruct),), signed_params=signed_params)


# --------------------------------------------------------------------------------------------
# Files whose layout the file itself fixes: SDK / Open Enclave enclaves, .sgxs, SIGSTRUCTs, tokens
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageSpan:
    """Where the image pages end (the Records view names segments/sections below it)."""

    end: int  # bytes from enclave base


@dataclass(frozen=True, slots=True)
class FixedLayout:
    """A layout fixed by the file (SDK metadata, an ``.sgxs`` stream), shaped like
    :class:`~core.layout.Layout` for the Layout and Records views (which read only these fields)."""

    variant: str  # always SGX1: the file holds one measurement
    params: Params  # unused (the form is hidden); kept for the views' type
    size: int  # SECS.SIZE, bytes
    ssaframesize: int  # SECS.SSAFRAMESIZE, pages
    regions: tuple[Region, ...]  # address order, each measured / added / post-added / reserved
    plan: MeasurementPlan
    image: ImageSpan

    def region_for_offset(self, offset: int) -> Region | None:
        """The region containing ``offset``."""
        for region in self.regions:
            if region.offset <= offset < region.end:
                return region
        return None


class ContainerDocument:
    """Any other file ensign reads (:func:`core.containers.open_any`), shown in the same views.

    Its layout and MRENCLAVE are fixed by the file (no ensign parameters, so the form is
    hidden); files with no pages (a SIGSTRUCT, a token, an Open Enclave enclave) show their
    SIGSTRUCT fields and say why nothing is measured.
    """

    has_params = False
    has_config = False  # True: an SDK configuration form drives the layout (SdkDocument)
    bundled = False
    signed_params: Params | None = None
    extra_notes: tuple[str, ...] = ()

    def __init__(self, container: Container) -> None:
        self.container = container
        self._plan: MeasurementPlan | None = None
        self._reason = ""
        try:
            self._plan = container.plan()
        except EnsignError as error:
            self._reason = error.message
        if self._plan is None and not self._reason:
            self._reason = _UNMEASURED.get(container.kind, "the file fixes no measurement")

    # -- description ------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``sdk-signed-enclave``, ``measurement-stream``, … (core.containers kinds)."""
        return self.container.kind

    @property
    def path(self) -> str:
        """The file's path as given."""
        return self.container.path

    @property
    def name(self) -> str:
        """File name without directories."""
        return os.path.basename(self.container.path)

    @property
    def file_size(self) -> int:
        """Bytes on disk."""
        return self.container.file_size

    @property
    def type_text(self) -> str:
        """What the file is, one line."""
        return self.container.title

    @property
    def image(self) -> ElfImage | None:
        """The ELF image of an SDK / Open Enclave enclave (None for other files)."""
        if self.container.sdk is not None:
            return self.container.sdk.image
        return self.container._image

    @property
    def signed_text(self) -> str:
        """What the header says about the signature(s)."""
        count = len(self.container.sigstructs)
        if count == 0:
            return "no SIGSTRUCT"
        return "1 SIGSTRUCT" if count == 1 else f"{count} SIGSTRUCTs"

    @property
    def measurable(self) -> bool:
        """True when the file fixes a record stream ensign can hash."""
        return self._plan is not None

    @property
    def unmeasurable_reason(self) -> str:
        """Why there is no MRENCLAVE to compute ('' when there is)."""
        return "" if self._plan is not None else self._reason

    @property
    def notes(self) -> tuple[str, ...]:
        """Findings worth showing (from core), e.g. token checks."""
        notes = [*self.container.notes, *self.extra_notes]
        token = self.container.token
        if token is not None:
            notes.append(f"EINITTOKEN: VALID {token.valid}, MRENCLAVE {token.mrenclave.hex()}, "
                         f"MRSIGNER {token.mrsigner.hex()}, ATTRIBUTES {token.attributes_flags:#x}/"
                         f"{token.attributes_xfrm:#x}, ISVPRODID_LE {token.isvprodidle}, ISVSVN_LE {token.isvsvnle}")
        return tuple(notes)

    def signed_comparison(self) -> Comparison | None:
        """The file's own SIGSTRUCT(s), labelled."""
        if not self.container.sigstructs:
            return None
        labels = ", ".join(item.label for item in self.container.sigstructs)
        return Comparison(origin=f"{self.name} ({labels})", path=self.path,
                          sigstructs=tuple((None, item.sigstruct) for item in self.container.sigstructs),
                          signed_params=None)

    # -- measurement ------------------------------------------------------------------------

    def layouts(self, params: Params) -> tuple[FixedLayout, FixedLayout]:
        """The file's layout (the same for both slots: there is one measurement).

        Raises:
            ContainerError: the file fixes no measurement (the message says why).
        """
        plan = self._plan
        if plan is None:
            raise ContainerError(f"{self.path}: {self._reason}", title="Nothing to measure")
        regions = self.container.regions()
        if self.container.sdk is not None:
            image_end = self.container.sdk.load().image_end
        else:
            image_end = 0
        layout = FixedLayout(VARIANT_SGX1, params, plan.size, plan.ssaframesize, regions, plan, ImageSpan(image_end))
        return layout, layout

    def measure(self, layouts: tuple[FixedLayout, FixedLayout], *, on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> MeasuredPair:
        """The file's MRENCLAVE (in both slots of the pair).

        Raises:
            MeasurementCancelled: ``cancel`` was set.
        """
        from core.containers import measure_container

        measurement = measure_container(self.container, on_progress=on_progress, cancel=cancel)
        layout = layouts[0]
        return MeasuredPair(layout.params, layout, layout, measurement, measurement)  # type: ignore[arg-type]

    def locate(self, offset: int, layout: FixedLayout) -> PageLocation:
        """Region, segment, section and symbol of an enclave offset."""
        region = layout.region_for_offset(offset)
        region_name = region.name if region is not None else "not added"
        sdk = self.container.sdk
        if sdk is None:
            return PageLocation(offset, region_name, None, None, None, None)
        with _SDK_LOCK:
            described = sdk.describe_offset(offset)
        segment = described.region if described.region.startswith("LOAD[") else None
        return PageLocation(offset, region_name, segment, described.section, described.symbol, None)

    def export_sgxs(self, layout: FixedLayout, path: str, *, on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> Measurement:
        """Write the record stream as an ``.sgxs`` file (atomically)."""
        return EnclaveDocument.export_sgxs(self, layout, path, on_progress=on_progress,  # type: ignore[arg-type]
                                           cancel=cancel)


class SdkDocument(ContainerDocument):
    """An Intel SGX SDK enclave with a live what-if (:class:`core.sdk_whatif.SdkWhatIf`): its
    ``Enclave.config.xml`` parameters decide layout and MRENCLAVE, as ``sgx_sign`` would.

    Args:
        container: the opened SDK enclave.
        session: the what-if session on it.
        config: the configuration to start from (``--config``, else inferred from the signed
            metadata, else the release's defaults for an unsigned enclave).
    """

    has_config = True

    def __init__(self, container: Container, session: SdkWhatIf, config: SdkConfig) -> None:
        super().__init__(container)
        self.session = session
        self.config = config

    @property
    def measurable(self) -> bool:
        """Always: the configuration fixes the layout, signed or not."""
        return True

    @property
    def unmeasurable_reason(self) -> str:
        """Nothing: every configuration sgx_sign accepts is measured."""
        return ""

    @property
    def release_text(self) -> str:
        """``SDK 1.8 rules`` (``SDK 2.9 (unverified) rules`` for releases not checked against sgx_sign)."""
        return f"{self.session.profile.label} rules"

    def predict(self, config: SdkConfig, *, on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> tuple[WhatIf, MeasuredPair]:
        """What ``sgx_sign`` would derive and measure for ``config``, shaped for the views.

        Raises:
            ConfigRefused: sgx_sign refuses the configuration (the message says why).
            MeasurementCancelled: ``cancel`` was set.
        """
        whatif = self.session.predict(config, on_progress=on_progress, cancel=cancel)
        assert whatif.measurement is not None
        layout = FixedLayout(VARIANT_SGX1, Params(), whatif.enclave_size, whatif.ssa_frame_size,
                             whatif.load.regions, whatif.plan, ImageSpan(whatif.load.image_end))
        return whatif, MeasuredPair(layout.params, layout, layout, whatif.measurement,  # type: ignore[arg-type]
                                    whatif.measurement)

    def save_config(self, config: SdkConfig, path: str) -> None:
        """Write ``config`` as ``Enclave.config.xml`` (atomically).

        Raises:
            WriteError: the file could not be written.
        """
        from core.elfedit import atomic_write_bytes
        from core.sdk_whatif import config_xml

        atomic_write_bytes(path, config_xml(config).encode())


_SDK_LOCK = threading.Lock()  # SdkEnclave builds its symbol index lazily

_UNMEASURED = {
    "sdk-unsigned-enclave": "SDK enclave not signed yet: its layout is decided by sgx_sign from Enclave.config.xml",
    "sigstruct": "a SIGSTRUCT names an MRENCLAVE (ENCLAVEHASH) but holds no pages to measure",
    "einittoken": "an EINITTOKEN names an MRENCLAVE but holds no pages to measure",
    "oe-signed-enclave": "ensign does not derive Open Enclave layouts, so it cannot recompute MRENCLAVE",
    "oe-unsigned-enclave": "ensign does not derive Open Enclave layouts, so it cannot recompute MRENCLAVE",
}

Document = EnclaveDocument | ContainerDocument
"""What the main screen shows."""


def _has_foreign_sgx_section(path: str) -> bool:
    """True for an ELF that is an Intel SDK or Open Enclave enclave (not an ensign program)."""
    from core.elf import load_elf
    from core.oe import OE_SECTION
    from core.sdk_metadata import NOTE_SECTION

    image = load_elf(path)
    try:
        return any(image.section_by_name(name) is not None for name in (NOTE_SECTION, OE_SECTION))
    finally:
        image.close()


def open_document(path: str | os.PathLike[str] | None = None, *, config: str | None = None) -> Document:
    """Open any file ensign reads: ensign programs (signed or not) as :class:`EnclaveDocument`,
    everything else :func:`core.containers.open_any` recognises as :class:`ContainerDocument`.

    Raises:
        EnsignError: missing, unreadable, or none of the kinds ensign reads (core's message).
    """
    if path is None:
        return EnclaveDocument.open(None)
    from core.containers import KIND_ENSIGN, open_any

    text = os.fspath(path)
    if os.path.isdir(text):
        raise EnsignError(f"{text}: is a directory", title="Cannot open")
    if not os.path.exists(text):
        raise EnsignError(f"{text}: no such file", title="Cannot open")
    with open(text, "rb") as handle:
        is_elf = handle.read(4) == b"\x7fELF"
    if is_elf and not _has_foreign_sgx_section(text):
        return EnclaveDocument.open(text)  # an ensign program, signed or not
    container = open_any(text)
    if container.kind == KIND_ENSIGN and container.ensign is not None:
        return EnclaveDocument(container.ensign)
    if container.sdk is not None:
        return _sdk_document(container, config)
    if config:
        raise EnsignError(f"--config applies to Intel SGX SDK enclaves; {text} is a {container.title}")
    return ContainerDocument(container)


def _sdk_document(container: Container, config_path: str | None) -> ContainerDocument:
    """The what-if document of an SDK enclave, or the plain one when its release is not modelled."""
    from core.sdk_config import load_config
    from core.sdk_whatif import SdkWhatIf, UnsupportedRelease

    assert container.sdk is not None
    try:
        session = SdkWhatIf(container.sdk)
    except UnsupportedRelease as error:
        if config_path:
            raise
        document = ContainerDocument(container)
        document.extra_notes = (f"What-if not available: {error.message}",)
        return document
    config = load_config(config_path) if config_path else session.baseline()
    return SdkDocument(container, session, config)
