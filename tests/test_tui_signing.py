"""The sign dialog's production ways, driven through Pilot: export → offline sign → attach, and PKCS#11.

The offline signer is ``cryptography`` with a key file the app never sees as a private key (the
dialog gets only its public half); the token is a SoftHSM2 token made in a temporary directory.
Results are checked with the real CLI in a subprocess (``ensign verify``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from test_tui import SAMPLE, SIZE, cli, drive, finish, idle, set_field
from textual.widgets import Input, RadioButton, Static, Switch

from core.signing import debug_key_mrsigner, load_debug_key, mrsigner_of_modulus
from tui.app import make_app
from tui.screens.error import ErrorDialog
from tui.screens.sign import SignDialog

pytestmark = pytest.mark.skipif(not SAMPLE.is_file(), reason="bundled sample missing: run scripts/build_sample.sh")

MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/local/lib/softhsm/libsofthsm2.so")
TOKEN = "ensign-tui"
PIN = "4321"


async def open_dialog(pilot, method: str) -> SignDialog:
    """Press s, pick ``method`` in the dialog, return it."""
    await idle(pilot)
    await pilot.press("s")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, SignDialog)
    dialog.query_one(f"#sign-method-{method}", RadioButton).value = True
    await pilot.pause()
    assert dialog.method == method
    return dialog


def _problem(dialog: SignDialog) -> str:
    return str(dialog.query_one("#sign-problem", Static).content)


@drive
async def test_export_then_offline_sign_then_attach(tmp_path: Path) -> None:
    """Export writes the 512-byte signing data; signatures made outside (one per byte order) are refused
    once the parameters changed (naming the parameter), and attach and verify once they are back."""
    target = tmp_path / "app"
    shutil.copyfile(SAMPLE, target)
    original = target.read_bytes()
    export = tmp_path / "to-sign.bin"
    offline_key = load_debug_key()  # any RSA-3072 e=3 key; the app only gets its public half
    public = tmp_path / "signer.pub.pem"
    public.write_bytes(offline_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    app = make_app(target)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "export")
        assert not dialog.query_one("#sign-output-row").display  # export never writes the enclave
        assert not dialog.query_one("#sign-key-fields").display
        dialog.query_one("#sign-export-path", Input).value = str(export)
        dialog.query_one("#sign-date", Input).value = "2025-02-03"
        await pilot.pause()
        summary = str(dialog.query_one("#sign-summary", Static).content)
        assert "512 bytes" in summary and "not changed" in summary
        await pilot.press("ctrl+s")
        screen = await idle(pilot)
        assert app.screen is screen
        assert export.stat().st_size == 512
        parts = {variant: Path(f"{export}.{variant}").read_bytes() for variant in ("sgx1", "edmm")}
        assert export.read_bytes() == parts["sgx1"] + parts["edmm"]
        assert Path(f"{export}.json").is_file()
        assert target.read_bytes() == original
        assert screen.last_export == str(export)

        # The offline machine: openssl-style signatures, SGX1 big-endian, EDMM little-endian.
        signatures = []
        for variant, order in (("sgx1", "big"), ("edmm", "little")):
            signature = offline_key.sign(parts[variant], padding.PKCS1v15(), hashes.SHA256())
            path = tmp_path / f"{variant}.sig.bin"
            path.write_bytes(signature if order == "big" else signature[::-1])
            signatures.append(str(path))

        # Parameters changed since the export: the signatures no longer fit, and the error says why.
        exported_tcs = screen.params.tcs
        field = screen.query_one("#param-tcs", Input)
        field.focus()
        field.value = "5"
        await pilot.press("escape")  # back to the tabs, so "s" is a key binding again
        dialog = await open_dialog(pilot, "attach")
        dialog.query_one("#sign-attach-signatures", Input).value = ", ".join(signatures)
        dialog.query_one("#sign-attach-public-key", Input).value = str(public)
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert isinstance(app.screen, ErrorDialog)
        assert "tcs" in app.screen.error_message, app.screen.error_message
        assert target.read_bytes() == original
        await pilot.press("enter")
        await set_field(pilot, "#param-tcs", str(exported_tcs))  # the parameters of the export again
        await pilot.press("escape")

        dialog = await open_dialog(pilot, "attach")
        assert dialog.query_one("#sign-attach-signing-data", Input).value.endswith("to-sign.bin")  # proposed
        dialog.query_one("#sign-attach-signatures", Input).value = ", ".join(reversed(signatures))
        dialog.query_one("#sign-attach-public-key", Input).value = str(public)
        await pilot.pause()
        assert dialog.problem is None, dialog.problem
        assert mrsigner_of_modulus(offline_key.public_key().public_numbers().n) in str(
            dialog.query_one("#sign-summary", Static).content)
        await pilot.press("ctrl+s")
        screen = await idle(pilot)
        assert app.screen is screen
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match
    code, out, err = finish(cli("verify", str(target)))
    assert code == 0, out + err
    assert "2025-02-03" in finish(cli("info", str(target)))[1]


# --- PKCS#11 (SoftHSM2) ----------------------------------------------------------------------------


@pytest.fixture
def token(tmp_path: Path):
    """A SoftHSM2 token holding the debug key as 'sgx'; the module is unloaded before and after.

    SoftHSM2 reads SOFTHSM2_CONF once, when the module is initialised: unloading (not
    reinitialising) lets this test and tests/test_pkcs11.py each see their own token directory.
    """
    pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 not installed (pip install 'ensign[pkcs11]')")
    module = next((path for path in MODULE_CANDIDATES if Path(path).is_file()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        pytest.skip("SoftHSM2 not installed (Debian package softhsm2)")
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pem = tmp_path / "key.pem"
    pem.write_bytes(load_debug_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    environment = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for args in (("--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "5678"),
                 ("--import", str(pem), "--token", TOKEN, "--label", "sgx", "--id", "0a0b", "--pin", PIN)):
        subprocess.run([util, *args], check=True, capture_output=True, env=environment)
    previous = os.environ.get("SOFTHSM2_CONF")
    if module in getattr(pkcs11, "_loaded", {}):
        pkcs11.unload(module)
    os.environ["SOFTHSM2_CONF"] = str(conf)
    yield module
    if module in getattr(pkcs11, "_loaded", {}):
        pkcs11.unload(module)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@drive
async def test_sign_with_a_pkcs11_token_asks_for_the_pin(token: str, tmp_path: Path) -> None:
    output = tmp_path / "signed"
    app = make_app(SAMPLE)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(pilot, "pkcs11")
        assert dialog.query_one("#sign-pkcs11-fields").display and not dialog.query_one("#sign-key-fields").display
        assert "no PKCS#11 module" in _problem(dialog)
        dialog.query_one("#sign-pkcs11-uri", Input).value = f"pkcs11:token={TOKEN};object=sgx?module-path={token}"
        dialog.query_one("#sign-output", Input).value = str(output)
        await pilot.pause()
        assert dialog.problem is None, dialog.problem
        assert f"token '{TOKEN}' key 'sgx'" in str(dialog.query_one("#sign-summary", Static).content)
        # No PIN given: the token needs one, so the dialog asks for it in its masked field.
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert app.screen is dialog
        assert "needs a PIN: type it in the PIN field" in _problem(dialog)
        pin_field = dialog.query_one("#sign-pkcs11-pin", Input)
        assert pin_field.password and app.focused is pin_field
        pin_field.value = "0000"
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert app.screen is dialog and "wrong PIN" in _problem(dialog) and "0000" not in _problem(dialog)
        pin_field.value = PIN
        await pilot.press("ctrl+s")
        screen = await idle(pilot)
        assert app.screen is screen
        assert PIN not in repr([worker.description for worker in app.workers])
        report = screen.query_one("#compare-view").report
        assert report is not None and report.all_match and report.mrsigner == debug_key_mrsigner()
        # The production switch with the (published) debug key in a token is refused as for a key file.
        dialog = await open_dialog(pilot, "pkcs11")
        dialog.query_one("#sign-pkcs11-uri", Input).value = f"pkcs11:token={TOKEN};object=sgx?module-path={token}"
        dialog.query_one("#sign-pkcs11-pin", Input).value = PIN
        dialog.query_one("#sign-production", Switch).value = True
        dialog.query_one("#sign-output", Input).value = str(tmp_path / "production")
        await pilot.press("ctrl+s")
        await idle(pilot)
        assert app.screen is dialog and "refused" in _problem(dialog)
    assert not (tmp_path / "production").exists()
    code, out, err = finish(cli("verify", str(output)))
    assert code == 0, out + err
