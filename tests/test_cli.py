"""End-to-end tests of the ensign CLI on real gcc-built binaries (subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]


def ensign(*args: str, env: dict | None = None, check_code: int | None = 0) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SCONE_")}
    full_env.update(env or {})
    result = subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True,
                            cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL)
    if check_code is not None:
        assert result.returncode == check_code, (result.returncode, result.stdout, result.stderr)
    return result


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ensign: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture()
def app(tmp_path, gcc_static_binary) -> Path:
    target = tmp_path / "app"
    shutil.copy2(gcc_static_binary, target)
    return target


@pytest.fixture(scope="session")
def key_pem(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "signer.pem"
    ensign("keygen", str(path))
    return path


def test_hash_json_and_flags(app: Path) -> None:
    data = json.loads(ensign("hash", "--json", str(app)).stdout)
    assert len(data["mrenclave"]) == 64 and data["variant"] == "sgx1"
    assert data["params"]["heap"] == {"value": 64 << 20, "source": "default"}
    other = json.loads(ensign("hash", "--json", "--heap", "128M", str(app)).stdout)
    assert other["mrenclave"] != data["mrenclave"] and other["params"]["heap"]["source"] == "flag"
    edmm = json.loads(ensign("hash", "--json", "--edmm", str(app)).stdout)
    assert edmm["mrenclave"] != data["mrenclave"]
    quiet = ensign("hash", "-q", str(app)).stdout.strip()
    assert quiet == data["mrenclave"]


def test_hash_sgxs_out_is_the_stream(app: Path, tmp_path: Path) -> None:
    import hashlib

    out = tmp_path / "app.sgxs"
    data = json.loads(ensign("hash", "--json", "--tcs", "2", "--sgxs-out", str(out), str(app)).stdout)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == data["mrenclave"]
    assert out.read_bytes()[:8] == b"ECREATE\0"


def test_env_is_read_only_with_env_flag_and_flags_override(app: Path) -> None:
    plain = json.loads(ensign("hash", "--json", str(app), env={"SCONE_HEAP": "128M"}).stdout)
    assert plain["params"]["heap"]["value"] == 64 << 20
    with_env = json.loads(ensign("hash", "--json", "--env", str(app), env={"SCONE_HEAP": "128M"}).stdout)
    assert with_env["params"]["heap"] == {"value": 128 << 20, "source": "env:SCONE_HEAP"}
    override = json.loads(ensign("hash", "--json", "--env", "--heap", "32M", str(app),
                                 env={"SCONE_HEAP": "128M"}).stdout)
    assert override["params"]["heap"] == {"value": 32 << 20, "source": "flag"}


def test_sign_then_verify_and_mrenclave_unchanged(app: Path, tmp_path: Path) -> None:
    before = ensign("hash", "-q", "--tcs", "4", str(app)).stdout.strip()
    signed = json.loads(ensign("sign", "--json", "--tcs", "4", "--date", "2025-03-04", "--sig-out",
                               str(tmp_path / "app.sig"), str(app)).stdout)
    assert signed["mrenclave"]["sgx1"] == before
    assert signed["debug_key"] is True and signed["date"] == "20250304"
    assert ensign("hash", "-q", "--tcs", "4", str(app)).stdout.strip() == before  # signing keeps MRENCLAVE
    verified = json.loads(ensign("verify", "--json", str(app)).stdout)
    assert verified["ok"] is True and verified["computed"] == before
    assert (tmp_path / "app.sig").stat().st_size == 1808
    ensign("verify", "--sig", str(tmp_path / "app.sig"), str(app))
    info = json.loads(ensign("info", "--json", str(app)).stdout)
    assert info["kind"] == "ensign-signed-binary" and info["params"]["tcs"] == 4
    assert info["sigstructs"]["sgx1"]["enclavehash"] == before
    assert info["sigstructs"]["sgx1"]["attributes_flags"] == "0x0000000000000006"  # MODE64BIT | DEBUG


def test_signed_static_binary_still_runs_and_readelf_is_clean(app: Path) -> None:
    expected = subprocess.run([str(app)], capture_output=True)
    ensign("sign", str(app))
    after = subprocess.run([str(app)], capture_output=True)
    assert after.returncode == expected.returncode == 0 and after.stdout == expected.stdout
    readelf = subprocess.run(["readelf", "-a", "-W", str(app)], capture_output=True, text=True)
    assert readelf.returncode == 0 and readelf.stderr == ""
    assert ".ensign" in subprocess.run(["readelf", "-S", "-W", str(app)], capture_output=True, text=True).stdout


def test_sign_twice_one_section_same_size_and_reproducible(app: Path) -> None:
    ensign("sign", "--date", "2024-01-01", str(app))
    first = app.read_bytes()
    ensign("sign", "--date", "2024-01-01", str(app))
    assert app.read_bytes() == first  # same key + date → byte-identical
    ensign("sign", "--date", "2024-01-02", "--tcs", "2", str(app))
    assert len(app.read_bytes()) == len(first)
    sections = subprocess.run(["readelf", "-S", "-W", str(app)], capture_output=True, text=True).stdout
    assert sections.count(".ensign") == 1
    ensign("verify", str(app))


def test_flipped_code_byte_fails_verify_and_names_the_page(app: Path) -> None:
    ensign("sign", str(app))
    text = subprocess.run(["readelf", "-sW", str(app)], capture_output=True, text=True).stdout
    main_line = next(line for line in text.splitlines() if line.split()[-1:] == ["main"] and "FUNC" in line)
    main_vaddr = int(main_line.split()[1], 16)
    headers = subprocess.run(["readelf", "-lW", str(app)], capture_output=True, text=True).stdout
    for line in headers.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            offset, vaddr, _, filesz = (int(p, 16) for p in parts[1:5])
            if vaddr <= main_vaddr < vaddr + filesz:
                file_offset = offset + main_vaddr - vaddr
    data = bytearray(app.read_bytes())
    data[file_offset + 1] ^= 0xFF
    app.write_bytes(bytes(data))
    result = ensign("verify", "--json", str(app), check_code=1)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    description = report["first_changed_page"]["description"]
    assert ".text" in description and "main" in description
    assert f"{(main_vaddr - 0x400000) & ~0xFFF:#x}" in description
    text_report = ensign("verify", str(app), check_code=1).stdout
    assert "FAILED" in text_report and "main" in text_report


def test_output_copy_leaves_original(app: Path, tmp_path: Path) -> None:
    original = app.read_bytes()
    mode = stat.S_IMODE(app.stat().st_mode)
    copy = tmp_path / "signed-copy"
    ensign("sign", "-o", str(copy), str(app))
    assert app.read_bytes() == original
    assert stat.S_IMODE(copy.stat().st_mode) == mode
    ensign("verify", str(copy))


def test_sign_in_place_keeps_mode(app: Path) -> None:
    app.chmod(0o750)
    ensign("sign", str(app))
    assert stat.S_IMODE(app.stat().st_mode) == 0o750


def test_failed_sign_leaves_original_intact(app: Path, tmp_path: Path) -> None:
    original = app.read_bytes()
    result = ensign("sign", "-o", str(tmp_path / "missing-dir" / "out"), str(app), check_code=2)
    assert "Traceback" not in result.stderr and result.stderr.startswith("ensign: ")
    assert app.read_bytes() == original
    assert list(tmp_path.glob("**/.*.tmp")) == []


def test_keygen_mode_and_refuses_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    data = json.loads(ensign("keygen", "--json", str(out)).stdout)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(out.read_bytes(), None)
    assert key.key_size == 3072 and key.public_key().public_numbers().e == 3
    assert len(data["mrsigner"]) == 64
    assert_one_line_error(ensign("keygen", str(out), check_code=None), "exists")


def test_sign_with_key_and_production(app: Path, key_pem: Path) -> None:
    data = json.loads(ensign("sign", "--json", "--production", "--key", str(key_pem), str(app)).stdout)
    assert data["debug_key"] is False
    info = json.loads(ensign("info", "--json", str(app)).stdout)
    assert info["sigstructs"]["sgx1"]["attributes_flags"] == "0x0000000000000004"  # no DEBUG
    assert int(info["sigstructs"]["sgx1"]["attributemask_flags"], 16) & 0x2  # DEBUG enforced
    assert info["params"]["production"] is True
    ensign("verify", str(app))


def test_production_with_debug_key_refused(app: Path) -> None:
    original = app.read_bytes()
    assert_one_line_error(ensign("sign", "--production", str(app), check_code=None), "debug key")
    assert app.read_bytes() == original


def test_encrypted_key_with_passphrase_file(app: Path, tmp_path: Path) -> None:
    key = tmp_path / "enc.pem"
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse\n")
    ensign("keygen", "--passphrase-file", str(secret), str(key))
    assert b"ENCRYPTED" in key.read_bytes()
    result = ensign("sign", "--key", str(key), "--passphrase-file", str(secret), str(app))
    assert "correct horse" not in result.stdout + result.stderr
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("nope")
    bad = ensign("sign", "--key", str(key), "--passphrase-file", str(wrong), str(app), check_code=None)
    assert_one_line_error(bad, "passphrase")
    assert "nope" not in bad.stderr
    no_tty = ensign("sign", "--key", str(key), str(app), check_code=None)
    assert_one_line_error(no_tty, "encrypted")


@pytest.mark.parametrize("bits, exponent, fragment", [(2048, 3, "2048"), (3072, 65537, "65537")])
def test_wrong_key_size_or_exponent(app: Path, tmp_path: Path, bits: int, exponent: int, fragment: str) -> None:
    key = rsa.generate_private_key(public_exponent=exponent, key_size=bits)
    path = tmp_path / "bad.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    assert_one_line_error(ensign("sign", "--key", str(path), str(app), check_code=None), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--heap", "12Q"], "--heap"),
    (["--minheap", "1G"], "minheap"),
    (["--tcs", "0"], "--tcs"),
    (["--isvsvn", "70000"], "--isvsvn"),
    (["--xfrm", "0x1"], "x87"),
    (["--stack", "-1"], "negative"),
    (["--date", "2024-13-01"], "--date"),
])
def test_bad_flags_one_line_exit_2(app: Path, args: list[str], fragment: str) -> None:
    assert_one_line_error(ensign("sign", *args, str(app), check_code=None), fragment)


def test_bad_env_value_names_variable(app: Path) -> None:
    result = ensign("hash", "--env", str(app), env={"SCONE_TCS": "many"}, check_code=None)
    assert_one_line_error(result, "SCONE_TCS")


@pytest.mark.parametrize("content, fragment", [
    (b"PK\x03\x04" + bytes(100), "not an ELF"),
    (b"", "empty"),
    (b"\x7fELF\x01\x01\x01" + bytes(60), "32-bit"),
    (b"\x7fELF\x02\x01\x01" + bytes(10), ""),
])
def test_malformed_elf_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    for command in ("hash", "sign", "verify"):
        assert_one_line_error(ensign(command, str(path), check_code=None), fragment)


def test_truncated_sigstruct_and_unknown_file_for_info(tmp_path: Path, app: Path) -> None:
    ensign("sign", "--sig-out", str(tmp_path / "a.sig"), str(app))
    truncated = tmp_path / "t.sig"
    truncated.write_bytes((tmp_path / "a.sig").read_bytes()[:1000])
    result = ensign("info", str(truncated), check_code=None)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_one_line_error(ensign("verify", "--sig", str(truncated), str(app), check_code=None), "1000")
    assert_one_line_error(ensign("info", str(tmp_path / "nope"), check_code=None), "nope")


def test_info_on_raw_sig(tmp_path: Path, app: Path) -> None:
    ensign("sign", "--isvprodid", "7", "--isvsvn", "3", "--sig-out", str(tmp_path / "a.sig"), str(app))
    text = ensign("info", str(tmp_path / "a.sig")).stdout
    assert "DEBUG" in text and "MODE64BIT" in text and "valid" in text
    data = json.loads(ensign("info", "--json", str(tmp_path / "a.sig")).stdout)
    sig = data.get("sigstruct", data)
    assert sig["isvprodid"] == 7 and sig["isvsvn"] == 3 and sig["signature_valid"] is True


def test_help_explains() -> None:
    text = ensign("--help").stdout
    for word in ("sign", "hash", "info", "verify", "keygen", "inspect", "scone-signer"):
        assert word in text
    sign_help = ensign("sign", "--help").stdout
    for flag in ("--stack", "--minheap", "--heap", "--tcs", "--mprotect", "--dlopen", "--xfrm", "--isvsvn",
                 "--isvprodid", "--key", "--production", "--env", "SCONE_HEAP", "--date", "--sig-out"):
        assert flag in sign_help
