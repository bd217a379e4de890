"""Snapshot tests of the inspector's final states (pytest-textual-snapshot).

Each test drives the real app on the bundled sample to one state and compares an SVG with the
approved one in ``tests/__snapshots__/``. Deterministic by construction: timings are left out
(``stable_timings``), the signing date is fixed, cursors do not blink, and each state is
captured only after every timer and worker has finished. Update with
``python -m pytest tests/test_snapshots.py --snapshot-update`` after checking the new SVGs.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from tui.app import EnsignApp, make_app

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "tui" / "sample" / "sample-enclave"
TODAY = _dt.date(2025, 1, 1)

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample missing: run scripts/build_sample.sh")


@pytest.fixture(autouse=True)
def _repository_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths shown relative to the working directory come out the same on every machine."""
    monkeypatch.chdir(REPO_ROOT)


def app_for(sig_path: str | None = None) -> EnsignApp:
    return make_app(SAMPLE, sig_path=sig_path, stable_timings=True, today=TODAY)


def settle(*keys: str, heap_text: str | None = None):
    """A ``run_before`` that waits for the first measurement, presses ``keys`` and waits again.

    ``heap_text`` is typed into the heap field in one edit first (fewer frames than key by key).
    """

    async def run_before(pilot) -> None:
        app: EnsignApp = pilot.app
        for key in (None, "<heap>" if heap_text is not None else None, *keys):
            if key == "<heap>":
                field = app.screen.query_one("#param-heap", Input)
                field.focus()
                field.value = heap_text
            elif key is not None:
                await pilot.press(key)
            deadline = time.monotonic() + 30
            await pilot.pause()
            while (app.main_screen.busy or any(not w.is_finished for w in app.workers)) and \
                    time.monotonic() < deadline:
                await pilot.pause(0.02)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    return run_before


def test_main_view_wide(snap_compare) -> None:
    """120×40: file line, both MRENCLAVEs, MRSIGNER (debug key), parameters with ●/○ marks and
    'default' badges, the Segments tab with LOAD segments and LOAD[0]'s sections below."""
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=settle())


def test_main_view_narrow(snap_compare) -> None:
    """80×24: the same content squeezed: every parameter visible, footer with the main keys."""
    assert snap_compare(app_for(), terminal_size=(80, 24), run_before=settle())


def test_layout_map_with_heap_selected(snap_compare) -> None:
    """Layout tab: regions in address order; the heap row highlighted and drawn in yellow on the
    proportional memory map below, with the legend."""
    keys = ("2", *["down"] * 4)
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=settle(*keys))


def test_records_tab(snap_compare) -> None:
    """Records tab: ECREATE then EADD/EEXTEND of LOAD[0], with offsets, flags, region, segment."""
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=settle("3"))


def test_compare_with_a_mismatching_sig(snap_compare, tmp_path: Path) -> None:
    """Compare tab against a .sig signed with --heap 128M --isvsvn 2: ✗ on ENCLAVEHASH and ISVSVN,
    ✓ elsewhere, and 'isvsvn: signed 2, now 0' named with the note about unrecorded parameters."""
    sig = tmp_path / "app.sig"
    subprocess.run([sys.executable, "-m", "tui.cli", "sign", "--heap", "128M", "--isvsvn", "2",
                    "--date", "2024-01-02", "-o", str(tmp_path / "signed"), "--sig-out", str(sig),
                    str(SAMPLE)], cwd=REPO_ROOT, check=True, capture_output=True)
    assert snap_compare(app_for(str(sig)), terminal_size=(120, 40), run_before=settle("4"))


def test_sign_dialog(snap_compare) -> None:
    """Sign dialog over the main view: debug key, production off, date 2025-01-01, a copy
    (the sample is package data), and the summary of both MRENCLAVEs, MRSIGNER, ATTRIBUTES."""
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=settle("s"))


def test_parameter_error(snap_compare) -> None:
    """heap set to '12Q': the error under the field, the previous MRENCLAVE kept, not dimmed."""
    assert snap_compare(app_for(), terminal_size=(120, 40), run_before=settle(heap_text="12Q"))
