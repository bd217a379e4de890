"""Two-step signing: export the signed bytes, sign them elsewhere (openssl), attach, verify.

Covers the issue's "done when": export → ``openssl dgst -sha256 -sign`` / ``openssl pkeyutl -sign``
→ attach → ``ensign verify`` for both byte orders, the precise rejection of stale or wrong
signatures, an Intel SDK fixture re-signed through export/attach being byte-identical to the
file ``sgx_sign`` wrote, and reproducible one-step signing (``--date`` + same key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from core import twostep
from core.errors import ContainerError, SignatureError
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct
from tui.cli import main

ROOT = Path(__file__).resolve().parents[1]
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed: cannot sign externally")
DATE = "2025-03-04"


# --- helpers ------------------------------------------------------------------------------------


def ensign(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> tuple[str, str]:
    """Run the CLI in-process; return (stdout, stderr) and check the exit code."""
    result = main(list(argv))
    captured = capsys.readouterr()
    assert result == code, (result, captured.out, captured.err)
    return captured.out, captured.err


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail with one ``ensign: ...`` line and exit 2; return that line."""
    _out, err = ensign(capsys, *argv, code=2)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ensign: "), err
    return lines[0]


def openssl(*args: str) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An RSA-3072 e=3 signing key (PKCS#8 PEM), its public key and an unrelated second key."""
    directory = tmp_path_factory.mktemp("twostep-keys")
    paths = {}
    for name in ("signer", "other"):
        key = rsa.generate_private_key(public_exponent=3, key_size=3072)
        private = directory / f"{name}.pem"
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        public = directory / f"{name}.pub.pem"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        paths[name] = private
        paths[f"{name}.pub"] = public
    return paths


@pytest.fixture()
def app(tmp_path: Path, gcc_static_binary: Path) -> Path:
    target = tmp_path / "app"
    shutil.copy2(gcc_static_binary, target)
    return target


def export(capsys: pytest.CaptureFixture[str], app: Path, *flags: str) -> dict:
    out, _ = ensign(capsys, "sign", "--json", "--export-signing-data", f"{app}.req",
                    "--export-digest", f"{app}.dig", "--date", DATE, *flags, str(app))
    return json.loads(out)


def sign_parts_with_openssl(app: Path, key: Path) -> tuple[Path, Path]:
    """SGX1: openssl dgst over the signing data; EDMM: openssl pkeyutl over the digest. Both big-endian."""
    sgx1, edmm = Path(f"{app}.sgx1.sig"), Path(f"{app}.edmm.sig")
    openssl("dgst", "-sha256", "-sign", str(key), "-out", str(sgx1), f"{app}.req.sgx1")
    openssl("pkeyutl", "-sign", "-inkey", str(key), "-pkeyopt", "digest:sha256", "-in", f"{app}.dig.edmm",
            "-out", str(edmm))
    return sgx1, edmm


# --- export format --------------------------------------------------------------------------------


def test_export_writes_documented_files_and_leaves_app_alone(capsys, app: Path) -> None:
    before = hashlib.sha256(app.read_bytes()).hexdigest()
    data = export(capsys, app, "--heap", "32M")
    assert hashlib.sha256(app.read_bytes()).hexdigest() == before
    request = Path(f"{app}.req").read_bytes()
    parts = [Path(f"{app}.req.sgx1").read_bytes(), Path(f"{app}.req.edmm").read_bytes()]
    assert len(request) == 512 and request == b"".join(parts)
    digests = Path(f"{app}.dig").read_bytes()
    assert digests == b"".join(hashlib.sha256(part).digest() for part in parts)
    assert Path(f"{app}.dig.sgx1").read_bytes() == hashlib.sha256(parts[0]).digest()
    assert [s["signed_sha256"] for s in data["sigstructs"]] == [hashlib.sha256(p).hexdigest() for p in parts]
    manifest = json.loads(Path(f"{app}.req.json").read_text())
    assert manifest["format"] == "ensign-signing-data" and manifest["version"] == 1
    assert manifest["params"]["heap"] == 32 << 20 and manifest["date"] == "20250304"
    assert [s["variant"] for s in manifest["sigstructs"]] == ["sgx1", "edmm"]
    assert manifest["sigstructs"][0]["signed_bytes"] == parts[0].hex()
    assert manifest["sigstructs"][0]["enclavehash"] == data["mrenclave"]["sgx1"]
    # The message is header ‖ body of the SIGSTRUCT sign would build (SPEC §2.2).
    sig = twostep.sigstruct_from_signed_bytes(parts[0])
    assert sig.enclavehash.hex() == data["mrenclave"]["sgx1"] and sig.date == 0x20250304


def test_read_exported_accepts_file_part_and_manifest(capsys, app: Path) -> None:
    export(capsys, app)
    whole = twostep.read_exported(f"{app}.req")
    assert whole.variants == ("sgx1", "edmm") and whole.params is not None and whole.image_digests
    part = twostep.read_exported(f"{app}.req.edmm")
    assert part.variants == ("edmm",) and part.messages == (whole.messages[1],)  # type: ignore[index]
    assert twostep.read_exported(f"{app}.req.json").digests == whole.digests
    assert twostep.read_exported(f"{app}.dig").digests == whole.digests
    Path(f"{app}.req").write_bytes(bytes(512))
    with pytest.raises(ContainerError, match="manifest describes other signing data"):
        twostep.read_exported(f"{app}.req")
    bare = app.parent / "bare.bin"
    bare.write_bytes(Path(f"{app}.req.sgx1").read_bytes())
    assert twostep.read_exported(bare).variants is None
    bare.write_bytes(b"x" * 100)
    with pytest.raises(ContainerError, match="neither signing data"):
        twostep.read_exported(bare)


def test_export_refuses_conflicting_options(capsys, app: Path) -> None:
    line = one_line_error(capsys, "sign", "--export-signing-data", "x", "--export-digest", "x", str(app))
    assert "different files" in line
    line = one_line_error(capsys, "sign", "--export-signing-data", str(app.parent / "r"), "-o", "y", str(app))
    assert "write no signature" in line


# --- round trips ----------------------------------------------------------------------------------


@needs_openssl
def test_openssl_big_endian_round_trip_verifies_and_equals_direct_signing(capsys, app: Path, keys) -> None:
    export(capsys, app, "--production", "--isvsvn", "2")
    sgx1, edmm = sign_parts_with_openssl(app, keys["signer"])
    attached = app.parent / "attached"
    out, _ = ensign(capsys, "attach", "--json", str(app), "-s", str(edmm), "-s", str(sgx1),  # any order
                    "--public-key", str(keys["signer.pub"]), "--signing-data", f"{app}.req",
                    "--production", "--isvsvn", "2", "-o", str(attached))
    data = json.loads(out)
    assert [(s["variant"], s["byte_order"]) for s in data["signatures"]] == [("sgx1", "big"), ("edmm", "big")]
    assert data["date"] == "20250304" and data["date_source"].startswith("from ")
    ensign(capsys, "verify", str(attached))
    direct = app.parent / "direct"
    ensign(capsys, "sign", "--key", str(keys["signer"]), "--production", "--isvsvn", "2", "--date", DATE,
           "-o", str(direct), str(app))
    assert attached.read_bytes() == direct.read_bytes()


@needs_openssl
def test_little_endian_and_combined_signature_files(capsys, app: Path, keys) -> None:
    export(capsys, app)
    sgx1, edmm = sign_parts_with_openssl(app, keys["signer"])
    little = app.parent / "both.le.sig"  # SGX1 ‖ EDMM, each byte-reversed (SIGSTRUCT order)
    little.write_bytes(sgx1.read_bytes()[::-1] + edmm.read_bytes()[::-1])
    out, _ = ensign(capsys, "attach", "--json", str(app), "-s", str(little), "--public-key", str(keys["signer.pub"]),
                    "--date", DATE, "--sig-out", str(app.parent / "sgx1.sigstruct"))
    assert [s["byte_order"] for s in json.loads(out)["signatures"]] == ["little", "little"]
    ensign(capsys, "verify", str(app))
    sigstruct = Sigstruct.from_bytes((app.parent / "sgx1.sigstruct").read_bytes())
    assert sigstruct.check().valid
    # Hex and base64 text forms of a signature are read too.
    hex_file, b64_file = app.parent / "sgx1.hex", app.parent / "edmm.b64"
    hex_file.write_text(sgx1.read_bytes().hex() + "\n")
    b64_file.write_text(base64.encodebytes(edmm.read_bytes()).decode())
    ensign(capsys, "attach", str(app), "-s", str(hex_file), "-s", str(b64_file), "--public-key",
           str(keys["signer.pub"]), "--date", DATE)


@needs_openssl
def test_end_to_end_as_a_user_runs_it(tmp_path: Path, app: Path, keys) -> None:
    """One real subprocess run of the whole flow, with an X.509 certificate as the public key."""
    cert = tmp_path / "signer.crt"
    openssl("req", "-new", "-x509", "-key", str(keys["signer"]), "-subj", "/CN=sgx", "-days", "1", "-out", str(cert))

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "tui.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        return result

    run("sign", "--export-signing-data", f"{app}.req", "--export-digest", f"{app}.dig", "--date", DATE, str(app))
    sgx1, edmm = sign_parts_with_openssl(app, keys["signer"])
    run("attach", str(app), "-s", str(sgx1), "-s", str(edmm), "--public-key", str(cert), "--signing-data", f"{app}.dig")
    assert "OK:" in run("verify", str(app)).stdout


# --- precise rejections ---------------------------------------------------------------------------


@needs_openssl
def test_stale_data_is_rejected_naming_what_changed(capsys, app: Path, keys) -> None:
    export(capsys, app)
    sgx1, edmm = sign_parts_with_openssl(app, keys["signer"])
    common = [str(app), "-s", str(sgx1), "-s", str(edmm), "--public-key", str(keys["signer.pub"])]
    before = app.read_bytes()
    line = one_line_error(capsys, "attach", *common, "--signing-data", f"{app}.req", "--heap", "128M")
    assert "signed over different data" in line and "--heap 64M → 128M" in line
    assert "(SGX1)" in line and "(EDMM)" in line
    line = one_line_error(capsys, "attach", *common, "--signing-data", f"{app}.req", "--date", "2025-03-05")
    assert "DATE 2025-03-04 → 2025-03-05 (give --date 2025-03-04)" in line
    # Without the export the one-field changes are still named (found by search).
    line = one_line_error(capsys, "attach", *common, "--date", "2025-03-05")
    assert "with DATE 2025-03-04, not 2025-03-05 (give --date 2025-03-04)" in line
    line = one_line_error(capsys, "attach", *common, "--date", DATE, "--isvsvn", "7")
    assert "--isvsvn 0, not 7" in line
    line = one_line_error(capsys, "attach", *common, "--date", DATE, "--production")
    assert "signs the debug SIGSTRUCT" in line
    assert app.read_bytes() == before  # nothing written on failure


@needs_openssl
def test_changed_program_is_named_with_the_first_changed_page(capsys, app: Path, keys) -> None:
    export(capsys, app)
    sgx1, edmm = sign_parts_with_openssl(app, keys["signer"])
    from core.elf import load_elf

    image = load_elf(str(app))
    segment = next(s for s in image.segments if s.type_name == "LOAD" and s.filesz > 0x3000)
    offset = segment.offset + 0x2000
    image.close()
    data = bytearray(app.read_bytes())
    data[offset] ^= 0xFF
    app.write_bytes(bytes(data))
    line = one_line_error(capsys, "attach", str(app), "-s", str(sgx1), "-s", str(edmm), "--public-key",
                          str(keys["signer.pub"]), "--signing-data", f"{app}.req")
    assert "the program changed since the export; first changed image page" in line


@needs_openssl
def test_wrong_key_wrong_size_wrong_method(capsys, app: Path, keys, tmp_path: Path) -> None:
    export(capsys, app)
    sgx1, edmm = sign_parts_with_openssl(app, keys["signer"])
    base = [str(app), "--date", DATE]
    line = one_line_error(capsys, "attach", *base, "-s", str(sgx1), "-s", str(edmm),
                          "--public-key", str(keys["other.pub"]))
    assert "wrong key" in line and "in either byte order" in line
    from core.signing import load_public_key, mrsigner_of_modulus

    signer_mrsigner = mrsigner_of_modulus(load_public_key(keys["signer.pub"]).public_numbers().n)
    line = one_line_error(capsys, "attach", *base, "-s", str(sgx1), "-s", str(edmm), "--public-key",
                          str(keys["signer.pub"]), "--expect-mrsigner", "ab" * 32)
    assert f"has MRSIGNER {signer_mrsigner}, but MRSIGNER {'ab' * 32} is expected" in line
    short = tmp_path / "short.sig"
    short.write_bytes(b"\x01" * 256)
    line = one_line_error(capsys, "attach", *base, "-s", str(short), "--public-key", str(keys["signer.pub"]))
    assert "256 bytes; an RSA-3072 signature is 384 bytes" in line and "RSA-2048" in line
    bare = tmp_path / "bare.sig"  # pkeyutl without -pkeyopt digest:sha256: no DigestInfo
    openssl("pkeyutl", "-sign", "-inkey", str(keys["signer"]), "-in", f"{app}.dig.sgx1", "-out", str(bare))
    line = one_line_error(capsys, "attach", *base, "-s", str(bare), "-s", str(edmm),
                          "--public-key", str(keys["signer.pub"]))
    assert "right key" in line and "without the SHA-256 DigestInfo" in line
    line = one_line_error(capsys, "attach", *base, "-s", str(sgx1), "--public-key", str(keys["signer.pub"]))
    assert "no signature for the EDMM SIGSTRUCT" in line
    combined = tmp_path / "combined.sig"  # signing FILE (both messages at once) instead of FILE.sgx1
    openssl("dgst", "-sha256", "-sign", str(keys["signer"]), "-out", str(combined), f"{app}.req")
    line = one_line_error(capsys, "attach", *base, "-s", str(combined), "-s", str(edmm),
                          "--public-key", str(keys["signer.pub"]))
    assert "combined signing data" in line


# --- core units -----------------------------------------------------------------------------------


def test_parse_signatures_sizes_and_text_forms() -> None:
    raw = bytes(range(256)) + bytes(range(128))
    assert twostep.parse_signatures(raw, name="s") == (raw,)
    assert twostep.parse_signatures(raw * 2, name="s") == (raw, raw)
    assert twostep.parse_signatures(raw.hex().encode(), name="s") == (raw,)
    assert twostep.parse_signatures(":".join(f"{b:02x}" for b in raw).encode(), name="s") == (raw,)
    armoured = b"-----BEGIN SIGNATURE-----\n" + base64.encodebytes(raw) + b"-----END SIGNATURE-----\n"
    assert twostep.parse_signatures(armoured, name="s") == (raw,)
    for size, fragment in ((0, "empty"), (512, "RSA-4096"), (100, "384 bytes")):
        with pytest.raises(SignatureError, match=fragment):
            twostep.parse_signatures(b"\x07" * size, name="s")


def test_recover_signature_byte_orders_and_payloads() -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=3072)
    n = key.public_key().public_numbers().n
    message = b"m" * 256
    big = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    digest = hashlib.sha256(message).digest()
    assert twostep.recover_signature(n, big).byte_order == "big"
    assert twostep.recover_signature(n, big).digest == digest
    little = twostep.recover_signature(n, big[::-1])
    assert little.byte_order == "little" and little.digest == digest and little.signature == big
    sha1 = twostep.recover_signature(n, key.sign(message, padding.PKCS1v15(), hashes.SHA1()))
    assert sha1.digest is None and "SHA-1" in (sha1.problem or "")
    pss = key.sign(message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert "RSA-PSS" in (twostep.recover_signature(n, pss).problem or "")
    other = rsa.generate_private_key(public_exponent=3, key_size=3072).public_key().public_numbers().n
    assert twostep.recover_signature(other, big).byte_order is None


def test_fortanix_big_endian_vector_attaches_to_its_sigstruct(fixtures_dir: Path) -> None:
    """sig1.sigstruct.sha256.sig is sig1.sigstruct.bin's signature in big-endian order (FIXTURES.md)."""
    signed = Sigstruct.from_bytes((fixtures_dir / "fortanix" / "sig1.sigstruct.bin").read_bytes())
    template = twostep.sigstruct_from_signed_bytes(signed.signed_bytes())
    request = twostep.SigningRequest(app="sig1", kind="sigstruct", variants=("sig1",), templates=(template,))
    signature = (fixtures_dir / "fortanix" / "sig1.sigstruct.sha256.sig").read_bytes()
    plan = twostep.match_signatures(request, signed.modulus, [("sig1.sig", signature)])
    assert plan.matches[0].byte_order == "big"
    from core.signing import sign_sigstruct_with

    assert sign_sigstruct_with(template, plan.signer).to_bytes() == signed.to_bytes()
    assert len(signed.to_bytes()) == SIGSTRUCT_SIZE


# --- Intel SGX SDK enclaves -----------------------------------------------------------------------

SDK_CASES = [  # (folder, signed file, key relative to the fixtures folder, DATE of the original)
    ("shangsuru-sign-enclave", "enclave.signed.so", "fortanix/sig1.key.pem", "2021-07-19"),
    ("M21121-simple_sgx_benchmark", "enclave.signed.so", "sdk/M21121-simple_sgx_benchmark/Enclave_private.pem",
     "2025-07-15"),
]


@needs_openssl
@pytest.mark.fixtures
@pytest.mark.parametrize(("folder", "name", "key", "date"), SDK_CASES, ids=[c[0] for c in SDK_CASES])
def test_sdk_enclave_export_attach_equals_direct_signing(capsys, tmp_path: Path, fixtures_dir: Path,
                                                         folder: str, name: str, key: str, date: str) -> None:
    original = fixtures_dir / "sdk" / folder / name
    key_path = fixtures_dir / key
    enclave = tmp_path / "enclave.so"
    enclave.write_bytes(original.read_bytes())
    public = tmp_path / "pub.pem"
    openssl("pkey", "-in", str(key_path), "-pubout", "-out", str(public))
    ensign(capsys, "sign", "--export-signing-data", str(tmp_path / "req"), "--date", date, str(enclave))
    assert enclave.read_bytes() == original.read_bytes()
    assert (tmp_path / "req").stat().st_size == 256  # one SIGSTRUCT: exactly sgx_sign gendata's size
    signature = tmp_path / "sdk.sig"
    openssl("dgst", "-sha256", "-sign", str(key_path), "-out", str(signature), str(tmp_path / "req"))
    little = tmp_path / "sdk.le.sig"
    little.write_bytes(signature.read_bytes()[::-1])
    for sig, out in ((signature, tmp_path / "big.so"), (little, tmp_path / "little.so")):
        ensign(capsys, "attach", str(enclave), "-s", str(sig), "--public-key", str(public),
               "--signing-data", str(tmp_path / "req"), "-o", str(out))
        assert out.read_bytes() == original.read_bytes()  # = what sgx_sign wrote, = signing directly
    from core.sdk import SdkEnclave
    from core.sdk_sign import resign_sdk_enclave
    from core.signing import KeySigner, load_private_key

    with SdkEnclave.open(enclave) as opened:
        resign_sdk_enclave(opened, KeySigner(load_private_key(key_path)), output=str(tmp_path / "direct.so"),
                           date=twostep.exported_date(twostep.read_exported(tmp_path / "req")))
    assert (tmp_path / "direct.so").read_bytes() == (tmp_path / "big.so").read_bytes()
    line = one_line_error(capsys, "attach", str(enclave), "-s", str(signature), "--public-key", str(public),
                          "--signing-data", str(tmp_path / "req"), "--isvsvn", "3")
    assert "ISVSVN 0 → 3" in line
    line = one_line_error(capsys, "attach", str(enclave), "-s", str(signature), "--public-key", str(public),
                          "--heap", "1M")
    assert "--heap does not apply to an Intel SGX SDK enclave" in line


# --- reproducible signatures ------------------------------------------------------------------------


def test_same_key_and_date_give_byte_identical_signatures(capsys, app: Path, keys, tmp_path: Path) -> None:
    """The README recipe: --date and the same key → byte-identical output; info shows every input."""
    first, second = tmp_path / "first", tmp_path / "second"
    for target in (first, second):
        ensign(capsys, "sign", "--key", str(keys["signer"]), "--date", DATE, "--heap", "32M", "--isvsvn", "3",
               "-o", str(target), str(app))
    assert first.read_bytes() == second.read_bytes()
    info_text = json.dumps(json.loads(ensign(capsys, "info", "--json", str(first))[0]))
    info = json.loads(info_text)
    assert "20250304" in info_text and info["sigstructs"]["sgx1"]["date"] == "20250304"
    assert '"heap"' in info_text and str(32 << 20) in info_text
    assert info["sigstructs"]["sgx1"]["signature_valid"] and info["sigstructs"]["edmm"]["signed_sha256"]
