"""The Textual inspector, driven through Pilot on the bundled sample (and copies of it).

Independent values come from the real CLI in a subprocess (``python -m tui.cli hash/verify``),
never from the code under test. Each test waits until the screen is idle (no debounce timer
pending, no worker running) before asserting.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import Button, Input, Static, Switch

from core.containers import open_any
from core.errors import ContainerError
from core.params import Params
from core.records import CHUNKS_PER_PAGE
from tui.app import EnsignApp, make_app
from tui.messages import MeasurementReady
from tui.screens.error import ErrorDialog
from tui.screens.files import FileDialog
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.screens.sign import KeygenDialog, SignDialog
from tui.widgets.layout_view import MemoryMap
from tui.widgets.records import RecordSelection, RecordsTable, region_filter_options

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "tui" / "sample" / "sample-enclave"
SIZE = (120, 40)

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample missing: run scripts/build_sample.sh")


def drive(test):
    """Run an async test body with asyncio (no pytest async plugin is needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def cli(*argv: str) -> subprocess.Popen[str]:
    """Start ``python -m tui.cli ARGV`` from the repository root (an independent process)."""
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *argv], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for a CLI process; (exit code, stdout, stderr)."""
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


async def idle(pilot, timeout: float = 30.0) -> MainScreen:
    """Let timers fire and workers finish; return the main screen."""
    app: EnsignApp = pilot.app
    screen = app.main_screen
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while screen.busy or any(not worker.is_finished for worker in app.workers):
        if time.monotonic() > deadline:
            raise AssertionError("the app did not become idle")
        await pilot.pause(0.02)
    await pilot.pause()
    return screen


async def type_into(pilot, selector: str, text: str) -> None:
    """Focus an input, clear it with keys, and type ``text`` key by key."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", *text)


