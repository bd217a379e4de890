"""Messages that cross widgets or threads in the Textual inspector.

Workers post these from their threads to the main screen; the screen is the only place that
turns them into state (reactives). Messages that belong to one widget (``ParamsForm.Changed``,
``LayoutView.RegionSelected``) live on that widget's class instead. Nothing here touches a
widget or imports ``core`` beyond type names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from core.diagnose import ExplainReport
    from core.diff import DiffReport
    from core.enclave import MeasuredPair, SignResult
    from core.layout import Layout
    from core.measure import Measurement
    from tui.screens.document import Comparison, EnclaveDocument


class MeasurementStarted(Message):
    """The worker derived the layouts of ``generation`` and starts hashing.

    Layouts are cheap and arrive before the digest, so the Layout and Records tabs follow an
    edit at once while the MRENCLAVE is still being computed.
    """

    def __init__(self, generation: int, sgx1: Layout, edmm: Layout) -> None:
        super().__init__()
        self.generation = generation  # which parameter edit this belongs to
        self.sgx1 = sgx1
        self.edmm = edmm


class MeasurementProgress(Message):
    """Bytes of the record stream hashed so far; newer progress replaces queued older progress."""

    def __init__(self, generation: int, done: int, total: int) -> None:
        super().__init__()
        self.generation = generation
        self.done = done  # stream bytes hashed (both variants together)
        self.total = total  # stream bytes in all

    def can_replace(self, message: Message) -> bool:
        """Only the newest progress of a run matters: coalesce queued ones."""
        return isinstance(message, MeasurementProgress)


class MeasurementReady(Message):
    """Both MRENCLAVEs of ``generation`` are known."""

    def __init__(self, generation: int, result: MeasuredPair, wall_seconds: float) -> None:
        super().__init__()
        self.generation = generation
        self.result = result
        self.wall_seconds = wall_seconds  # from the worker's start to the result (seconds)


class DocumentOpened(Message):
    """A file was opened in a worker and is ready to be shown."""

    def __init__(self, document: EnclaveDocument, *, keep_params: bool = False) -> None:
        super().__init__()
        self.document = document
        self.keep_params = keep_params  # True after signing in place: keep the key chosen


class ComparisonLoaded(Message):
    """A SIGSTRUCT (raw ``.sig`` or a signed binary's ``.ensign``) to compare against."""

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison


class SignFinished(Message):
    """The sign worker wrote a signed file."""

    def __init__(self, result: SignResult, debug_key: bool, how: str = "") -> None:
        super().__init__()
        self.result = result
        self.debug_key = debug_key  # signed with ensign's published debug key
        self.how = how  # e.g. "PKCS#11 token 'prod' key 'sgx'", or which file signed which SIGSTRUCT


class SigningDataExported(Message):
    """The export worker wrote what an offline signer must sign."""

    def __init__(self, paths: tuple[str, ...], digest: bool) -> None:
        super().__init__()
        self.paths = paths  # FILE (both parts), FILE.sgx1, FILE.edmm, FILE.json
        self.digest = digest  # True: SHA-256 digests, False: the 256-byte signed data


class SgxsExported(Message):
    """The export worker wrote an ``.sgxs`` record stream."""

    def __init__(self, path: str, measurement: Measurement) -> None:
        super().__init__()
        self.path = path
        self.measurement = measurement


class DiagnosisProgress(Message):
    """Progress of the explain or diff worker; newer progress replaces queued older progress."""

    def __init__(self, phase: str, done: int, total: int) -> None:
        super().__init__()
        self.phase = phase  # "measuring", "searching" (candidates) or "comparing" (pages)
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        """Only the newest progress matters: coalesce queued ones."""
        return isinstance(message, DiagnosisProgress)


class ExplainReady(Message):
    """The explain worker finished."""

    def __init__(self, report: ExplainReport) -> None:
        super().__init__()
        self.report = report


class DiffReady(Message):
    """The diff worker compared the signed parameters' record stream with the current one."""

    def __init__(self, report: DiffReport, variant: str) -> None:
        super().__init__()
        self.report = report
        self.variant = variant  # the measurement compared (sgx1/edmm)
