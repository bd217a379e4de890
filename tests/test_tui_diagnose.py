"""The Compare tab's diagnosis, driven through Pilot: Explain (with the parameter search) and the diff
against the signed parameters, whose rows jump to the Records tab.

Mismatches are made on purpose with the real CLI (``ensign sign`` in a subprocess), and the diff's
first divergent record is checked against ``ensign diff --json``.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from test_tui import SAMPLE, SIZE, cli, drive, finish, idle, set_field
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from tui.app import make_app
from tui.messages import DiagnosisProgress
from tui.widgets.records import RecordsTable

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample missing: run scripts/build_sample.sh")


def plain(widget: Static) -> str:
    """The text a Static shows (its content may be a rich renderable group)."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.file.getvalue()


def signed_copy(tmp_path: Path, *flags: str) -> tuple[Path, Path]:
    """A copy of the sample signed with ``flags``, and its raw SGX1 SIGSTRUCT."""
    target = tmp_path / "app"
    shutil.copyfile(SAMPLE, target)
    sig = tmp_path / "app.sig"
    code, out, err = finish(cli("sign", *flags, "--date", "2025-01-01", "--sig-out", str(sig), str(target)))
    assert code == 0, out + err
    return target, sig


@drive
async def test_explain_finds_the_parameters_of_a_raw_sig_and_applies_them(tmp_path: Path) -> None:
    """A bare SIGSTRUCT records no parameters: Explain searches, finds heap=128M tcs=3, and `u` applies them."""
    _signed, sig = signed_copy(tmp_path, "--heap", "128M", "--tcs", "3")
    phases: list[str] = []

    def hook(message: Message) -> None:
        if isinstance(message, DiagnosisProgress):
            phases.append(message.phase)

    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await idle(pilot)
        assert screen.check_action("explain", ()) is None  # nothing to explain against yet
        await pilot.press("l")
        await pilot.pause()
        app.screen.query_one("#file-path", Input).value = str(sig)
        await pilot.press("enter")
        screen = await idle(pilot)
        assert not screen.query_one("#compare-view").report.hash_matches
        await pilot.press("w")
        screen = await idle(pilot, timeout=60)
        report = screen.explanation
        assert report is not None and report.search is not None
        assert report.match is not None and (report.match.heap, report.match.tcs) == (128 << 20, 3)
        assert "searching" in phases  # the search reported its progress
        text = plain(screen.query_one("#compare-diagnosis", Static))
        assert "heap=128M" in text and "tcs=3" in text and "candidates" in text
        assert screen.query_one("#compare-apply").display
        await pilot.press("u")
        screen = await idle(pilot)
        assert (screen.params.heap, screen.params.tcs) == (128 << 20, 3)
        assert screen.query_one("#compare-view").report.hash_matches
        assert screen.check_action("use_match", ()) is None  # nothing left to apply


@drive
async def test_diff_against_the_signed_parameters_jumps_to_the_first_divergent_record(tmp_path: Path) -> None:
    target, _sig = signed_copy(tmp_path, "--heap", "128M", "--tcs", "3")
    expected = cli("diff", str(target), str(target), "--signed", "both", "-B", "heap=64M", "--json")
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await set_field(pilot, "#param-heap", "64M")
        await pilot.press("escape")
        screen = await idle(pilot)
        await pilot.press("d")
        screen = await idle(pilot)
        report = screen.diff_report[0]
        code, out, err = finish(expected)
        assert code == 1, err
        cli_report = json.loads(out)
        assert report.first is not None and report.first.index == cli_report["first_divergence"]["index"]
        assert report.pages == cli_report["pages"]
        text = plain(screen.query_one("#compare-diagnosis", Static))
        assert f"record {report.first.index:,}" in text
        # Enter on the first row (the first divergence) shows it, marked, in the Records tab.
        table = screen.query_one("#compare-stretches", DataTable)
        assert table.row_count == 1 + len(report.stretches)
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert screen.query_one("TabbedContent").active == "records"
        records = screen.query_one(RecordsTable)
        assert records.highlight == report.first.index
        assert report.first.index in [record.index for record in records.visible_rows()]
        shown = records.selection.record(report.first.index)
        assert report.first.record_b is not None and shown.offset == report.first.record_b.offset

        # Back to the signed values: the streams are identical.
        await set_field(pilot, "#param-heap", "128M")
        await pilot.press("escape")
        await idle(pilot)
        await pilot.press("d")
        screen = await idle(pilot)
        assert screen.diff_report[0].identical
        assert "identical" in plain(screen.query_one("#compare-diagnosis", Static))
