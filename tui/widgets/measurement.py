"""The header lines: the open file, the live MRENCLAVEs, MRSIGNER and how the last hash went.

:class:`DocumentHeader` is one line about the file; :class:`MeasurementPanel` shows both
MRENCLAVEs (dimmed while stale), the MRSIGNER of the key or loaded SIGSTRUCT, and either a
progress bar (long measurements) or "re-hashed X of Y in Z ms". Both only render what the
screen hands them.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from core.enclave import MeasuredPair

PROGRESS_DELAY = 0.25  # seconds of measuring before the progress bar appears


def human_bytes(count: int) -> str:
    """Bytes with a binary unit and one decimal: ``1.2 MiB``, ``330 MiB``, ``512 B``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def duration_text(seconds: float) -> str:
    """``4 ms``, ``230 ms``, ``1.8 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


class DocumentHeader(Static):
    """One line about the open file: name, size, type, SIZE, signed state."""

    DEFAULT_CSS = """
    DocumentHeader { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    """

    def show(self, *, name: str, file_size: int, type_text: str, size: int | None,
             ssaframesize: int | None, signed: str) -> None:
        """Render the line."""
        text = Text()
        text.append(name, style="bold")
        text.append(f"  {human_bytes(file_size)}  {type_text}")
        if size is not None:
            text.append(f"  SIZE {size:#x}  SSAFRAMESIZE {ssaframesize}")
        text.append(f"  {signed}", style="italic")
        self.update(text, layout=False)


class MeasurementPanel(Vertical):
    """Both MRENCLAVEs, MRSIGNER and the state of the measurement."""

    DEFAULT_CSS = """
    MeasurementPanel { height: auto; padding: 0 1; background: $boost; }
    MeasurementPanel .digest { height: 1; }
    MeasurementPanel #mrsigner { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    MeasurementPanel #measure-status-row { height: 1; }
    MeasurementPanel #measure-progress { display: none; width: 40; }
    MeasurementPanel.-measuring #measure-progress { display: block; }
    MeasurementPanel #measure-status { width: 1fr; color: $text-muted; }
    """

    LABEL_WIDTH = 10
    STALE_STYLE = "dim italic"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._digests: tuple[str, str] = ("measuring…", "")
        self._labels: tuple[str, str] = ("SGX1", "EDMM")
        self.stale = False  # digests shown dimmed: older than the parameters

    def compose(self) -> ComposeResult:
        yield Static(self._line("SGX1", "measuring…"), id="mrenclave-sgx1", classes="digest")
        yield Static(self._line("EDMM", ""), id="mrenclave-edmm", classes="digest")
        yield Static(self._line("MRSIGNER", ""), id="mrsigner")
        with Horizontal(id="measure-status-row"):
            yield ProgressBar(total=100, show_eta=False, id="measure-progress")
            yield Static("", id="measure-status")

    def _line(self, label: str, value: str, note: str = "", style: str = "") -> Text:
        text = Text()
        text.append(label.ljust(self.LABEL_WIDTH), style="bold")
        text.append(value, style=style)
        if note:
            text.append(f" {note}", style="italic")
        return text

    def _render_digests(self) -> None:
        # Styled text instead of a CSS class: a class change restyles the subtree and relayouts
        # the screen, which costs more than the incremental hash itself.
        style = self.STALE_STYLE if self.stale else ""
        sgx1, edmm = self._digests
        first, second = self._labels
        self.query_one("#mrenclave-sgx1", Static).update(self._line(first, sgx1, style=style), layout=False)
        self.query_one("#mrenclave-edmm", Static).update(self._line(second, edmm, style=style), layout=False)

    def set_single(self, single: bool, note: str = "") -> None:
        """One MRENCLAVE fixed by the file (SDK enclave, .sgxs, …) instead of SGX1 and EDMM.

        Args:
            single: show one digest line labelled MRENCLAVE.
            note: shown in place of the digest when the file has none to compute.
        """
        self._labels = ("MRENCLAVE", "") if single else ("SGX1", "EDMM")
        self._digests = (note or "measuring…", "") if single else ("measuring…", "")
        self._render_digests()
        if note:
            self._status("")

    def _status(self, text: str) -> None:
        self.query_one("#measure-status", Static).update(text, layout=False)

    def show_result(self, pair: MeasuredPair, wall_seconds: float, *, stable: bool = False) -> None:
        """Show a finished measurement (``stable`` leaves out the time, for snapshots)."""
        single = self._labels[1] == ""
        self._digests = (pair.sgx1_measurement.hex, "" if single else pair.edmm_measurement.hex)
        self.stale = False
        self._render_digests()
        measurements = (pair.sgx1_measurement,) if single else (pair.sgx1_measurement, pair.edmm_measurement)
        hashed = sum(measurement.hashed_bytes for measurement in measurements)
        total = sum(measurement.stream_size for measurement in measurements)
        status = f"{'hashed' if single else 're-hashed'} {human_bytes(hashed)} of {human_bytes(total)}"
        if not stable:
            status += f" in {duration_text(wall_seconds)}"
        self._status(status + ("  (record stream fixed by the file)" if single else "  (SGX1 + EDMM)"))
        self.hide_progress()

    def set_stale(self, stale: bool, reason: str = "") -> None:
        """Dim the digests while a newer measurement is pending."""
        if stale != self.stale:
            self.stale = stale
            self._render_digests()
        if stale:
            self._status(reason or "measuring…")

    def show_progress(self, done: int, total: int) -> None:
        """Show the progress bar with ``done`` of ``total`` stream bytes."""
        if not self.has_class("-measuring"):
            self.add_class("-measuring")
        bar = self.query_one("#measure-progress", ProgressBar)
        bar.update(total=max(total, 1), progress=done)
        self._status(f"hashing {human_bytes(done)} of {human_bytes(total)}")

    def hide_progress(self) -> None:
        """Hide the progress bar."""
        if self.has_class("-measuring"):
            self.remove_class("-measuring")

    def show_signer(self, mrsigner: str | None, note: str) -> None:
        """MRSIGNER of the signing key (or why it is unknown)."""
        self.query_one("#mrsigner", Static).update(self._line("MRSIGNER", mrsigner or "", note), layout=False)
