"""PKCS#11 signing against SoftHSM2: the same SIGSTRUCT as the same key from PEM, keygen in a token.

A token is created in a temporary directory (``SOFTHSM2_CONF``) with ``softhsm2-util``; PEM keys
are imported into it with ``softhsm2-util --import``. Tests that need SoftHSM2 or python-pkcs11
skip with the reason when either is missing (``.ci/run`` installs both). URI parsing and the
missing-library message are tested without a token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core import pkcs11 as token_signing
from core.errors import Pkcs11Error, SigningKeyError
from core.signing import KeySigner, load_private_key, load_public_key, mrsigner_of_modulus
from tui.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/local/lib/softhsm/libsofthsm2.so")
TOKEN = "ensign-test"
PIN = "1234"
DATE = "2025-03-04"


# --- without a token ------------------------------------------------------------------------------


def test_uri_parsing_rfc7512() -> None:
    uri = token_signing.parse_pkcs11_uri(
        "pkcs11:token=My%20Token;object=sgx-signer;id=%01%02;type=private;slot-id=7;x-vendor=1"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=secret")
    assert uri.token == "My Token" and uri.object == "sgx-signer" and uri.id == b"\x01\x02"
    assert uri.slot_id == 7 and uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.pin_value == "secret" and "secret" not in repr(uri)
    assert token_signing.parse_pkcs11_uri("PKCS11:object=a").object == "a"
    for bad, fragment in (
        ("http://x", "starts with 'pkcs11:'"),
        ("pkcs11:colour=red", "unknown path attribute 'colour'"),
        ("pkcs11:object=a;object=b", "given twice"),
        ("pkcs11:type=public", "type=public cannot sign"),
        ("pkcs11:slot-id=one", "slot-id must be a decimal"),
        ("pkcs11:pin-value=1", "unknown path attribute 'pin-value'"),  # query attributes go after '?'
        ("pkcs11:object", "has no value"),
    ):
        with pytest.raises(Pkcs11Error, match=fragment):
            token_signing.parse_pkcs11_uri(bad)
    with pytest.raises(Pkcs11Error) as caught:
        token_signing.parse_pkcs11_uri("pkcs11:bogus=1?pin-value=hunter2")
    assert "hunter2" not in str(caught.value)


def test_key_ids_and_selection_merging(tmp_path: Path) -> None:
    assert token_signing.parse_key_id("0102") == b"\x01\x02"
    assert token_signing.parse_key_id("01:02") == token_signing.parse_key_id("%01%02") == b"\x01\x02"
    with pytest.raises(Pkcs11Error, match="not hex"):
        token_signing.parse_key_id("xyz")
    selection = token_signing.selection_from(
        module="/lib/m.so", key_id="0102", uri=f"pkcs11:token=t;object=k?pin-source=file:{tmp_path}/pin")
    assert (selection.token_label, selection.key_label, selection.key_id) == ("t", "k", b"\x01\x02")
    assert selection.pin_file == f"{tmp_path}/pin"
    with pytest.raises(Pkcs11Error, match="given twice with different values"):
        token_signing.selection_from(module="/lib/m.so", token="a", uri="pkcs11:token=b")
    with pytest.raises(Pkcs11Error, match="no PKCS#11 module"):
        token_signing.selection_from(token="a")
    with pytest.raises(Pkcs11Error, match="commands are not run"):
        token_signing.selection_from(module="/lib/m.so", uri="pkcs11:?pin-source=|cat%20/etc/pin")
    (tmp_path / "pin").write_text("9876\n")
    assert token_signing.read_pin_file(tmp_path / "pin") == "9876"


def test_missing_python_pkcs11_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pkcs11", None)  # makes "import pkcs11" fail
    with pytest.raises(Pkcs11Error, match=r"pip install 'ensign\[pkcs11\]'"):
        token_signing.Pkcs11Signer.open(token_signing.KeySelection(module="/nonexistent.so"))


# --- SoftHSM2 --------------------------------------------------------------------------------------


def _module() -> str | None:
    return next((path for path in MODULE_CANDIDATES if Path(path).is_file()), None)


def _write_pkcs8(key: rsa.RSAPrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A SoftHSM2 token with the signing key 'sgx' (id 0102) imported from a PEM file.

    Sets SOFTHSM2_CONF for this process (the module reads it once, at C_Initialize) and for the
    subprocesses the CLI tests start.
    """
    pytest.importorskip("pkcs11", reason="python-pkcs11 not installed (pip install 'ensign[pkcs11]')")
    module = _module()
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        pytest.skip("SoftHSM2 not installed (Debian package softhsm2): no libsofthsm2.so / softhsm2-util")
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    import pkcs11

    def util_run(*args: str) -> None:
        subprocess.run([util, *args], check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)})

    util_run("--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "5678")
    key = rsa.generate_private_key(public_exponent=3, key_size=3072)
    pem = _write_pkcs8(key, directory / "signer.pem")
    util_run("--import", str(pem), "--token", TOKEN, "--label", "sgx", "--id", "0102", "--pin", PIN)
    # SoftHSM2 reads SOFTHSM2_CONF and scans its token directory at C_Initialize: a module loaded
    # earlier in this process (another test module's token) must start again now that ours exists.
    loaded = getattr(pkcs11, "_loaded", {}).get(module)
    if loaded is not None:
        loaded.reinitialize()
    pin_file = directory / "pin"
    pin_file.write_text(PIN + "\n")
    yield {"module": module, "conf": conf, "pem": pem, "pin_file": pin_file, "dir": directory, "util": util_run}
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


def _selection(softhsm: dict, **overrides: object) -> token_signing.KeySelection:
    values: dict[str, object] = {"module": softhsm["module"], "token": TOKEN, "key_label": "sgx",
                                 "pin_file": str(softhsm["pin_file"])}
    values.update(overrides)
    return token_signing.selection_from(**values)  # type: ignore[arg-type]


def test_token_signer_matches_pem_signer(softhsm: dict) -> None:
    pem_signer = KeySigner(load_private_key(softhsm["pem"]))
    message = bytes(range(256))
    for selection in (
        _selection(softhsm),
        _selection(softhsm, key_label=None, key_id="0102"),
        token_signing.selection_from(uri=f"pkcs11:token={TOKEN};object=sgx;type=private?module-path="
                                         f"{softhsm['module']}&pin-source=file:{softhsm['pin_file']}"),
    ):
        with token_signing.Pkcs11Signer.open(selection) as signer:
            assert signer.modulus == pem_signer.modulus
            assert signer.sign_pkcs1_sha256(message) == pem_signer.sign_pkcs1_sha256(message)
            assert signer.mrsigner == mrsigner_of_modulus(pem_signer.modulus)
            assert PIN not in repr(signer) and "sgx" in signer.describe()
    with pytest.raises(Pkcs11Error, match="session is closed"):
        signer.sign_pkcs1_sha256(message)


def test_token_errors_are_clear(softhsm: dict, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000")
    with pytest.raises(Pkcs11Error, match="wrong PIN") as caught:
        token_signing.Pkcs11Signer.open(_selection(softhsm, pin_file=str(wrong)))
    assert "0000" not in str(caught.value)
    with pytest.raises(Pkcs11Error, match=f"no PKCS#11 token 'nope'.*'{TOKEN}'"):
        token_signing.Pkcs11Signer.open(_selection(softhsm, token="nope"))
    with pytest.raises(Pkcs11Error, match="no RSA private key 'missing'.*'sgx'"):
        token_signing.Pkcs11Signer.open(_selection(softhsm, key_label="missing"))
    with pytest.raises(Pkcs11Error, match="needs a PIN"):
        token_signing.Pkcs11Signer.open(_selection(softhsm, pin_file=None))
    with pytest.raises(Pkcs11Error, match="does not exist"):
        token_signing.Pkcs11Signer.open(_selection(softhsm, module=str(tmp_path / "none.so")))


def test_non_sgx_key_in_token_is_refused(softhsm: dict) -> None:
    weak = _write_pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048), softhsm["dir"] / "weak.pem")
    softhsm["util"]("--import", str(weak), "--token", TOKEN, "--label", "weak", "--id", "0bad", "--pin", PIN)
    with pytest.raises(SigningKeyError, match="RSA-2048 with exponent 65537; SGX needs RSA-3072 with exponent 3"):
        token_signing.Pkcs11Signer.open(_selection(softhsm, key_label="weak"))


