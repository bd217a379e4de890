"""The main screen: parameters on the left, Segments/Layout/Records/Compare tabs on the right.

All state lives here as reactives (parameters, the last good measurement, the layouts being
shown, the comparison SIGSTRUCT, the signing key's MRSIGNER); widgets render what they are given
and post messages. A parameter edit restarts a short debounce timer; the timer starts the
measurement worker with frozen parameters and a generation number. The worker never touches a
widget: it posts :mod:`tui.messages`, and results of an older generation are dropped. One
``Worker.StateChanged`` handler turns worker failures into the error modal or a toast.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from dataclasses import replace
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from core.diagnose import ExplainReport
from core.diff import DiffReport
from core.enclave import MeasuredPair
from core.errors import EnsignError, LayoutError, MeasurementCancelled
from core.layout import VARIANT_EDMM, VARIANT_SGX1, Layout
from core.params import MRENCLAVE_PARAMETERS, Params
from core.sdk_config import SdkConfig
from tui.messages import (
    ComparisonLoaded,
    DiagnosisProgress,
    DiffReady,
    DocumentOpened,
    ExplainReady,
    MeasurementProgress,
    MeasurementReady,
    MeasurementStarted,
    SgxsExported,
    SignFinished,
    SigningDataExported,
)
from tui.screens.document import (
    Comparison,
    Document,
    EnclaveDocument,
    SdkDocument,
    display_path,
    load_comparison,
    open_document,
)
from tui.screens.error import ErrorDialog
from tui.screens.files import FileDialog
from tui.screens.sign import (
    AttachRequest,
    DialogResult,
    ExportRequest,
    KeygenDialog,
    SignDialog,
    SignRequest,
    inspect_key,
)
from tui.widgets.compare import ComparisonView, compare, compare_fixed
from tui.widgets.layout_view import LayoutView
from tui.widgets.measurement import PROGRESS_DELAY, DocumentHeader, MeasurementPanel, duration_text
from tui.widgets.params_form import ParamsForm
from tui.widgets.records import RecordsView
from tui.widgets.sdk_config_form import SdkConfigForm
from tui.widgets.segments import SegmentsView

DEBOUNCE_SECONDS = 0.04
"""Pause after an edit before measuring: long enough to coalesce a burst of keys, short enough to
keep keystroke-to-MRENCLAVE well under 150 ms."""

TABS = ("segments", "layout", "records", "compare")
NEEDS_MEASUREMENT = {"sign", "copy_mrenclave", "export_sgxs", "explain", "diff_signed"}
NEEDS_PARAMETERS = {"sign", "explain", "diff_signed", "use_match", "edit_params", "toggle_variant"}
"""Actions that only make sense for an ensign program (its parameters decide the layout)."""


class MainScreen(Screen[None]):
    """Inspector for one document (see module docstring)."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    BINDINGS = [
        Binding("e", "edit_params", "Edit", id="edit-params"),
        Binding("escape", "leave_form", "Back to tabs", id="leave-form"),
        Binding("s", "sign", "Sign", id="sign"),
        Binding("o", "open_binary", "Open", id="open-binary"),
        Binding("l", "load_sigstruct", "Load SIG", id="load-sigstruct"),
        Binding("c", "copy_mrenclave", "Copy MR", id="copy-mrenclave"),
        Binding("v", "toggle_variant", "SGX1/EDMM", id="toggle-variant"),
        Binding("w", "explain", "Explain", show=False, id="explain"),
        Binding("d", "diff_signed", "Diff vs signed", show=False, id="diff-signed"),
        Binding("u", "use_match", "Use matching parameters", show=False, id="use-match"),
        Binding("x", "export_sgxs", "Export .sgxs", show=False, id="export-sgxs"),
        Binding("f", "save_config", "Save config", show=False, id="save-config"),
        Binding("k", "keygen", "New key", show=False, id="keygen"),
        Binding("1", "show_tab('segments')", "Segments", show=False, id="tab-segments"),
        Binding("2", "show_tab('layout')", "Layout", show=False, id="tab-layout"),
        Binding("3", "show_tab('records')", "Records", show=False, id="tab-records"),
        Binding("4", "show_tab('compare')", "Compare", show=False, id="tab-compare"),
    ]

    document: var[Document] = var(None, init=False, always_update=True)  # type: ignore[arg-type]
    """The open file."""
    params: var[Params] = var(Params(), init=False, always_update=True)
    """The last valid parameters (what the next measurement uses)."""
    pair: var[MeasuredPair | None] = var(None, init=False, always_update=True)
    """The last good measurement (both variants); None until the first one finishes."""
    layouts: var[tuple[Layout, Layout] | None] = var(None, init=False, always_update=True)
    """SGX1 and EDMM layouts of the newest parameters (may be newer than ``pair``)."""
    stale: var[bool] = var(True, init=False)
    """True while the shown MRENCLAVE is older than the parameters."""
    comparison: var[Comparison | None] = var(None, init=False, always_update=True)
    """The SIGSTRUCT the Compare tab compares with."""
    variant: var[str] = var(VARIANT_SGX1, init=False)
    """Which layout the Layout and Records tabs show: sgx1 or edmm."""
    key_mrsigner: var[str | None] = var(None, init=False)
    """MRSIGNER of the signing key in the parameters (None: unknown, e.g. encrypted)."""
    sdk_config: var[SdkConfig | None] = var(None, init=False, always_update=True)
    """The SDK configuration the what-if measures (Intel SGX SDK enclaves only)."""
    explanation: var[ExplainReport | None] = var(None, init=False, always_update=True)
    """The last Explain result (Compare tab)."""
    diff_report: var[tuple[DiffReport, str, Params] | None] = var(None, init=False, always_update=True)
    """The last diff vs the signed parameters: report, variant, and the current parameters it used."""

    def __init__(self, document: Document, params: Params, *, comparison: Comparison | None = None,
                 debounce: float = DEBOUNCE_SECONDS, today: _dt.date | None = None,
                 stable_timings: bool = False) -> None:
        super().__init__()
        self._initial = (document, params, comparison)
        self.debounce = debounce
        self.fixed_today = today
        self.stable_timings = stable_timings
        self.generation = 0  # bumped for every measurement started
        self.measured_at = 0.0  # time.perf_counter() when the newest result was shown
        self.last_wall_seconds = 0.0
        self._debounce_timer: Timer | None = None
        self._measure_started = 0.0
        self._key_note = ""
        self._layout_views_dirty: set[str] = set()  # hidden tabs that show older state
        self._last_edited: str | None = None  # the parameter edited last (for layout errors)
        self._layout_note: str | None = None  # the field showing a layout error
        self.last_export: str | None = None  # the signing data exported last (attach proposes it)

    # -- composition -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        document, params, _comparison = self._initial
        yield DocumentHeader(id="document-header")
        yield MeasurementPanel(id="measurement")
        with Horizontal(id="body"):
            yield ParamsForm(params, id="params")
            yield SdkConfigForm(id="sdk-config")
            with TabbedContent(id="tabs", initial="segments"):
                with TabPane("Segments", id="segments"):
                    yield SegmentsView(id="segments-view")
                with TabPane("Layout", id="layout"):
                    yield LayoutView(id="layout-view")
                with TabPane("Records", id="records"):
                    yield RecordsView(id="records-view")
                with TabPane("Compare", id="compare"):
                    yield ComparisonView(id="compare-view")
        yield Footer()

    def on_mount(self) -> None:
        document, params, comparison = self._initial
        self.document = document
        self.params = params
        self.comparison = comparison if comparison is not None else document.signed_comparison()
        self._measure_now()
        self.query_one("#segments-table").focus()

    @property
    def today(self) -> _dt.date:
        """The date a signature made now carries (fixed for screenshots and tests)."""
        if self.fixed_today is not None:
            return self.fixed_today
        from core.enclave import today_utc

        return today_utc()

    @property
    def busy(self) -> bool:
        """A measurement is pending or running (tests and benchmarks wait on this)."""
        if self._debounce_timer is not None:
            return True
        return any(worker.group in ("measure", "sign", "open", "load", "diagnose") and not worker.is_finished
                   for worker in self.workers)

    # -- watchers: state → widgets -----------------------------------------------------------

    def watch_document(self, document: Document) -> None:
        self.query_one(SegmentsView).show(document.image, f"{document.type_text}: no ELF segments")
        # Files that fix their own layout have no ensign parameters: the form is hidden.
        self.set_class(not document.has_params, "-no-params")
        self.set_class(document.has_config, "-sdk-config")
        self.query_one(MeasurementPanel).set_single(not document.has_params, document.unmeasurable_reason)
        if not document.has_params and self.variant != VARIANT_SGX1:
            self.variant = VARIANT_SGX1
        if isinstance(document, SdkDocument):
            config = document.config
            self.query_one(SdkConfigForm).show_config(
                config, config.settings(document.session.profile.family),
                f"Enclave.config.xml ({display_path(config.origin) if os.path.exists(config.origin) else config.origin})"
                f"\n{document.release_text}")
            self.sdk_config = config
        self._show_header()

    def watch_sdk_config(self, config: SdkConfig | None) -> None:
        if config is not None and self.document is not None and self.document.has_config:
            self.stale = True
            self._schedule_measurement()

    def watch_params(self, old: Params, new: Params) -> None:
        self.query_one(ParamsForm).show_params(new)
        self._show_diagnosis()
        if old.key != new.key or self.key_mrsigner is None and not self._key_note:
            self._inspect_key(new.key)
        mrenclave_changed = any(getattr(old, name) != getattr(new, name) for name in MRENCLAVE_PARAMETERS)
        if self.pair is None or old.values() != new.values() or self.pair.params.values() != new.values():
            if mrenclave_changed:
                self.stale = True
            self._schedule_measurement()

    def watch_explanation(self) -> None:
        self._show_diagnosis()
        self.refresh_bindings()

    def watch_diff_report(self) -> None:
        self._show_diagnosis()

    def watch_pair(self, pair: MeasuredPair | None) -> None:
        self._show_header()
        self._show_compare()
        self.refresh_bindings()

    def watch_layouts(self, layouts: tuple[Layout, Layout] | None) -> None:
        self._show_layouts()

    def watch_variant(self) -> None:
        self._show_layouts()

    def watch_stale(self, stale: bool) -> None:
        self.query_one(MeasurementPanel).set_stale(stale)
        self._show_compare()

    def watch_comparison(self) -> None:
        self._show_compare()
        self._show_signer()
        self.explanation = None
        self.diff_report = None

    def watch_key_mrsigner(self) -> None:
        self._show_signer()
        self._show_compare()

    def _show_header(self) -> None:
        document = self.document
        if document is None:
            return
        layout = self.pair.sgx1 if self.pair is not None else None
        self.query_one(DocumentHeader).show(
            name=document.name, file_size=document.file_size, type_text=document.type_text,
            size=layout.size if layout else None, ssaframesize=layout.ssaframesize if layout else None,
            signed=document.signed_text)

    def _show_layouts(self) -> None:
        """Update the Layout or Records tab if it is showing; a hidden one catches up when shown."""
        self._layout_views_dirty |= {"layout", "records"}
        self._refresh_active_layout_view()

    def _refresh_active_layout_view(self) -> None:
        active = self.query_one(TabbedContent).active
        if self.layouts is None or active not in self._layout_views_dirty:
            return
        self._layout_views_dirty.discard(active)
        layout = self.layouts[1] if self.variant == VARIANT_EDMM else self.layouts[0]
        if active == "layout":
            self.query_one(LayoutView).show(layout)
        else:
            self.query_one(RecordsView).show(layout, self.document.locate)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if self.query_one(TabbedContent).active == "compare":
            if "compare" in self._layout_views_dirty:
                self._show_compare()
        else:
            self._refresh_active_layout_view()

    def _show_signer(self) -> None:
        panel = self.query_one(MeasurementPanel)
        if self.document is not None and not self.document.has_params:  # no key here: the file's signer
            if self.comparison is not None:
                panel.show_signer(self.comparison.sigstructs[0][1].mrsigner, f"(of {self.comparison.origin})")
            else:
                panel.show_signer(None, "")
            return
        if self.key_mrsigner is not None:
            panel.show_signer(self.key_mrsigner, f"({self._key_note})")
        elif self.comparison is not None:
            panel.show_signer(self.comparison.sigstructs[0][1].mrsigner,
                              f"(of {self.comparison.origin}; key: {self._key_note})")
        else:
            panel.show_signer(None, self._key_note)

    def _show_compare(self) -> None:
        if self.query_one(TabbedContent).active != "compare":
            self._layout_views_dirty.add("compare")  # rendered when the tab is shown
            return
        self._layout_views_dirty.discard("compare")
        view = self.query_one(ComparisonView)
        view.set_actions(explain=self.check_action("explain", ()) is True,
                         diff=self.check_action("diff_signed", ()) is True)
        document = self.document
        if not document.has_params:
            if self.comparison is None:
                view.show_empty("\n".join((f"{document.type_text}: no SIGSTRUCT.", *document.notes)))
            elif self.pair is None and document.measurable:
                view.show_empty("Measuring…")
            else:
                view.show(compare_fixed(self.comparison, self.pair, document.notes, document.unmeasurable_reason),
                          stale=self.stale and document.measurable, fixed=True)
            return
        if self.comparison is None:
            view.show_empty("No SIGSTRUCT loaded. Press l to load a raw .sig or a signed binary; "
                            "an ensign-signed binary shows its own signature here.")
            return
        if self.pair is None:
            view.show_empty("Measuring…")
            return
        report = compare(self.comparison, self.pair, self.pair.params, self.key_mrsigner, self.today)
        view.show(report, stale=self.stale)

    def _inspect_key(self, key: str | None) -> None:
        info = inspect_key(key)
        self._key_note = info.note
        form = self.query_one(ParamsForm)
        form.set_note("key", info.note if key and info.mrsigner is None and "encrypted" not in info.note
                      else None)
        self.key_mrsigner = info.mrsigner
        self._show_signer()

    # -- measuring ---------------------------------------------------------------------------

    @on(ParamsForm.Changed)
    def _params_changed(self, event: ParamsForm.Changed) -> None:
        event.stop()
        self._last_edited = event.name
        self.params = event.params

    @on(ParamsForm.Invalid)
    def _params_invalid(self, event: ParamsForm.Invalid) -> None:
        event.stop()  # the form shows the message; the last good measurement stays

    def _schedule_measurement(self) -> None:
        if self._debounce_timer is not None:
            self._debounce_timer.stop()
            self._debounce_timer = None
        if self.debounce <= 0:
            self._start_measurement()
        else:
            self._debounce_timer = self.set_timer(self.debounce, self._start_measurement, name="debounce")

    def _measure_now(self) -> None:
        if self._debounce_timer is not None:
            self._debounce_timer.stop()
        self._start_measurement()

    def _start_measurement(self) -> None:
        self._debounce_timer = None
        self.generation += 1
        if isinstance(self.document, SdkDocument):
            if self.sdk_config is not None:
                self._measure_started = time.monotonic()
                self.predict_sdk(self.document, self.sdk_config, self.generation)
            return
        if not self.document.measurable:  # a SIGSTRUCT, a token, an Open Enclave enclave…
            self.query_one(MeasurementPanel).set_single(True, self.document.unmeasurable_reason)
            self.stale = False
            self._show_compare()
            return
        self._measure_started = time.monotonic()
        self.measure(self.document, self.params, self.generation)

    @work(thread=True, exclusive=True, group="measure", exit_on_error=False, description="measure")
    def measure(self, document: Document, params: Params, generation: int) -> None:
        """Derive the layouts and both MRENCLAVEs of ``params`` (thread worker)."""
        worker = get_current_worker()
        started = time.perf_counter()
        layouts = document.layouts(params)
        self.post_message(MeasurementStarted(generation, *layouts))

        def progress(done: int, total: int) -> None:
            self.post_message(MeasurementProgress(generation, done, total))

        pair = document.measure(layouts, on_progress=progress, cancel=worker.cancelled_event)
        if not worker.is_cancelled:
            self.post_message(MeasurementReady(generation, pair, time.perf_counter() - started))

    @work(thread=True, exclusive=True, group="measure", exit_on_error=False, description="predict SDK MRENCLAVE")
    def predict_sdk(self, document: SdkDocument, config: SdkConfig, generation: int) -> None:
        """What sgx_sign would make of ``config`` (thread worker): layout, records and MRENCLAVE."""
        worker = get_current_worker()
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            self.post_message(MeasurementProgress(generation, done, total))

        _whatif, pair = document.predict(config, on_progress=progress, cancel=worker.cancelled_event)
        if not worker.is_cancelled:
            self.post_message(MeasurementStarted(generation, pair.sgx1, pair.edmm))
            self.post_message(MeasurementReady(generation, pair, time.perf_counter() - started))

    @on(SdkConfigForm.Changed)
    def _sdk_config_changed(self, event: SdkConfigForm.Changed) -> None:
        event.stop()
        self._last_edited = event.name
        self.sdk_config = event.config

    @on(SdkConfigForm.Invalid)
    def _sdk_config_invalid(self, event: SdkConfigForm.Invalid) -> None:
        event.stop()  # the form shows why; the last good prediction stays

    def action_save_config(self) -> None:
        """Write the edited configuration as Enclave.config.xml."""
        document = self.document
        if not isinstance(document, SdkDocument) or self.sdk_config is None:
            return
        initial = display_path(Path(document.path).resolve().parent / "Enclave.config.xml")
        self.app.push_screen(FileDialog("Save the configuration (Enclave.config.xml)", initial=initial,
                                        must_exist=False, action_label="Save"), self._save_config_to)

    def _save_config_to(self, path: str | None) -> None:
        document = self.document
        if not path or not isinstance(document, SdkDocument) or self.sdk_config is None:
            return
        try:
            document.save_config(self.sdk_config, path)
        except EnsignError as error:
            self.app.push_screen(ErrorDialog(error.title, error.message))
            return
        self.notify(f"{display_path(path)}: {len(self.sdk_config.values)} elements", title="Configuration saved",
                    timeout=5)

    @on(MeasurementStarted)
    def _measurement_started(self, message: MeasurementStarted) -> None:
        if message.generation == self.generation:
            self.layouts = (message.sgx1, message.edmm)

    @on(MeasurementProgress)
    def _measurement_progress(self, message: MeasurementProgress) -> None:
        if message.generation != self.generation:
            return
        panel = self.query_one(MeasurementPanel)
        if message.done >= message.total:
            panel.hide_progress()
        elif time.monotonic() - self._measure_started >= PROGRESS_DELAY:
            panel.show_progress(message.done, message.total)

    @on(MeasurementReady)
    def _measurement_ready(self, message: MeasurementReady) -> None:
        if message.generation != self.generation:
            return  # an older edit's result: a newer measurement is on its way
        self.last_wall_seconds = message.wall_seconds
        self.query_one(MeasurementPanel).show_result(message.result, message.wall_seconds,
                                                     stable=self.stable_timings)
        self.stale = self._debounce_timer is not None
        if self._layout_note is not None:
            self.query_one(ParamsForm).set_note(self._layout_note, None)
            self._layout_note = None
        if isinstance(self.document, SdkDocument):
            self.query_one(SdkConfigForm).set_note(None, None)
        self.pair = message.result
        self.measured_at = time.perf_counter()

    # -- workers: one place for failures ---------------------------------------------------

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, MeasurementCancelled):
            return
        if event.worker.group == "measure":
            self.query_one(MeasurementPanel).set_stale(True, "no measurement: see the error")
        if event.worker.group == "measure" and isinstance(error, EnsignError) and \
                isinstance(self.document, SdkDocument):
            # sgx_sign would refuse this configuration: say why under the element just edited.
            if self._last_edited is not None:
                self.query_one(SdkConfigForm).set_note(self._last_edited, error.message)
            self.notify(error.message, title=error.title, severity="error", timeout=8)
            return
        if event.worker.group == "diagnose":
            self.query_one(ComparisonView).clear_diagnosis("The diagnosis failed: see the error.")
        if isinstance(error, LayoutError):
            # Valid values, impossible enclave: say so under the field just edited, and in a toast.
            if self._last_edited is not None:
                self._layout_note = self._last_edited
                self.query_one(ParamsForm).set_note(self._last_edited, error.message)
            self.notify(error.message, title=error.title, severity="error", timeout=8)
        elif isinstance(error, EnsignError):
            self.app.push_screen(ErrorDialog(error.title, error.message))
        elif isinstance(error, OSError):
            name = f"{error.filename}: " if getattr(error, "filename", None) else ""
            self.app.push_screen(ErrorDialog("File error", f"{name}{error.strerror or error}"))
        else:
            self.app.push_screen(ErrorDialog("Unexpected error", f"{type(error).__name__}: {error}"))

    # -- actions -----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out actions that need a measurement until one exists."""
        if action in NEEDS_MEASUREMENT and self.pair is None:
            return None
        document = self.document
        if action == "save_config":
            return True if isinstance(document, SdkDocument) and self.sdk_config is not None else None
        if action == "edit_params" and document is not None and document.has_config:
            return True
        if document is not None and not document.has_params and action in NEEDS_PARAMETERS:
            return None
        if action == "explain" and self.comparison is None:
            return None
        if action == "diff_signed" and self.signed_params_to_compare() is None:
            return None
        if action == "use_match":
            match = self.explanation.match if self.explanation is not None else None
            return None if match is None or match.values() == self.params.values() else True
        if action == "leave_form":  # shown only while typing in the form
            focused = self.focused
            return focused is not None and (self.query_one(ParamsForm) in focused.ancestors_with_self
                                            or self.query_one(SdkConfigForm) in focused.ancestors_with_self)
        return True

    def action_edit_params(self) -> None:
        """Focus the first parameter (of the SDK configuration for SDK enclaves)."""
        if self.document is not None and self.document.has_config:
            inputs = self.query_one(SdkConfigForm).query(Input)
            if inputs:
                inputs.first().focus()
            return
        self.query_one(ParamsForm).focus_first()

    def action_leave_form(self) -> None:
        """Leave the parameters form for the tabs."""
        tabs = self.query_one(TabbedContent)
        tabs.query_one("Tabs").focus()

    def action_show_tab(self, tab: str) -> None:
        """Switch to ``tab``."""
        if tab not in TABS:
            return
        tabbed = self.query_one(TabbedContent)
        tabbed.active = tab
        # Focus inside the new pane: focus left in a hidden pane would pull the old tab back.
        target = {"segments": "#segments-table", "layout": "#layout-table", "records": "#records-table",
                  "compare": "#compare-view"}[tab]
        self.query_one(target).focus()

    def action_toggle_variant(self) -> None:
        """Show the other measurement variant in Layout and Records."""
        self.variant = VARIANT_EDMM if self.variant == VARIANT_SGX1 else VARIANT_SGX1
        self.notify(f"Layout and Records show the {self.variant.upper()} measurement", timeout=2)

    def action_copy_mrenclave(self) -> None:
        """Copy the MRENCLAVE of the variant shown."""
        if self.pair is None:
            return
        measurement = self.pair.edmm_measurement if self.variant == VARIANT_EDMM else self.pair.sgx1_measurement
        self.app.copy_to_clipboard(measurement.hex)
        self.notify(measurement.hex, title=f"Copied {self.variant.upper()} MRENCLAVE", timeout=4)

    def action_sign(self, method: str = "key") -> None:
        """Open the sign dialog (``method``: key, pkcs11, export or attach)."""
        if self.pair is None:
            return
        self.app.push_screen(SignDialog(self.document, self.pair, self.pair.params, self.today, method=method,
                                        last_export=self.last_export), self._sign_confirmed)

    def _sign_confirmed(self, request: DialogResult | None) -> None:
        if request is None:
            return
        if isinstance(request, ExportRequest):
            self.export_signing_data(self.document, request)
            return
        self.params = request.params
        if isinstance(request, AttachRequest):
            self.attach(self.document, request)
        else:
            self.sign(self.document, request)

    @work(thread=True, exclusive=True, group="sign", exit_on_error=False, description="sign")
    def sign(self, document: EnclaveDocument, request: SignRequest) -> None:
        """Measure, sign and write (thread worker); a token session is closed afterwards."""
        worker = get_current_worker()
        try:
            result = document.sign(request.params, request.signer, date=request.date, output=request.output,
                                   cancel=worker.cancelled_event)
        finally:
            close = getattr(request.signer, "close", None)
            if close is not None:
                close()
        how = request.signer.describe() if hasattr(request.signer, "describe") else ""
        self.post_message(SignFinished(result, request.debug_key, how))

    @work(thread=True, exclusive=True, group="sign", exit_on_error=False, description="export signing data")
    def export_signing_data(self, document: EnclaveDocument, request: ExportRequest) -> None:
        """Write the signing data or digests for an offline signer (thread worker)."""
        worker = get_current_worker()
        paths = document.export_signing_data(request.params, request.date, request.path, digest=request.digest,
                                             cancel=worker.cancelled_event)
        self.post_message(SigningDataExported(paths, request.digest))

    @on(SigningDataExported)
    def _signing_data_exported(self, message: SigningDataExported) -> None:
        self.last_export = message.paths[0]
        what = "digests" if message.digest else "signing data"
        shown = ", ".join(display_path(path) for path in message.paths)
        self.notify(f"{shown}\nSign {display_path(message.paths[0])}.sgx1 and .edmm offline, then Sign → attach.",
                    title=f"Exported {what}", timeout=10)

    @work(thread=True, exclusive=True, group="sign", exit_on_error=False, description="attach signatures")
    def attach(self, document: EnclaveDocument, request: AttachRequest) -> None:
        """Attach offline signatures and write the signed file (thread worker)."""
        worker = get_current_worker()
        result, how = document.attach(request.params, request.date, public_key=request.public_key,
                                      signatures=list(request.signatures), signing_data=request.signing_data,
                                      output=request.output, cancel=worker.cancelled_event)
        self.post_message(SignFinished(result, False, f"attached: {how}"))

    @on(SignFinished)
    def _signed(self, message: SignFinished) -> None:
        result = message.result
        note = " with the built-in DEBUG key (debug enclaves only)" if message.debug_key else ""
        how = f"\n{message.how}" if message.how else ""
        self.notify(f"{display_path(result.output)}{note}{how}\nMRSIGNER {result.mrsigner}", title="Signed",
                    timeout=8)
        if os.path.abspath(result.output) == os.path.abspath(self.document.path):
            self.open_document(result.output, keep_params=True)
        else:
            self.load_sigstruct(result.output)
        self.action_show_tab("compare")

    def action_open_binary(self) -> None:
        """Ask for a binary and open it."""
        start = os.path.dirname(os.path.abspath(self.document.path)) if not self.document.bundled else None
        self.app.push_screen(FileDialog("Open an enclave: ELF program, SDK / Open Enclave enclave, .sgxs, .sig, "
                                        "token", start=start),
                             lambda path: self.open_document(path) if path else None)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False, description="open")
    def open_document(self, path: str, keep_params: bool = False) -> None:
        """Open ``path`` (thread worker)."""
        self.post_message(DocumentOpened(open_document(path), keep_params=keep_params))

    @on(DocumentOpened)
    def _document_opened(self, message: DocumentOpened) -> None:
        document = message.document
        self.pair = None
        self.layouts = None
        self.document = document
        self.comparison = document.signed_comparison()
        signed = document.signed_params
        if signed is not None and not message.keep_params:
            self.params = signed
        elif signed is not None:  # just signed in place: same values, now "signed", same key
            self.params = replace(signed, key=self.params.key,
                                  sources={**signed.sources, "key": self.params.source("key")})
        else:
            self.params = self.params  # same parameters, new file
        self.stale = True
        self._measure_now()

    def action_load_sigstruct(self) -> None:
        """Ask for a SIGSTRUCT (raw .sig or signed binary) to compare with."""
        start = os.path.dirname(os.path.abspath(self.document.path)) if not self.document.bundled else None
        self.app.push_screen(FileDialog("Load a SIGSTRUCT (.sig) or a signed binary", start=start),
                             lambda path: self.load_sigstruct(path) if path else None)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False, description="load SIGSTRUCT")
    def load_sigstruct(self, path: str) -> None:
        """Read a comparison SIGSTRUCT (thread worker)."""
        self.post_message(ComparisonLoaded(load_comparison(path, self.document)))

    @on(ComparisonLoaded)
    def _comparison_loaded(self, message: ComparisonLoaded) -> None:
        self.comparison = message.comparison
        self.action_show_tab("compare")

    def action_export_sgxs(self) -> None:
        """Ask for a file name and write the record stream of the variant shown."""
        if self.pair is None:
            return
        initial = display_path(Path.cwd() / f"{self.document.name}.{self.variant}.sgxs")
        self.app.push_screen(FileDialog(f"Export the {self.variant.upper()} record stream (.sgxs)",
                                        initial=initial, must_exist=False, action_label="Export"),
                             self._export_to)

    def _export_to(self, path: str | None) -> None:
        if path and self.pair is not None:
            layout = self.pair.edmm if self.variant == VARIANT_EDMM else self.pair.sgx1
            self.export_sgxs(self.document, layout, path)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False, description="export .sgxs")
    def export_sgxs(self, document: Document, layout: Layout, path: str) -> None:
        """Write an .sgxs file (thread worker)."""
        worker = get_current_worker()
        measurement = document.export_sgxs(layout, path, cancel=worker.cancelled_event)
        self.post_message(SgxsExported(path, measurement))

    @on(SgxsExported)
    def _exported(self, message: SgxsExported) -> None:
        self.notify(f"{display_path(message.path)}: {message.measurement.stream_size:,} bytes, "
                    f"MRENCLAVE {message.measurement.hex[:16]}… in {duration_text(message.measurement.elapsed)}",
                    title="Exported .sgxs", timeout=6)

    # -- diagnosis: explain and diff (Compare tab) -------------------------------------------

    def signed_params_to_compare(self) -> Params | None:
        """The signed parameters the diff compares with: the comparison's, else the file's own."""
        if self.comparison is not None and self.comparison.signed_params is not None:
            return self.comparison.signed_params
        return self.document.signed_params if self.document is not None else None

    @on(Button.Pressed, "#compare-explain")
    def _explain_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_explain()

    @on(Button.Pressed, "#compare-diff")
    def _diff_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_diff_signed()

    @on(Button.Pressed, "#compare-apply")
    def _apply_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_use_match()

    def action_explain(self) -> None:
        """Say why the current parameters do not measure to the compared SIGSTRUCT (worker, with progress)."""
        if self.check_action("explain", ()) is not True:
            return
        self.action_show_tab("compare")
        self.explanation = None
        self.diff_report = None
        self.query_one(ComparisonView).show_progress("explaining…", 0, 1)
        self.explain(self.document, self.params, self.comparison)

    @work(thread=True, exclusive=True, group="diagnose", exit_on_error=False, description="explain")
    def explain(self, document: EnclaveDocument, params: Params, comparison: Comparison | None) -> None:
        """Run the diagnosis (thread worker)."""
        worker = get_current_worker()

        def progress(phase: str, done: int, total: int) -> None:
            self.post_message(DiagnosisProgress(phase, done, total))

        report = document.explain(params, comparison, on_progress=progress, cancel=worker.cancelled_event)
        if not worker.is_cancelled:
            self.post_message(ExplainReady(report))

    def action_diff_signed(self) -> None:
        """Compare the record stream of the signed parameters with the current one (worker)."""
        signed = self.signed_params_to_compare()
        if signed is None or self.pair is None:
            return
        self.action_show_tab("compare")
        self.explanation = None
        self.diff_report = None
        self.query_one(ComparisonView).show_progress("comparing record streams…", 0, 1)
        self.diff(self.document, signed, self.params, self.variant)

    @work(thread=True, exclusive=True, group="diagnose", exit_on_error=False, description="diff")
    def diff(self, document: EnclaveDocument, signed: Params, params: Params, variant: str) -> None:
        """Diff the two record streams (thread worker)."""
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            self.post_message(DiagnosisProgress("comparing", done, total))

        report = document.diff(signed, params, variant, on_progress=progress, cancel=worker.cancelled_event)
        if not worker.is_cancelled:
            self.post_message(DiffReady(report, variant))

    @on(DiagnosisProgress)
    def _diagnosis_progress(self, message: DiagnosisProgress) -> None:
        unit = {"searching": "candidates", "comparing": "pages"}.get(message.phase, "bytes")
        self.query_one(ComparisonView).show_progress(
            f"{message.phase}: {message.done:,} of {message.total:,} {unit}", message.done, message.total)

    @on(ExplainReady)
    def _explained(self, message: ExplainReady) -> None:
        self.explanation = message.report

    @on(DiffReady)
    def _diffed(self, message: DiffReady) -> None:
        self.diff_report = (message.report, message.variant, self.params)

    def _show_diagnosis(self) -> None:
        view = self.query_one(ComparisonView)
        if self.explanation is not None:
            report = self.explanation
            self.query_one(ComparisonView).show_explanation(
                report, current=report.effective.values() == self.params.values(),
                can_apply=self.check_action("use_match", ()) is True, stable=self.stable_timings)
        elif self.diff_report is not None:
            report, _variant, params = self.diff_report
            view.show_diff(report, current=params.values() == self.params.values(), stable=self.stable_timings)
        elif not any(worker.group == "diagnose" and not worker.is_finished for worker in self.workers):
            view.clear_diagnosis()

    def action_use_match(self) -> None:
        """Take the parameters Explain found to reproduce the target."""
        match = self.explanation.match if self.explanation is not None else None
        if match is None:
            return
        self.params = replace(match, key=self.params.key,
                              sources={**match.sources, "key": self.params.source("key")})
        self.notify("The parameters now reproduce the compared MRENCLAVE; measuring…", title="Parameters applied",
                    timeout=4)

    @on(ComparisonView.JumpToRecord)
    def _jump_to_record(self, message: ComparisonView.JumpToRecord) -> None:
        message.stop()
        if self.diff_report is not None:
            self.variant = self.diff_report[1]
        self.action_show_tab("records")
        self._refresh_active_layout_view()
        self.query_one(RecordsView).jump_to(message.index)

    def action_keygen(self) -> None:
        """Create a signing key."""
        self.app.push_screen(KeygenDialog(), self._key_created)

    def _key_created(self, path: str | None) -> None:
        if path:
            self.notify(f"{display_path(path)} (mode 0600). Use it in the sign dialog or as the key parameter.",
                        title="Key created", timeout=6)
