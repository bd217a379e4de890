"""Every container ensign reads, in the same Textual views (issue 5), driven through Pilot.

Files come from ``../shared/fixtures`` (an Intel SGX SDK enclave, a Fortanix ``.sgxs`` stream and
its ``.sig``, a launch token, an unsigned SDK enclave). Expected MRENCLAVEs come from the real CLI
in a subprocess (``ensign hash``), never from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui import SAMPLE, SIZE, cli, drive, finish, idle
from textual.widgets import DataTable, Input

from tui.app import make_app
from tui.screens.document import ContainerDocument, EnclaveDocument
from tui.widgets.layout_view import LayoutView
from tui.widgets.records import RecordsTable

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SDK_SIGNED = FIXTURES / "sdk" / "eternalray-enclave-hello" / "enclave.signed.so"
SDK_UNSIGNED = FIXTURES / "sdk" / "eternalray-enclave-hello" / "enclave.so"
SDK_TOKEN = FIXTURES / "sdk" / "eternalray-enclave-hello" / "enclave.token"
SGXS = FIXTURES / "fortanix" / "test_enclave.sgxs"
SGXS_SIG = FIXTURES / "fortanix" / "test_enclave.sig"

pytestmark = [
    pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample missing: run scripts/build_sample.sh"),
    pytest.mark.skipif(not SDK_SIGNED.is_file(), reason="shared fixtures folder ../shared/fixtures not present"),
]


async def open_file(pilot, path: Path) -> None:
    """Press o, name ``path``, confirm, and wait."""
    await pilot.press("o")
    await pilot.pause()
    pilot.app.screen.query_one("#file-path", Input).value = str(path)
    await pilot.press("enter")
    await idle(pilot)


@drive
async def test_open_an_sdk_enclave_from_the_app_shows_its_own_layout_and_mrenclave() -> None:
    expected = cli("hash", "--quiet", str(SDK_SIGNED))
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        await idle(pilot)
        await open_file(pilot, SDK_SIGNED)
        screen = app.main_screen
        assert app.screen is screen
        document = screen.document
        assert isinstance(document, ContainerDocument) and document.kind == "sdk-signed-enclave"
        code, out, err = finish(expected)
        assert code == 0, err
        assert screen.pair is not None and screen.pair.sgx1_measurement.hex == out.strip()
        assert not screen.query_one("#params").display  # no ensign parameters: the form is hidden
        assert screen.check_action("sign", ()) is None and screen.check_action("explain", ()) is None
        # Layout tab: the SDK loader's regions, each marked measured / added / reserved.
        await pilot.press("2")
        await idle(pilot)
        rows = screen.query_one(LayoutView).rows
        names = {row.name for row in rows}
        assert {"HEAP", "TCS", "SSA"} <= names
        assert {row.treatment for row in rows} >= {"measured", "added", "reserved"}
        # Records tab: the file's own record stream, every record addressable.
        await pilot.press("3")
        await idle(pilot)
        table = screen.query_one(RecordsTable)
        assert table.selection is not None
        assert table.selection.count == screen.pair.sgx1.plan.record_count
        assert table.visible_rows()[0].kind == "ECREATE"
        # Compare tab: the embedded SIGSTRUCT against the MRENCLAVE computed from the file.
        await pilot.press("4")
        await idle(pilot)
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match and report.hash_matches and report.signature_valid


@drive
async def test_sgxs_stream_with_its_sig_and_files_without_pages() -> None:
    expected = cli("hash", "--quiet", str(SGXS))
    app = make_app(SGXS)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        assert screen.document.kind == "measurement-stream"
        code, out, err = finish(expected)
        assert code == 0, err
        assert screen.pair is not None and screen.pair.sgx1_measurement.hex == out.strip()
        assert screen.query_one("#segments-table", DataTable).row_count == 0  # no ELF segments
        # Load the stream's .sig: its ENCLAVEHASH matches the stream.
        await pilot.press("l")
        await pilot.pause()
        app.screen.query_one("#file-path", Input).value = str(SGXS_SIG)
        await pilot.press("enter")
        await idle(pilot)
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match

        # A raw SIGSTRUCT holds no pages: no MRENCLAVE, and the view says why; its fields are shown.
        await open_file(pilot, SGXS_SIG)
        assert screen.pair is None and screen.document.kind == "sigstruct"
        assert "holds no pages" in str(screen.query_one("#mrenclave-sgx1").content)
        report = screen.query_one("#compare-view").report
        assert report is not None and not report.all_match and report.signature_valid
        assert "holds no pages" in report.rows[0].expected

        # A launch token and an SDK enclave not signed yet open too, saying what they are.
        await open_file(pilot, SDK_TOKEN)
        assert screen.document.kind == "einittoken" and screen.pair is None
        assert "MRENCLAVE" in str(screen.query_one("#compare-summary").content)
        # Not signed yet: the what-if measures it under the SDK release's default configuration.
        await open_file(pilot, SDK_UNSIGNED)
        assert screen.document.kind == "sdk-unsigned-enclave"
        assert screen.query_one("#sdk-config").display and screen.pair is not None

        # Back to an ensign program: the parameters form returns.
        await open_file(pilot, SAMPLE)
        assert isinstance(screen.document, EnclaveDocument) and screen.query_one("#params").display
        assert screen.pair is not None