def test_cli_sign_with_token_equals_sign_with_pem(softhsm: dict, gcc_static_binary: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app"
    shutil.copy2(gcc_static_binary, app)
    common = ["--date", DATE, "--production", "--isvsvn", "4", str(app)]
    assert main(["sign", "--key", str(softhsm["pem"]), "-o", str(tmp_path / "pem"), *common]) == 0
    capsys.readouterr()
    assert main(["sign", "--json", "--pkcs11-module", str(softhsm["module"]), "--pkcs11-token", TOKEN,
                 "--pkcs11-key-label", "sgx", "--pkcs11-pin-file", str(softhsm["pin_file"]),
                 "-o", str(tmp_path / "token"), *common]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["signer"] == f"PKCS#11 token '{TOKEN}' key 'sgx' (id 0102)" and not data["debug_key"]
    assert (tmp_path / "token").read_bytes() == (tmp_path / "pem").read_bytes()  # same SIGSTRUCTs, same file
    assert main(["verify", str(tmp_path / "token")]) == 0


def test_cli_uri_subprocess_and_pin_errors(softhsm: dict, gcc_static_binary: Path, tmp_path: Path) -> None:
    """As a user runs it: a pkcs11: URI with module-name; no terminal and no PIN file gives one clear line."""
    app = tmp_path / "app"
    shutil.copy2(gcc_static_binary, app)
    env = {**os.environ, "SOFTHSM2_CONF": str(softhsm["conf"])}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tui.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                              env=env, stdin=subprocess.DEVNULL)

    uri = f"pkcs11:token={TOKEN};id=%01%02?module-path={softhsm['module']}&pin-source=file:{softhsm['pin_file']}"
    result = run("sign", "--date", DATE, "--pkcs11-uri", uri, str(app))
    assert result.returncode == 0, result.stderr
    assert "signer            PKCS#11 token" in result.stdout
    result = run("sign", "--pkcs11-module", str(softhsm["module"]), "--pkcs11-key-label", "sgx", str(app))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"ensign: PKCS#11 token '{TOKEN}' needs a PIN: give --pkcs11-pin-file FILE (no terminal to ask on)"]
    result = run("sign", "--key", str(softhsm["pem"]), "--pkcs11-module", str(softhsm["module"]), str(app))
    assert result.returncode == 2 and "two signing keys given" in result.stderr


