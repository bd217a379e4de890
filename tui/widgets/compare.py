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
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from core.enclave import MeasuredPair, sigstruct_template
from core.layout import VARIANT_EDMM, VARIANT_SGX1
from core.params import MRENCLAVE_PARAMETERS, PARAMETERS, Params
from core.sigstruct import FLAG_DEBUG, Sigstruct, attribute_flag_names, decode_date, xfrm_names
from tui.screens.document import Comparison
from tui.widgets.params_form import value_text

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
    """Renders a :class:`CompareReport` (or why there is none)."""

    DEFAULT_CSS = """
    ComparisonView { padding: 0 1; }
    ComparisonView #compare-summary { margin-bottom: 1; }
    ComparisonView #compare-differences { margin-top: 1; }
    """

    report: CompareReport | None = None
    """The report shown (None when there is nothing to compare)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="compare-summary")
        yield Static("", id="compare-table")
        yield Static("", id="compare-differences")

    def show_empty(self, message: str) -> None:
        """No SIGSTRUCT loaded (or no measurement yet)."""
        self.report = None
        self.query_one("#compare-summary", Static).update(Text(message, style="italic"))
        self.query_one("#compare-table", Static).update("")
        self.query_one("#compare-differences", Static).update("")

    def show(self, report: CompareReport, *, stale: bool = False) -> None:
        """Render ``report`` (dimmed note while a newer measurement is pending)."""
        self.report = report
        summary = Text()
        summary.append("Compared with ", style="bold")
        summary.append(report.origin, style="bold cyan")
        summary.append("\n")
        if report.all_match:
            summary.append(f"{OK_MARK} the current parameters and key produce this SIGSTRUCT", style="green")
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
        table.add_column("current parameters give", overflow="fold", ratio=1)
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
        elif report.all_match:
            parts.append(Text("No parameter differs from the signed ones.", style="dim"))
        for note in report.notes:
            parts.append(Text(note, style="italic"))
        self.query_one("#compare-differences", Static).update(Group(*parts))