async def set_field(pilot, selector: str, text: str) -> None:
    """Replace an input's text in one edit (the same Input.Changed path as typing, fewer frames)."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = text
    await pilot.pause()


def digest_line(screen: MainScreen, variant: str) -> str:
    """The text of the header line showing one MRENCLAVE."""
    return str(screen.query_one(f"#mrenclave-{variant}", Static).content)


# --------------------------------------------------------------------------------------------------


@drive
async def test_editing_heap_tcs_stack_matches_cli_hash() -> None:
    """Each edit leads to exactly the MRENCLAVE `ensign hash` prints for the same flags."""
    steps = [("#param-heap", "128M", ["--heap", "128M"]),
             ("#param-tcs", "4", ["--heap", "128M", "--tcs", "4"]),
             ("#param-stack", "1M", ["--heap", "128M", "--tcs", "4", "--stack", "1M"])]
    expected = [cli("hash", "--quiet", *flags, str(SAMPLE)) for _sel, _text, flags in steps]
    expected_edmm = cli("hash", "--quiet", "--edmm", *steps[-1][2], str(SAMPLE))
    ready: list[MeasurementReady] = []

    def hook(message: Message) -> None:
        if isinstance(message, MeasurementReady):
            ready.append(message)

    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await idle(pilot)
        hashes = []
        for selector, text, _flags in steps:
            await type_into(pilot, selector, text)
            screen = await idle(pilot)
            assert not screen.stale
            hashes.append(screen.pair.sgx1_measurement.hex)
            assert screen.pair.sgx1_measurement.hex in digest_line(screen, "sgx1")
        assert screen.params.heap == 128 << 20 and screen.params.tcs == 4 and screen.params.stack == 1 << 20
        assert screen.params.source("heap") == "edited"
        final_edmm = screen.pair.edmm_measurement.hex
        assert final_edmm in digest_line(screen, "edmm")
        # Only the newest generation's results were applied, and they were posted as messages.
        assert ready and ready[-1].generation == screen.generation
        assert ready[-1].result.sgx1_measurement.hex == hashes[-1]
    for (code, out, err), got in zip(map(finish, expected), hashes, strict=True):
        assert code == 0, err
        assert out.strip() == got
    code, out, err = finish(expected_edmm)
    assert code == 0, err
    assert out.strip() == final_edmm


@drive
async def test_bad_input_shows_error_and_keeps_last_good_measurement() -> None:
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        before = screen.pair.sgx1_measurement.hex
        generation = screen.generation

        await type_into(pilot, "#param-heap", "12Q")
        screen = await idle(pilot)
        error = str(screen.query_one("#error-heap", Static).content)
        assert "--heap" in error and "12Q" in error and "not a size" in error
        assert screen.query_one("#error-heap").has_class("-shown")
        assert screen.generation == generation  # nothing was measured
        assert screen.pair.sgx1_measurement.hex == before
        assert before in digest_line(screen, "sgx1") and not screen.stale

        # A cross-parameter rule (minheap ≤ heap) is reported the same way.
        await type_into(pilot, "#param-heap", "8M")
        screen = await idle(pilot)
        assert "minheap must be ≤ heap" in str(screen.query_one("#error-heap", Static).content)
        assert screen.pair.sgx1_measurement.hex == before

        # Fixing the field clears the error and measures again.
        await type_into(pilot, "#param-heap", "96M")
        screen = await idle(pilot)
        assert not screen.query_one("#error-heap").has_class("-shown")
        assert screen.params.heap == 96 << 20
        assert screen.pair.sgx1_measurement.hex != before


@drive
async def test_mismatching_sig_shows_differing_fields_and_parameters(tmp_path: Path) -> None:
    signed, sig = tmp_path / "signed", tmp_path / "app.sig"
    code, _out, err = finish(cli("sign", "--heap", "128M", "--isvsvn", "2", "--date", "2024-01-02",
                                 "-o", str(signed), "--sig-out", str(sig), str(SAMPLE)))
    assert code == 0, err

    # A raw .sig given on the command line: fields named, and the parameters a SIGSTRUCT records.
    app = make_app(SAMPLE, sig_path=str(sig))
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        await pilot.press("4")
        report = screen.query_one("#compare-view").report
        assert report is not None and not report.all_match
        assert set(report.mismatched_fields) == {"ENCLAVEHASH (SGX1)", "ISVSVN"}
        assert [(d.name, d.signed, d.current) for d in report.differences] == [("isvsvn", "2", "0")]
        assert any("does not record" in note for note in report.notes)
        summary = str(screen.query_one("#compare-summary", Static).content)
        assert "✗ differs: ENCLAVEHASH (SGX1), ISVSVN" in summary

        # The signed binary itself (loaded with `l` through the file dialog) names heap too.
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, FileDialog)
        app.screen.query_one("#file-path", Input).value = str(signed)
        await pilot.press("enter")
        screen = await idle(pilot)
        report = screen.query_one("#compare-view").report
        assert report.origin.startswith("signed")
        assert {"ENCLAVEHASH (SGX1)", "ENCLAVEHASH (EDMM)", "ISVSVN"} <= set(report.mismatched_fields)
        named = {d.name: (d.signed, d.current, d.affects_mrenclave) for d in report.differences}
        assert named == {"heap": ("128M", "64M", True), "isvsvn": ("2", "0", False)}

        # Editing the parameters to the signed ones turns every field into ✓.
        await set_field(pilot, "#param-heap", "128M")
        await set_field(pilot, "#param-isvsvn", "2")
        screen = await idle(pilot)
        report = screen.query_one("#compare-view").report
        assert report.all_match and not report.differences


@drive
async def test_sign_in_place_with_an_encrypted_key_writes_a_file_ensign_verify_accepts(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from core.signing import load_debug_key

    # Traditional OpenSSL PEM encryption: a fast KDF keeps the test quick (PKCS#8 works the same).
    key = tmp_path / "locked.pem"
    key.write_bytes(load_debug_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"correct horse")))
    target = tmp_path / "app"
    shutil.copyfile(SAMPLE, target)
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await set_field(pilot, "#param-tcs", "3")
        screen = await idle(pilot)
        await pilot.press("escape", "s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SignDialog)
        summary = str(dialog.query_one("#sign-summary", Static).content)
        assert screen.pair.sgx1_measurement.hex in summary and screen.pair.edmm_measurement.hex in summary
        assert "DEBUG, MODE64BIT" in summary and "(in place)" in summary

        dialog.query_one("#sign-key", Input).value = str(key)
        await pilot.pause()
        assert "encrypted" in str(dialog.query_one("#sign-summary", Static).content)
        assert dialog.query_one("#sign-passphrase", Input).password  # masked
        dialog.query_one("#sign-passphrase", Input).value = "wrong"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert app.screen is dialog
        assert "wrong passphrase" in str(dialog.query_one("#sign-problem", Static).content)
        dialog.query_one("#sign-passphrase", Input).value = "correct horse"
        await pilot.click("#sign-confirm")
        screen = await idle(pilot)
        assert app.screen is screen
        assert "correct horse" not in repr([worker.description for worker in app.workers])
        assert screen.document.signed_params is not None and screen.document.signed_params.tcs == 3
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match
    code, out, err = finish(cli("verify", str(target)))
    assert code == 0, out + err
    assert out.startswith("OK:")


@drive
async def test_sign_a_copy_with_a_key_made_in_the_keygen_dialog(tmp_path: Path) -> None:
    output = tmp_path / "signed-copy"
    key = tmp_path / "mine.pem"
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("s")
        await pilot.pause()
        await pilot.click("#sign-keygen")
        await pilot.pause()
        assert isinstance(app.screen, KeygenDialog)
        app.screen.query_one("#keygen-path", Input).value = str(key)
        await pilot.click("#keygen-ok")
        deadline = time.monotonic() + 30
        while not isinstance(app.screen, SignDialog) and time.monotonic() < deadline:
            await pilot.pause(0.05)
        dialog = app.screen
        assert isinstance(dialog, SignDialog)
        assert Path(dialog.query_one("#sign-key", Input).value).resolve() == key.resolve()
        assert key.stat().st_mode & 0o777 == 0o600
        # The bundled sample is package data: signing defaults to a copy.
        assert dialog.query_one("#sign-copy").value
        dialog.query_one("#sign-output", Input).value = str(output)
        await pilot.pause()
        await pilot.press("ctrl+s")
        screen = await idle(pilot)
        assert app.screen is screen
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match
        assert report.mrsigner == screen.key_mrsigner  # the new key, not the debug key
    code, out, err = finish(cli("verify", str(output)))
    assert code == 0, out + err
    assert report.mrsigner in out


@drive
async def test_production_with_the_debug_key_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "app"
    shutil.copyfile(SAMPLE, target)
    original = target.read_bytes()
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SignDialog)
        assert not dialog.query_one("#sign-confirm", Button).disabled
        dialog.query_one("#sign-production", Switch).value = True
        await pilot.pause()
        assert dialog.problem is not None and "refused" in dialog.problem
        assert "debug key" in str(dialog.query_one("#sign-problem", Static).content)
        assert dialog.query_one("#sign-confirm", Button).disabled
        # Naming the debug key's file explicitly is refused too.
        dialog.query_one("#sign-key", Input).value = str(REPO_ROOT / "core" / "data" / "debug_key.pem")
        await pilot.pause()
        assert dialog.problem is not None and "refused" in dialog.problem
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert app.screen is dialog  # still open, nothing signed
        await pilot.press("escape")
        await pilot.pause()
    assert target.read_bytes() == original


@drive
async def test_layout_selection_highlights_the_memory_map() -> None:
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        await pilot.press("2")
        await pilot.pause()
        view = screen.query_one("#layout-view")
        heap_row = next(i for i, row in enumerate(view.rows) if row.kind == "heap")
        for _ in range(heap_row):
            await pilot.press("down")
        await pilot.pause()
        memory_map = screen.query_one(MemoryMap)
        assert memory_map.selected == heap_row
        lines = memory_map.render_lines_text(60, 12)
        highlighted = sum(1 for line in lines for span in line.spans if "#ffd700" in str(span.style))
        assert highlighted > 0
        # The EDMM view adds only minheap of the heap: the rest is reserved.
        await pilot.press("v")
        await pilot.pause()
        kinds = [row.kind for row in screen.query_one("#layout-view").rows]
        assert "heap-reserved" in kinds


@drive
async def test_records_view_is_virtual_and_filters_then_export_sgxs(tmp_path: Path) -> None:
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        await pilot.press("3")
        await pilot.pause()
        table = screen.query_one(RecordsTable)
        plan = screen.pair.sgx1.plan
        assert table.selection.count == plan.record_count
        assert table.virtual_size.height == plan.record_count + 1
        first = table.visible_rows()
        assert first[0].kind == "ECREATE" and first[1].kind == "EADD"
        await pilot.press("end")
        await pilot.pause()
        assert table.visible_rows()[-1].index == plan.record_count - 1
        screen.query_one("#records-region").value = "group:TCS"
        screen.query_one("#records-kind").value = "EADD"
        await pilot.pause()
        assert table.selection.count == screen.params.tcs
        assert {record.flags for record in table.visible_rows()} == {0x100}

        # Export the record stream shown: exactly the plan's stream.
        output = tmp_path / "sample.sgxs"
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one("#file-path", Input).value = str(output)
        await pilot.press("enter")
        screen = await idle(pilot)
        assert output.stat().st_size == plan.stream_size


@drive
async def test_stale_results_are_dropped_and_progress_coalesces() -> None:
    from tui.messages import MeasurementProgress

    assert MeasurementProgress(1, 5, 10).can_replace(MeasurementProgress(1, 1, 10))
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        current = screen.pair
        older = current.__class__(current.params, current.sgx1, current.edmm, current.edmm_measurement,
                                  current.sgx1_measurement)
        screen.post_message(MeasurementReady(screen.generation - 1, older, 0.0))
        await pilot.pause()
        assert screen.pair is current
        # Before the first result, actions that need a measurement are greyed out.
        fresh = make_app(SAMPLE).main_screen
        assert fresh.check_action("sign", ()) is None and fresh.check_action("edit_params", ()) is True


def test_record_selection_matches_record_at() -> None:
    """Every filter maps rows to exactly the records a brute-force scan selects."""
    from core.enclave import EnclaveBinary

    layout = EnclaveBinary.open(SAMPLE).layout(Params(heap=1 << 20, minheap=1 << 20, tcs=2, stack=64 << 10))
    plan = layout.plan
    records = [plan.record_at(index) for index in range(plan.record_count)]
    for _label, region in region_filter_options(plan):
        for kind in ("all", "ECREATE", "EADD", "EEXTEND"):
            selection = RecordSelection(plan, region, kind)
            got = [selection.record(row).index for row in range(selection.count)]
            wanted = [r.index for r in records
                      if (kind == "all" or r.kind == kind) and _in_region(r, region)]
            assert got == wanted, (region, kind)
    measured_pages = sum(run.pages for run in plan.runs if run.measured)
    assert RecordSelection(plan, "all", "EEXTEND").count == measured_pages * CHUNKS_PER_PAGE


def _in_region(record, region: str) -> bool:
    if region == "all":
        return True
    if record.kind == "ECREATE":
        return False
    name = record.region
    if region.startswith("group:"):
        group = region.removeprefix("group:")
        return name == group or (name.startswith("thread ") and name.split(" ", 2)[2] == group)
    return name.startswith(f"thread {region.removeprefix('thread:')} ")


@drive
async def test_open_a_non_elf_shows_the_error_modal(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello\n")
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await pilot.press("o")
        await pilot.pause()
        app.screen.query_one("#file-path", Input).value = str(bogus)
        await pilot.press("enter")
        await idle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ErrorDialog)
        # core's own words for a file of no known kind (it says what the file looked like)
        with pytest.raises(ContainerError) as caught:
            open_any(bogus)
        assert dialog.error_message == caught.value.message and "Traceback" not in dialog.error_message
        assert "notes.txt: not a file ensign reads" in dialog.error_message
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert app.main_screen.document.name == "sample-enclave"  # the open file stays


@drive
async def test_help_palette_footer_and_quit() -> None:
    app = make_app(SAMPLE)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await idle(pilot)
        titles = [command.title for command in app.get_system_commands(screen)]
        for wanted in ("Open…", "Load SIGSTRUCT…", "Sign…", "Copy MRENCLAVE", "Export .sgxs…"):
            assert wanted in titles
        bindings = {binding.binding.action: binding.binding for binding in screen.active_bindings.values()}
        assert all(binding.description for binding in bindings.values())
        assert {"sign", "quit", "help", "copy_mrenclave"} <= set(bindings)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@drive
async def test_flags_and_environment_prefill_with_badges(monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.cli import build_parser

    monkeypatch.setenv("SCONE_HEAP", "128M")
    monkeypatch.setenv("SCONE_TCS", "2")
    args = build_parser().parse_args(["inspect", "--env", "--tcs", "4", "--isvsvn", "7", str(SAMPLE)])
    app = make_app(args.app, args=args)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        assert (screen.params.heap, screen.params.tcs, screen.params.isvsvn) == (128 << 20, 4, 7)
        badges = {name: str(screen.query_one(f"#badge-{name}", Static).content)
                  for name in ("heap", "tcs", "isvsvn", "stack")}
        assert badges == {"heap": "env", "tcs": "flag", "isvsvn": "flag", "stack": "default"}
        assert screen.query_one("#row-heap .param-name", Static).has_class("-mrenclave")
        assert screen.query_one("#row-isvsvn .param-name", Static).has_class("-sigstruct")
    code, out, err = finish(cli("hash", "--quiet", "--heap", "128M", "--tcs", "4", str(SAMPLE)))
    assert code == 0, err
    assert out.strip() == screen.pair.sgx1_measurement.hex


@drive
async def test_a_new_edit_cancels_the_running_measurement() -> None:
    """The worker hands its cancelled event to the core; a cancelled run is no error."""
    from core.errors import MeasurementCancelled

    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        document = screen.document
        real_measure = document.measure
        cancelled: list[bool] = []

        def slow_measure(layouts, *, on_progress=None, cancel=None):
            if layouts[0].params.tcs == 5:  # the first edit: hold until cancelled, as core does
                while not cancel.wait(0.01):
                    pass
                cancelled.append(True)
                raise MeasurementCancelled("measurement cancelled")
            return real_measure(layouts, on_progress=on_progress, cancel=cancel)

        document.measure = slow_measure
        await type_into(pilot, "#param-tcs", "5")
        await pilot.pause(0.2)  # debounce passed: the slow measurement runs
        assert screen.stale
        await pilot.press("backspace", "6")
        screen = await idle(pilot)
        assert cancelled == [True]
        assert isinstance(app.screen, MainScreen)  # no error dialog
        assert screen.pair.params.tcs == 6 and not screen.stale


@drive
async def test_impossible_layout_is_reported_and_the_last_measurement_stays() -> None:
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await idle(pilot)
        await set_field(pilot, "#param-tcs", "200")
        screen = await idle(pilot)
        before = screen.pair.sgx1_measurement.hex
        await set_field(pilot, "#param-stack", "1024G")  # 200 threads × 1 TiB: beyond 2^47
        screen = await idle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert any("47-bit" in notification.message for notification in app._notifications)
        assert screen.pair.sgx1_measurement.hex == before
        assert "no measurement" in str(screen.query_one("#measure-status", Static).content)
        assert "47-bit" in str(screen.query_one("#error-stack", Static).content)
        await set_field(pilot, "#param-stack", "1M")
        screen = await idle(pilot)
        assert not screen.query_one("#error-stack").has_class("-shown")
        assert screen.pair.params.stack == 1 << 20
