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
from dataclasses import dataclass
from pathlib import Path

from core.elf import ElfImage
from core.enclave import EnclaveBinary, MeasuredPair, PageLocation, SignResult, sign_enclave
from core.errors import ContainerError, EnsignError
from core.layout import VARIANT_EDMM, VARIANT_SGX1, Layout
from core.measure import Measurement, ProgressCallback
from core.params import Params
from core.signing import Signer
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct

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
    def image(self) -> ElfImage:
        """The ELF image (segments and sections)."""
        return self.binary.image

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

    def export_sgxs(self, layout: Layout, path: str, *, on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> Measurement:
        """Write the record stream of ``layout`` as an ``.sgxs`` file (atomically)."""
        from core import elfedit
        from core.measure import Measurer

        written: list[Measurement] = []
        elfedit.atomic_write(path, lambda handle: written.append(
            Measurer().measure(layout.plan, sgxs_out=handle, on_progress=on_progress, cancel=cancel)))
        return written[0]


def load_comparison(path: str, document: EnclaveDocument | None = None) -> Comparison:
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
    embedded = document.binary.signature if document is not None else None
    if embedded is not None:
        for candidate_variant, candidate in ((VARIANT_SGX1, embedded.sgx1), (VARIANT_EDMM, embedded.edmm)):
            if candidate.enclavehash == sigstruct.enclavehash:
                signed_params, variant = embedded.params, candidate_variant
                break
    return Comparison(origin=name, path=path, sigstructs=((variant, sigstruct),), signed_params=signed_params)
