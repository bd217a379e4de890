"""The live SDK what-if (issue 7), driven through Pilot on an Intel SGX SDK fixture.

Opening an SDK enclave shows its Enclave.config.xml parameters (recovered from the signed
metadata, or from ``--config``); an edit re-predicts layout, records and MRENCLAVE as
``sgx_sign`` would. Expected MRENCLAVEs come from the real CLI in a subprocess
(``ensign hash ENCLAVE --config FILE``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui import SAMPLE, SIZE, cli, drive, finish, idle, set_field
from textual.widgets import Input

from core.sdk_config import load_config
from tui.app import make_app
from tui.screens.document import SdkDocument
from tui.widgets.layout_view import LayoutView

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sdk" / "eternalray-enclave-hello"
SIGNED = FIXTURE / "enclave.signed.so"
UNSIGNED = FIXTURE / "enclave.so"
CONFIG = FIXTURE / "Enclave.config.xml"

pytestmark = [
    pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample missing: run scripts/build_sample.sh"),
    pytest.mark.skipif(not SIGNED.is_file(), reason="shared fixtures folder ../shared/fixtures not present"),
]


def _notes(screen) -> list[str]:
    return [str(note.content) for note in screen.query(".sdk-note.-shown")]


@drive
async def test_sdk_enclave_config_edits_predict_mrenclave_and_save(tmp_path: Path) -> None:
    config_4 = tmp_path / "tcs4.xml"
    config_4.write_text(CONFIG.read_text().replace("<TCSNum>10</TCSNum>", "<TCSNum>4</TCSNum>"))
    expected_4 = cli("hash", "--quiet", "--config", str(config_4), str(UNSIGNED))
    app = make_app(SIGNED)
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        document = screen.document
        assert isinstance(document, SdkDocument)
        assert screen.query_one("#sdk-config").display and not screen.query_one("#params").display
        assert screen.query_one("#sdk-TCSNum", Input).value == "10"  # from the signed metadata
        await pilot.press("4")
        screen = await idle(pilot)
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match  # the recovered config reproduces the signature

        await set_field(pilot, "#sdk-TCSNum", "4")
        screen = await idle(pilot)
        code, out, err = finish(expected_4)
        assert code == 0, err
        assert screen.pair is not None and screen.pair.sgx1_measurement.hex == out.strip()
        assert not screen.query_one("#compare-view").report.hash_matches
        await pilot.press("escape", "2")
        await idle(pilot)
        tcs_rows = [row for row in screen.query_one(LayoutView).rows if row.name.startswith("TCS")]
        assert len(tcs_rows) == 4

        # Values sgx_sign refuses are named under the field; the last prediction stays.
        shown = screen.pair.sgx1_measurement.hex
        await set_field(pilot, "#sdk-HeapMaxSize", "0x1001")
        screen = await idle(pilot)
        assert any("not a multiple of 4 KiB" in note for note in _notes(screen))
        await set_field(pilot, "#sdk-HeapMaxSize", "0x100000")
        await set_field(pilot, "#sdk-TCSNum", "0")
        screen = await idle(pilot)
        assert any("TCSNum must be at least 1" in note for note in _notes(screen))
        assert screen.pair.sgx1_measurement.hex == shown
        await set_field(pilot, "#sdk-TCSNum", "4")
        screen = await idle(pilot)
        assert not _notes(screen)

        # Save config writes an Enclave.config.xml that sgx_sign's rules read back to the same MRENCLAVE.
        saved = tmp_path / "Enclave.config.xml"
        await pilot.press("escape", "f")
        await pilot.pause()
        app.screen.query_one("#file-path", Input).value = str(saved)
        await pilot.press("enter")
        await idle(pilot)
        assert load_config(saved).value("TCSNum") == 4
    code, out, err = finish(cli("hash", "--quiet", "--config", str(saved), str(UNSIGNED)))
    assert code == 0, err
    assert out.strip() == shown


@drive
async def test_unsigned_sdk_enclave_with_config_gives_the_signed_mrenclave() -> None:
    """``--config`` on an unsigned enclave.so: the MRENCLAVE sgx_sign will sign, without the SDK."""
    from core.containers import open_any

    with open_any(SIGNED) as container:
        signed_hash = container.sigstruct.enclavehash.hex()
    app = make_app(UNSIGNED, config_path=str(CONFIG))
    async with app.run_test(size=SIZE) as pilot:
        screen = await idle(pilot)
        assert isinstance(screen.document, SdkDocument)
        assert screen.query_one("#sdk-TCSNum", Input).value == "10"
        assert screen.pair is not None and screen.pair.sgx1_measurement.hex == signed_hash