def test_keygen_in_token_then_list_sign_and_attach_public_key(softhsm: dict, gcc_static_binary: Path,
                                                               tmp_path: Path, capsys) -> None:
    public = tmp_path / "generated.pub.pem"
    flags = ["--pkcs11-module", str(softhsm["module"]), "--pkcs11-token", TOKEN,
             "--pkcs11-pin-file", str(softhsm["pin_file"])]
    assert main(["pkcs11-keygen", "--json", *flags, "--pkcs11-key-label", "generated", "--pkcs11-key-id", "0a0b",
                 "--public-out", str(public)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bits"] == 3072 and data["exponent"] == 3 and data["id"] == "0a0b"
    assert mrsigner_of_modulus(load_public_key(public).public_numbers().n) == data["mrsigner"]
    assert main(["pkcs11-keygen", *flags, "--pkcs11-key-label", "generated"]) == 2
    assert "already has a key labelled 'generated'" in capsys.readouterr().err
    assert main(["pkcs11-list", "--json", *flags]) == 0
    listed = json.loads(capsys.readouterr().out)["tokens"][0]["keys"]
    generated = next(k for k in listed if k["label"] == "generated" and k["kind"] == "private")
    assert generated["sgx_usable"] and generated["mrsigner"] == data["mrsigner"]
    with token_signing.Pkcs11Signer.open(_selection(softhsm, key_label="generated")) as signer:
        import pkcs11

        assert not signer._key[pkcs11.Attribute.EXTRACTABLE] and signer._key[pkcs11.Attribute.SENSITIVE]
    # The public key written by keygen is what 'attach' needs after signing in the token elsewhere.
    app = tmp_path / "app"
    shutil.copy2(gcc_static_binary, app)
    assert main(["sign", "--export-signing-data", str(tmp_path / "req"), "--date", DATE, str(app)]) == 0
    signatures = []
    with token_signing.Pkcs11Signer.open(_selection(softhsm, key_label="generated")) as signer:
        for variant in ("sgx1", "edmm"):
            path = tmp_path / f"{variant}.sig"
            path.write_bytes(signer.sign_pkcs1_sha256((tmp_path / f"req.{variant}").read_bytes()))
            signatures += ["-s", str(path)]
    assert main(["attach", str(app), *signatures, "--public-key", str(public), "--signing-data",
                 str(tmp_path / "req")]) == 0
    assert main(["verify", str(app)]) == 0


@pytest.mark.fixtures
def test_sdk_resign_through_token_equals_sgx_sign(softhsm: dict, fixtures_dir: Path, tmp_path: Path) -> None:
    """An SDK enclave re-signed with the SDK sample key held in the token is sgx_sign's file, byte for byte."""
    import datetime

    from core.sdk import SdkEnclave
    from core.sdk_sign import resign_sdk_enclave

    sample_key = fixtures_dir / "fortanix" / "sig1.key.pem"
    pkcs8 = _write_pkcs8(load_private_key(sample_key), tmp_path / "sample.pem")
    softhsm["util"]("--import", str(pkcs8), "--token", TOKEN, "--label", "sdk-sample", "--id", "5d", "--pin", PIN)
    original = fixtures_dir / "sdk" / "shangsuru-sign-enclave" / "enclave.signed.so"
    with token_signing.Pkcs11Signer.open(_selection(softhsm, key_label="sdk-sample")) as signer, \
            SdkEnclave.open(original) as enclave:
        resign_sdk_enclave(enclave, signer, output=str(tmp_path / "resigned.so"), date=datetime.date(2021, 7, 19))
    assert (tmp_path / "resigned.so").read_bytes() == original.read_bytes()
