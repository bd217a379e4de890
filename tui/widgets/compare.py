"""The Compare tab: a loaded SIGSTRUCT, field by field, against what the current parameters give.

:func:`compare` is pure: it takes the loaded :class:`~tui.screens.document.Comparison`, the
current measurement, parameters and signing key's MRSIGNER, and returns rows marked ✓/✗ plus
the parameters that differ from the signed ones. :class:`ComparisonView` renders the report.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, ProgressBar, Static

from core.diagnose import ExplainReport
from core.diff import KIND_TEXT, DiffReport
from core.enclave import MeasuredPair, PageLocation, sigstruct_template
from core.layout import VARIANT_EDMM, VARIANT_SGX1
from core.params import MRENCLAVE_PARAMETERS, PARAMETERS, Params
from core.sigstruct import FLAG_DEBUG, Sigstruct, attribute_flag_names, decode_date, xfrm_names
from tui.screens.document import Comparison
from tui.widgets.params_form import value_text

MAX_TABLE_HEIGHT = 12
"""Lines of the diff's stretch table on screen (header included); it scrolls beyond."""

MAX_STRETCH_ROWS = 200
"""Stretches listed in the diff table (the groups above it summarise all of them)."""

OK_MARK = "✓"
BAD_MARK = "✗"


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One SIGSTRUCT field: what was signed, what the current parameters would give."""

    field: str
    signed: str
    expected: str
    ok: bool | None  # None: informational (DATE), or nothing to compare with


@dataclass(frozen=True, slots=True)
class ParamDifference:
    """A parameter whose current value differs from the signed one."""

    name: str
    signed: str
    current: str
    affects_mrenclave: bool


@dataclass(frozen=True, slots=True)
class CompareReport:
    """Everything the Compare tab shows."""

    origin: str
    rows: tuple[CompareRow, ...]
    differences: tuple[ParamDifference, ...]
    notes: tuple[str, ...]
    hash_matches: bool
    all_match: bool
    signature_valid: bool
    mrsigner: str

    @property
    def mismatched_fields(self) -> list[str]:
        """Names of fields marked ✗."""
        return [row.field for row in self.rows if row.ok is False]


def _flags(value: int) -> str:
    return f"{value:#x} [{', '.join(attribute_flag_names(value)) or 'none'}]"


def _xfrm(value: int) -> str:
    return f"{value:#x} [{', '.join(xfrm_names(value)) or 'none'}]"


# (label, attribute, formatter) of the fields compared one to one.
FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("ATTRIBUTES.FLAGS", "attributes_flags", _flags),
    ("ATTRIBUTES.XFRM", "attributes_xfrm", _xfrm),
    ("ATTRIBUTEMASK.FLAGS", "attributemask_flags", lambda v: f"{v:#x}"),
    ("ATTRIBUTEMASK.XFRM", "attributemask_xfrm", lambda v: f"{v:#x}"),
    ("MISCSELECT", "miscselect", lambda v: f"{v:#010x}"),
    ("MISCMASK", "miscmask", lambda v: f"{v:#010x}"),
    ("ISVPRODID", "isvprodid", str),
    ("ISVSVN", "isvsvn", str),
    ("VENDOR", "vendor", lambda v: f"{v:#x}"),
)

# Parameters a SIGSTRUCT records by itself: name -> value read from the SIGSTRUCT.
PARAMS_IN_SIGSTRUCT: dict[str, Callable[[Sigstruct], Any]] = {
    "xfrm": lambda sig: sig.attributes_xfrm,
    "isvsvn": lambda sig: sig.isvsvn,
    "isvprodid": lambda sig: sig.isvprodid,
    "production": lambda sig: not sig.attributes_flags & FLAG_DEBUG,
}


def _variant_of(variant: str | None, sig: Sigstruct, pair: MeasuredPair) -> str:
    if variant is not None:
        return variant
    return VARIANT_EDMM if sig.enclavehash == pair.edmm_measurement.mrenclave else VARIANT_SGX1


def compare(comparison: Comparison, pair: MeasuredPair, params: Params, key_mrsigner: str | None,
            today: _dt.date) -> CompareReport:
    """Compare ``comparison`` with what ``params`` (measured as ``pair``) and the key would sign.

    Args:
        comparison: the loaded SIGSTRUCT(s).
        pair: the current measurement (of ``params``).
        params: the current parameters.
        key_mrsigner: MRSIGNER of the signing key, or None when unknown (encrypted key).
        today: the date a signature made now would carry (DATE is shown, not compared).
    """
    rows: list[CompareRow] = []
    hash_matches = True
    signature_valid = True
    several = len(comparison.sigstructs) > 1
    first_sig = comparison.sigstructs[0][1]
    for position, (variant_hint, sig) in enumerate(comparison.sigstructs):
        variant = _variant_of(variant_hint, sig, pair)
        measurement = pair.edmm_measurement if variant == VARIANT_EDMM else pair.sgx1_measurement
        suffix = f" ({variant.upper()})"
        matches = sig.enclavehash == measurement.mrenclave
        hash_matches &= matches
        rows.append(CompareRow("ENCLAVEHASH" + suffix, sig.enclavehash.hex(), measurement.hex, matches))
        check = sig.check()
        signature_valid &= check.valid
        signature_text = "valid" if check.valid else (
            "INVALID" if not check.signature_valid else "valid, but Q1/Q2 wrong")
        if position == 0 or not several:
            template = sigstruct_template(params, measurement.mrenclave, today)
            for label, attribute, formatter in FIELDS:
                signed_value, expected_value = getattr(sig, attribute), getattr(template, attribute)
                rows.append(CompareRow(label, formatter(signed_value), formatter(expected_value),
                                       signed_value == expected_value))
            rows.append(CompareRow("DATE", decode_date(sig.date).text, f"set when signing ({today.isoformat()})",
                                   None))
            rows.append(CompareRow("MRSIGNER", sig.mrsigner, key_mrsigner or "unknown (encrypted key)",
                                   None if key_mrsigner is None else sig.mrsigner == key_mrsigner))
        rows.append(CompareRow("signature" + suffix, signature_text, "must be valid", check.valid))

    differences, notes = _parameter_differences(comparison, params, hash_matches)
    all_match = all(row.ok is not False for row in rows)
    return CompareReport(origin=comparison.origin, rows=tuple(rows), differences=tuple(differences),
                         notes=tuple(notes), hash_matches=hash_matches, all_match=all_match,
                         signature_valid=signature_valid, mrsigner=first_sig.mrsigner)


def compare_fixed(comparison: Comparison, pair: MeasuredPair | None, notes: tuple[str, ...] = (),
                  unmeasured: str = "") -> CompareReport:
    """The SIGSTRUCT(s) of a file whose MRENCLAVE the file itself fixes (SDK enclave, ``.sgxs``, …).

    Each ENCLAVEHASH is compared with the MRENCLAVE ensign computed from the file (when it can,
    else ``unmeasured`` says why); the other fields are shown as signed, with nothing to compare.
    """
    rows: list[CompareRow] = []
    hash_matches = True
    signature_valid = True
    several = len(comparison.sigstructs) > 1
    for position, (_variant, sig) in enumerate(comparison.sigstructs):
        suffix = f" [{position}]" if several else ""
        if pair is not None:
            matches = sig.enclavehash == pair.sgx1_measurement.mrenclave
            hash_matches &= matches
            rows.append(CompareRow("ENCLAVEHASH" + suffix, sig.enclavehash.hex(), pair.sgx1_measurement.hex, matches))
        else:
            hash_matches = False
            rows.append(CompareRow("ENCLAVEHASH" + suffix, sig.enclavehash.hex(), unmeasured or "not measured", None))
        check = sig.check()
        signature_valid &= check.valid
        if position == 0:
            for label, attribute, formatter in FIELDS:
                rows.append(CompareRow(label, formatter(getattr(sig, attribute)), "", None))
            date = decode_date(sig.date)
            rows.append(CompareRow("DATE", date.text, "", None))
            rows.append(CompareRow("MRSIGNER", sig.mrsigner, "", None))
        rows.append(CompareRow("signature" + suffix, "valid" if check.valid else "INVALID", "must be valid", check.valid))
    all_match = all(row.ok is not False for row in rows) and pair is not None
    return CompareReport(origin=comparison.origin, rows=tuple(rows), differences=(), notes=notes,
                         hash_matches=hash_matches and pair is not None, all_match=all_match,
                         signature_valid=signature_valid, mrsigner=comparison.sigstructs[0][1].mrsigner)


def _parameter_differences(comparison: Comparison, params: Params,
                           hash_matches: bool) -> tuple[list[ParamDifference], list[str]]:
    notes: list[str] = []
    differences: list[ParamDifference] = []
    specs = {spec.name: spec for spec in PARAMETERS}
    signed = comparison.signed_params
    if signed is not None:
        for name in params.differences(signed):
            if name == "key":
                continue
            differences.append(ParamDifference(name, value_text(name, getattr(signed, name)),
                                               value_text(name, getattr(params, name)),
                                               specs[name].affects_mrenclave))
        if not hash_matches and not any(difference.affects_mrenclave for difference in differences):
            notes.append("No MRENCLAVE parameter differs from the signed ones: the program itself changed "
                         "since it was signed (ensign verify names the first changed page).")
        return differences, notes
    sig = comparison.sigstructs[0][1]
    for name, read in PARAMS_IN_SIGSTRUCT.items():
        signed_value = read(sig)
        if signed_value != getattr(params, name):
            differences.append(ParamDifference(name, value_text(name, signed_value),
                                               value_text(name, getattr(params, name)),
                                               specs[name].affects_mrenclave))
    if not hash_matches:
        unknown = ", ".join(name for name in MRENCLAVE_PARAMETERS if name not in PARAMS_IN_SIGSTRUCT)
        notes.append(f"A raw SIGSTRUCT does not record {unknown}: one of them (or the program) differs. "
                     "Load the signed binary itself (l) to have them named.")
    return differences, notes


class ComparisonView(VerticalScroll):
    """Renders a :class:`CompareReport` (or why there is none), and the Explain and Diff results.

    The Explain and Diff buttons bubble their ``Button.Pressed`` to the screen, which runs the
    work; choosing a row of the diff's stretch table posts :class:`ComparisonView.JumpToRecord`.
    """

    DEFAULT_CSS = """
    ComparisonView { padding: 0 1; }
    ComparisonView #compare-actions { height: 1; margin-bottom: 1; }
    ComparisonView #compare-actions Button { margin-right: 2; }
    ComparisonView #compare-actions #compare-apply { display: none; }
    ComparisonView #compare-actions.-can-apply #compare-apply { display: block; }
    ComparisonView #compare-progress { display: none; height: 1; }
    ComparisonView #compare-progress.-running { display: block; }
    ComparisonView #compare-summary { margin-bottom: 1; }
    ComparisonView #compare-differences { margin-top: 1; }
    ComparisonView #compare-diagnosis { height: auto; }
    ComparisonView #compare-diagnosis.-shown { margin-bottom: 1; padding: 0 1; background: $boost; }
    ComparisonView #compare-stretches { display: none; height: auto; margin-bottom: 1; }
    ComparisonView #compare-stretches.-shown { display: block; }
    """

    class JumpToRecord(Message):
        """Show stream record ``index`` of the current parameters' measurement in the Records tab."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    report: CompareReport | None = None
    """The report shown (None when there is nothing to compare)."""
    explanation: ExplainReport | None = None
    """The last explain result shown."""
    diff: DiffReport | None = None
    """The last diff shown."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare-actions"):
            yield Button("Explain (w)", id="compare-explain", compact=True)
            yield Button("Diff vs signed (d)", id="compare-diff", compact=True)
            yield Button("Use the matching parameters (u)", id="compare-apply", compact=True, variant="success")
        yield ProgressBar(id="compare-progress", show_eta=False)
        yield Static("", id="compare-summary")
        yield Static("", id="compare-diagnosis")
        yield DataTable(id="compare-stretches", cursor_type="row", zebra_stripes=True)
        yield Static("", id="compare-table")
        yield Static("", id="compare-differences")

    def show_empty(self, message: str) -> None:
        """No SIGSTRUCT loaded (or no measurement yet)."""
        self.report = None
        self.query_one("#compare-summary", Static).update(Text(message, style="italic"))
        self.query_one("#compare-table", Static).update("")
        self.query_one("#compare-differences", Static).update("")

    # -- explain and diff ------------------------------------------------------------------

    def set_actions(self, *, explain: bool, diff: bool) -> None:
        """Enable the buttons whose action can run now."""
        self.query_one("#compare-explain", Button).disabled = not explain
        self.query_one("#compare-diff", Button).disabled = not diff

    def show_progress(self, text: str, done: int, total: int) -> None:
        """A diagnosis is running: ``text`` and a bar."""
        bar = self.query_one("#compare-progress", ProgressBar)
        bar.add_class("-running")
        bar.update(total=max(total, 1), progress=done)
        diagnosis = self.query_one("#compare-diagnosis", Static)
        diagnosis.update(Text(text, style="italic"))
        diagnosis.add_class("-shown")

    def hide_progress(self) -> None:
        """The diagnosis finished (or failed)."""
        self.query_one("#compare-progress", ProgressBar).remove_class("-running")

    def clear_diagnosis(self, note: str = "") -> None:
        """Forget the explain/diff result shown."""
        self.explanation = None
        self.diff = None
        self.hide_progress()
        self.query_one("#compare-actions").remove_class("-can-apply")
        diagnosis = self.query_one("#compare-diagnosis", Static)
        diagnosis.update(Text(note, style="italic"))
        diagnosis.set_class(bool(note), "-shown")
        self.query_one("#compare-stretches", DataTable).remove_class("-shown")

    def show_explanation(self, report: ExplainReport, *, current: bool, can_apply: bool, stable: bool) -> None:
        """Render an explain result (``current``: for the parameters shown now)."""
        self.clear_diagnosis()
        self.explanation = report
        self.query_one("#compare-actions").set_class(can_apply, "-can-apply")
        diagnosis = self.query_one("#compare-diagnosis", Static)
        diagnosis.update(explanation_text(report, current=current, stable=stable))
        diagnosis.add_class("-shown")
        self.scroll_home(animate=False)

    def show_diff(self, report: DiffReport, *, current: bool, stable: bool) -> None:
        """Render a diff; its stretches go into a table whose rows jump to the Records tab."""
        self.clear_diagnosis()
        self.diff = report
        diagnosis = self.query_one("#compare-diagnosis", Static)
        diagnosis.update(diff_text(report, current=current, stable=stable))
        diagnosis.add_class("-shown")
        table = self.query_one("#compare-stretches", DataTable)
        table.clear(columns=True)
        table.add_columns("record", "kind", "pages", "at", "where")
        if report.first is not None:
            first = report.first
            table.add_row(f"{first.index:,}", "first divergence", "", "", first.reason, key=f"record:{first.index}")
            for stretch in report.stretches[:MAX_STRETCH_ROWS]:
                record = stretch.record_b if stretch.record_b is not None else stretch.record_a
                where = stretch.where_b or stretch.where_a
                table.add_row("" if record is None else f"{record:,}", KIND_TEXT[stretch.kind], f"{stretch.pages:,}",
                              f"{stretch.offset:#x}", _where(where) if where is not None else "",
                              key=f"record:{record}" if record is not None else None)
            # An explicit height: "auto" follows the rows only after DataTable's idle update.
            table.styles.height = min(table.row_count + 1, MAX_TABLE_HEIGHT)
            table.add_class("-shown")
        self.scroll_home(animate=False)

    @on(DataTable.RowSelected, "#compare-stretches")
    def _stretch_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key and key.startswith("record:"):
            self.post_message(self.JumpToRecord(int(key.removeprefix("record:"))))

    def show(self, report: CompareReport, *, stale: bool = False, fixed: bool = False) -> None:
        """Render ``report`` (dimmed note while a newer measurement is pending)."""
        self.report = report
        summary = Text()
        summary.append("Compared with ", style="bold")
        summary.append(report.origin, style="bold cyan")
        summary.append("\n")
        if report.all_match and fixed:
            summary.append(f"{OK_MARK} the file measures to its ENCLAVEHASH", style="green")
        elif report.all_match:
            summary.append(f"{OK_MARK} the current parameters and key produce this SIGSTRUCT", style="green")
        elif not report.mismatched_fields:
            summary.append("MRENCLAVE not recomputed: see the ENCLAVEHASH row", style="yellow")
        else:
            summary.append(f"{BAD_MARK} differs: {', '.join(report.mismatched_fields)}", style="red")
        summary.append("\nsignature ")
        summary.append("valid" if report.signature_valid else "INVALID",
                       style="green" if report.signature_valid else "bold red")
        summary.append(f" · MRSIGNER {report.mrsigner}")
        if stale:
            summary.append("\n(measuring the newest parameters…)", style="italic dim")
        self.query_one("#compare-summary", Static).update(summary)

        table = Table(expand=True, show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("", width=1, no_wrap=True)
        table.add_column("field", no_wrap=True, ratio=None)
        table.add_column("signed", overflow="fold", ratio=1)
        table.add_column("computed from the file" if fixed else "current parameters give", overflow="fold", ratio=1)
        for row in report.rows:
            mark = Text(" ") if row.ok is None else (
                Text(OK_MARK, style="green") if row.ok else Text(BAD_MARK, style="bold red"))
            style = "red" if row.ok is False else ""
            table.add_row(mark, Text(row.field, style="bold " + style), Text(row.signed, style=style),
                          Text(row.expected, style="dim" if row.ok is None else style))
        self.query_one("#compare-table", Static).update(table)

        parts: list[Text | Table] = []
        if report.differences:
            title = Text("Parameters that differ from the signed ones", style="bold")
            if not report.hash_matches:
                title.append(" (ENCLAVEHASH differs)", style="red")
            parts.append(title)
            for difference in report.differences:
                line = Text("  ")
                line.append("● " if difference.affects_mrenclave else "○ ")
                line.append(difference.name, style="bold yellow")
                line.append(f": signed {difference.signed}, now {difference.current}")
                parts.append(line)
        elif report.all_match and not fixed:
            parts.append(Text("No parameter differs from the signed ones.", style="dim"))
        for note in report.notes:
            parts.append(Text(note, style="italic"))
        self.query_one("#compare-differences", Static).update(Group(*parts))


def _where(location: PageLocation) -> str:
    return location.describe()


def explanation_text(report: ExplainReport, *, current: bool, stable: bool) -> Group:
    """The explain result: conclusion, parameter differences, image verdict, search."""
    parts: list[Text] = []
    title = Text("Explain", style="bold")
    title.append(f" — target: {report.target.origin}")
    if not stable:
        title.append(f" ({report.elapsed:.2f} s)", style="dim")
    if not current:
        title.append("\n(for earlier parameters: press w again)", style="italic dim")
    parts.append(title)
    for line in report.conclusion:
        parts.append(Text(line, style="bold green" if report.explained else "bold yellow"))
    if report.differences:
        parts.append(Text("Signed vs current parameters", style="bold"))
        for difference in report.differences:
            parts.append(Text(("  ● " if difference.affects_mrenclave else "  ○ ") + difference.describe()))
    image = Text("Image: ", style="bold")
    image.append(f"{report.image.status} — {report.image.how}")
    if report.image.first is not None:
        image.append(f"; first differing page: {report.image.first.describe()}")
    parts.append(image)
    search = Text("Search: ", style="bold")
    if report.search is None:
        search.append(report.search_note or "not run")
    else:
        result = report.search
        search.append(f"{result.tried:,} of {result.space_size:,} candidates")
        if not stable:
            search.append(f" ({result.rate:,.0f}/s)", style="dim")
        if result.match is not None:
            changes = ", ".join(f"{name}={value_text(name, getattr(result.match, name))}"
                                for name in result.match.differences(report.effective) if name != "key")
            search.append(f"; match ({(result.variant or '').upper()}): {changes or 'the current parameters'}",
                          style="green")
        else:
            search.append("; none reproduces the target", style="yellow")
    parts.append(search)
    return Group(*parts)


def diff_text(report: DiffReport, *, current: bool, stable: bool) -> Group:
    """The diff summary: ECREATE, first divergence and the stretches rolled up by kind and place."""
    parts: list[Text | Table] = []
    title = Text("Diff", style="bold")
    title.append(f" — A: {report.a.label}, B: {report.b.label}")
    if not stable:
        title.append(f" ({report.elapsed:.2f} s)", style="dim")
    if not current:
        title.append("\n(for earlier parameters: press d again)", style="italic dim")
    parts.append(title)
    if report.identical:
        parts.append(Text(f"{OK_MARK} identical record streams: the same MRENCLAVE", style="green"))
        return Group(*parts)
    for ecreate in report.ecreate:
        parts.append(Text(f"ECREATE {ecreate.name}: A {ecreate.a:#x}, B {ecreate.b:#x}", style="red"))
    first = report.first
    assert first is not None
    line = Text("First divergence: ", style="bold")
    line.append(f"record {first.index:,}: {first.reason}", style="red")
    parts.append(line)
    parts.append(Text("Enter on a row below shows that record in the Records tab.", style="italic dim"))
    table = Table(expand=True, show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("kind", no_wrap=True)
    table.add_column("where", ratio=1, overflow="fold")
    table.add_column("pages", justify="right", no_wrap=True)
    table.add_column("stretches", justify="right", no_wrap=True)
    for kind, where, pages, count in report.groups():
        table.add_row(KIND_TEXT[kind], where, f"{pages:,}", f"{count:,}")
    parts.append(table)
    return Group(*parts)
