"""Golden tests for core.signing: SPEC §2.9, re-signing fixtures byte for byte, keys and the debug key."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

from core.errors import SignatureError, SigningKeyError
from core.signing import (
    DEBUG_KEY_MRSIGNER_PATH,
    DEBUG_KEY_PATH,
    KeySigner,
    Signer,
    check_signing_key,
    debug_key_mrsigner,
    describe_key,
    generate_key,
    is_debug_key,
    load_debug_key,
    load_private_key,
    load_public_key,
    mrsigner_of_modulus,
    sign_sigstruct,
    sign_sigstruct_with,
    write_private_key,
)
from core.sigstruct import Sigstruct, build_sigstruct

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"shared fixtures not found at {FIXTURES} (checkout without ../shared)"
)

SDK_SAMPLE_KEY = FIXTURES / "fortanix" / "sig1.key.pem"
KERNEL_KEY = FIXTURES / "kernel-selftest" / "sign_key.pem"
SDK_SAMPLE_MRSIGNER = "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e"
PASSPHRASE = b"correct horse battery staple"


# ---- keys made once per session (RSA-3072 generation takes about a second each) --------------------


@pytest.fixture(scope="session")
def sgx_key() -> rsa.RSAPrivateKey:
    """A freshly generated SGX key; also the generate_key() test."""
    key = generate_key()
    assert key.key_size == 3072
    assert key.public_key().public_numbers().e == 3
    return key


@pytest.fixture(scope="session")
def rsa3072_e65537() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@pytest.fixture(scope="session")
def rsa2048_e65537() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_pem(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _self_signed_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ensign test")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


# ---- SPEC §2.9 --------------------------------------------------------------------------------------


@pytest.mark.fixtures
@needs_fixtures
def test_spec_vector_signed_with_sdk_sample_key() -> None:
    key = load_private_key(SDK_SAMPLE_KEY)
    unsigned = build_sigstruct(
        enclavehash=bytes.fromhex("1f2cf80bd03ffd8bfac33f7cba128aff511c3af666b93bb66e7ef718418bdade"),
        attributes_flags=0x4,
        attributes_xfrm=0x3,
        attributemask_flags=0xFF00FFFFFFFFFFFD,
        attributemask_xfrm=0xFFFFFFFFFFFFFF1B,
        date_raw=0x20240101,
    )
    assert unsigned.signed_sha256() == "21e4b356c1994fb6bc85279908374338cca42b7209fc6024920b8740ffe718ae"
    signed = sign_sigstruct(unsigned, key)
    raw = signed.to_bytes()
    assert (
        hashlib.sha256(raw).hexdigest() == "90ec66a295733bfa94c9dbb21ac1530c28f229582e15b3a9522244ba23022e9a"
    )
    assert raw[516:532].hex() == "44f4bdb91fc10ce41bd7cf3745d78162"
    assert raw[1040:1048].hex() == "d58c458a198b49a9"
    assert signed.mrsigner == SDK_SAMPLE_MRSIGNER
    assert mrsigner_of_modulus(key.public_key().public_numbers().n) == SDK_SAMPLE_MRSIGNER
    check = signed.check()
    assert check.valid and check.problems == ()


# ---- re-signing fixtures reproduces them byte for byte ------------------------------------------------


@pytest.mark.fixtures
@needs_fixtures
@pytest.mark.parametrize(
    ("sigstruct_file", "key_file"),
    [
        ("kernel-selftest/vectors/k1.sigstruct", "kernel-selftest/sign_key.pem"),
        ("kernel-selftest/vectors/k2.sigstruct", "kernel-selftest/sign_key.pem"),
        ("kernel-selftest/vectors/k3.sigstruct", "kernel-selftest/sign_key.pem"),
        ("enarx-sgx/encl.ss", "enarx-sgx/encl.pem"),
        ("fortanix/sig1.sigstruct.bin", "fortanix/sig1.key.pem"),
        ("gramine-oracle/oracle.sig", "kernel-selftest/sign_key.pem"),
    ],
)
def test_resigning_fixture_reproduces_it(sigstruct_file: str, key_file: str) -> None:
    original = (FIXTURES / sigstruct_file).read_bytes()
    parsed = Sigstruct.from_bytes(original)
    stripped = dataclasses.replace(parsed, modulus=0, exponent=0, signature=0, q1=0, q2=0)
    assert sign_sigstruct(stripped, load_private_key(FIXTURES / key_file)).to_bytes() == original


@pytest.mark.fixtures
@needs_fixtures
@pytest.mark.parametrize("sigstruct_file", ["fortanix/sig1.sigstruct.bin", "gramine-oracle/oracle.sig"])
def test_building_and_signing_fixture_fields_reproduces_it(sigstruct_file: str) -> None:
    original = Sigstruct.from_bytes((FIXTURES / sigstruct_file).read_bytes())
    rebuilt = build_sigstruct(
        enclavehash=original.enclavehash,
        attributes_flags=original.attributes_flags,
        attributes_xfrm=original.attributes_xfrm,
        attributemask_flags=original.attributemask_flags,
        attributemask_xfrm=original.attributemask_xfrm,
        date_raw=original.date,
        isvprodid=original.isvprodid,
        isvsvn=original.isvsvn,
        vendor=original.vendor,
        swdefined=original.swdefined,
        miscselect=original.miscselect,
        miscmask=original.miscmask,
    )
    key_file = SDK_SAMPLE_KEY if "fortanix" in sigstruct_file else KERNEL_KEY
    assert sign_sigstruct(rebuilt, load_private_key(key_file)) == original


# ---- the Signer protocol ------------------------------------------------------------------------------


@dataclasses.dataclass
class CannedSigner:
    """An 'external' signer that returns a fixed big-endian signature, like an HSM or openssl pkeyutl."""

    modulus: int
    signature: bytes

    def sign_pkcs1_sha256(self, message: bytes) -> bytes:
        return self.signature


@pytest.mark.fixtures
@needs_fixtures
def test_key_signer_returns_big_endian_signature() -> None:
    sigstruct = Sigstruct.from_bytes((FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes())
    signer = KeySigner(load_private_key(SDK_SAMPLE_KEY))
    assert isinstance(signer, Signer)
    assert (
        signer.sign_pkcs1_sha256(sigstruct.signed_bytes())
        == (FIXTURES / "fortanix/sig1.sigstruct.sha256.sig").read_bytes()
    )
    assert signer.modulus == int.from_bytes((FIXTURES / "fortanix/sig1.key_n.bin").read_bytes(), "little")
    assert "key=" not in repr(signer)


@pytest.mark.fixtures
@needs_fixtures
def test_external_big_endian_signature_is_attached() -> None:
    original = (FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes()
    parsed = Sigstruct.from_bytes(original)
    stripped = dataclasses.replace(parsed, modulus=0, signature=0, q1=0, q2=0)
    signer = CannedSigner(parsed.modulus, (FIXTURES / "fortanix/sig1.sigstruct.sha256.sig").read_bytes())
    assert sign_sigstruct_with(stripped, signer).to_bytes() == original


@pytest.mark.fixtures
@needs_fixtures
def test_prehashed_vector_matches_key() -> None:
    # sig1.sig.bin is the little-endian signature of the pre-hashed value sig1.data.bin.
    key = load_private_key(SDK_SAMPLE_KEY)
    digest = (FIXTURES / "fortanix/sig1.data.bin").read_bytes()
    big_endian = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    assert big_endian[::-1] == (FIXTURES / "fortanix/sig1.sig.bin").read_bytes()


@pytest.mark.fixtures
@needs_fixtures
def test_bad_external_signatures_are_refused() -> None:
    parsed = Sigstruct.from_bytes((FIXTURES / "fortanix/sig1.sigstruct.bin").read_bytes())
    other = dataclasses.replace(parsed, isvsvn=1)
    good = (FIXTURES / "fortanix/sig1.sigstruct.sha256.sig").read_bytes()
    with pytest.raises(SignatureError, match="does not verify"):
        sign_sigstruct_with(other, CannedSigner(parsed.modulus, good))
    with pytest.raises(SignatureError, match="returned 383 bytes"):
        sign_sigstruct_with(parsed, CannedSigner(parsed.modulus, good[1:]))
    with pytest.raises(SignatureError, match="not below"):
        sign_sigstruct_with(parsed, CannedSigner(parsed.modulus, b"\xff" * 384))
    with pytest.raises(SigningKeyError, match="2048 bits"):
        sign_sigstruct_with(parsed, CannedSigner((1 << 2047) + 1, good))


def test_sign_and_verify_with_generated_key(sgx_key: rsa.RSAPrivateKey) -> None:
    unsigned = build_sigstruct(
        enclavehash=bytes(32),
        attributes_flags=0x4,
        attributes_xfrm=0x3,
        attributemask_flags=0xFFFFFFFFFFFFFFFF,
        attributemask_xfrm=0xFFFFFFFFFFF9FF1B,
        date_raw=0x20240102,
    )
    signed = sign_sigstruct(unsigned, sgx_key)
    assert signed.check().valid
    assert sign_sigstruct(unsigned, sgx_key) == signed  # deterministic
    assert signed.mrsigner == mrsigner_of_modulus(sgx_key.public_key().public_numbers().n)


# ---- key checks -----------------------------------------------------------------------------------------


def test_rsa2048_key_is_refused(tmp_path: Path, rsa2048_e65537: rsa.RSAPrivateKey) -> None:
    path = _write_pem(tmp_path / "key.pem", rsa2048_e65537)
    with pytest.raises(SigningKeyError) as raised:
        load_private_key(path)
    assert (
        str(raised.value)
        == f"{path} is an RSA-2048 key with exponent 65537; SGX needs RSA-3072 with exponent 3"
    )
    with pytest.raises(SigningKeyError, match="RSA-2048 key with exponent 65537"):
        sign_sigstruct(Sigstruct(), rsa2048_e65537)


def test_rsa3072_e65537_key_is_refused(tmp_path: Path, rsa3072_e65537: rsa.RSAPrivateKey) -> None:
    path = _write_pem(tmp_path / "key.pem", rsa3072_e65537)
    with pytest.raises(
        SigningKeyError, match="is an RSA-3072 key with exponent 65537; SGX needs RSA-3072 with exponent 3"
    ):
        load_private_key(path)
    with pytest.raises(SigningKeyError, match="exponent 65537"):
        check_signing_key(rsa3072_e65537.public_key(), name="pub.pem")


def test_ec_key_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = _write_pem(tmp_path / "ec.pem", key)
    with pytest.raises(SigningKeyError, match=r"ec.pem is an EC key \(curve secp256r1\); SGX needs RSA-3072"):
        load_private_key(path)
    public = tmp_path / "ec.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(SigningKeyError, match="is an EC key"):
        load_public_key(public)
    assert describe_key(object()) == "not a key (a object object)"


def test_check_accepts_sgx_keys(sgx_key: rsa.RSAPrivateKey) -> None:
    check_signing_key(sgx_key)
    check_signing_key(sgx_key.public_key())
    assert describe_key(sgx_key) == "an RSA-3072 key with exponent 3"


def test_unreadable_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError, match="not a PEM or DER private key"):
        load_private_key(garbage)
    with pytest.raises(SigningKeyError, match="garbage.pem"):
        load_public_key(garbage)
    binary = tmp_path / "random.bin"
    binary.write_bytes(os.urandom(100))
    with pytest.raises(SigningKeyError):
        load_private_key(binary)
    with pytest.raises(SigningKeyError):
        load_public_key(binary)


@pytest.mark.fixtures
@needs_fixtures
def test_pkcs1_pem_loads() -> None:
    assert SDK_SAMPLE_KEY.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    key = load_private_key(SDK_SAMPLE_KEY, passphrase=b"ignored for an unencrypted key")
    assert mrsigner_of_modulus(key.public_key().public_numbers().n) == SDK_SAMPLE_MRSIGNER


# ---- encrypted keys ------------------------------------------------------------------------------------------


def test_encrypted_pkcs8_right_and_wrong_passphrase(tmp_path: Path, sgx_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "enc.pem"
    write_private_key(sgx_key, path, passphrase=PASSPHRASE)
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    modulus = sgx_key.public_key().public_numbers().n

    assert load_private_key(path, passphrase=PASSPHRASE).public_key().public_numbers().n == modulus

    with pytest.raises(SigningKeyError) as raised:
        load_private_key(path, passphrase=b"wrong horse")
    assert str(raised.value) == f"wrong passphrase for {path}"
    assert b"wrong horse" not in str(raised.value).encode()
    assert raised.value.__cause__ is None

    with pytest.raises(SigningKeyError, match="encrypted; a passphrase is needed"):
        load_private_key(path)

    calls: list[int] = []

    def ask() -> bytes:
        calls.append(1)
        return PASSPHRASE

    assert load_private_key(path, passphrase_callback=ask).public_key().public_numbers().n == modulus
    assert calls == [1]
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        load_private_key(path, passphrase_callback=lambda: "nope")
    with pytest.raises(SigningKeyError, match="a passphrase is needed"):
        load_private_key(path, passphrase_callback=lambda: None)
    assert load_public_key(path, passphrase=PASSPHRASE).public_numbers().n == modulus


def test_encrypted_traditional_pkcs1_pem(tmp_path: Path, sgx_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "enc-pkcs1.pem"
    path.write_bytes(
        sgx_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(PASSPHRASE),
        )
    )
    assert b"Proc-Type: 4,ENCRYPTED" in path.read_bytes()
    assert load_private_key(path, passphrase=PASSPHRASE).key_size == 3072
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        load_private_key(path, passphrase=b"bad")


def test_callback_not_called_for_unencrypted_key(tmp_path: Path, sgx_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "plain.pem"
    write_private_key(sgx_key, path)

    def ask() -> bytes:
        raise AssertionError("the callback must not be called for an unencrypted key")

    load_private_key(path, passphrase_callback=ask)


# ---- writing keys -----------------------------------------------------------------------------------------------


def test_write_private_key_mode_0600_and_no_overwrite(tmp_path: Path, sgx_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "new.pem"
    write_private_key(sgx_key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_private_key(path).private_numbers() == sgx_key.private_numbers()

    before = path.read_bytes()
    with pytest.raises(SigningKeyError, match=f"{path} exists; refusing to overwrite"):
        write_private_key(sgx_key, path, passphrase=PASSPHRASE)
    assert path.read_bytes() == before


def test_write_private_key_into_missing_directory(tmp_path: Path, sgx_key: rsa.RSAPrivateKey) -> None:
    from core.errors import WriteError

    with pytest.raises(WriteError, match="cannot create"):
        write_private_key(sgx_key, tmp_path / "no" / "such" / "dir.pem")


# ---- public keys --------------------------------------------------------------------------------------------------


def test_load_public_key_formats(tmp_path: Path, sgx_key: rsa.RSAPrivateKey) -> None:
    modulus = sgx_key.public_key().public_numbers().n
    public = sgx_key.public_key()
    certificate = _self_signed_certificate(sgx_key)
    files = {
        "spki.pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pkcs1-public.pem": public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "spki.der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "cert.pem": certificate.public_bytes(serialization.Encoding.PEM),
        "cert.der": certificate.public_bytes(serialization.Encoding.DER),
        "private.pem": sgx_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "private.der": sgx_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert load_public_key(path).public_numbers().n == modulus, name


def test_load_public_key_refuses_wrong_key(tmp_path: Path, rsa2048_e65537: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "cert.pem"
    path.write_bytes(_self_signed_certificate(rsa2048_e65537).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SigningKeyError, match="cert.pem is an RSA-2048 key with exponent 65537"):
        load_public_key(path)


# ---- the debug key ----------------------------------------------------------------------------------------------


def test_debug_key_is_sgx_key_and_matches_published_mrsigner() -> None:
    key = load_debug_key()
    assert key.key_size == 3072
    assert key.public_key().public_numbers().e == 3
    published = DEBUG_KEY_MRSIGNER_PATH.read_text().splitlines()
    assert published[0] == debug_key_mrsigner()
    assert "debug-only" in published[1]
    assert b"DEBUG-ONLY" in DEBUG_KEY_PATH.read_bytes()
    assert is_debug_key(key.public_key().public_numbers().n)
    assert not is_debug_key(12345)


@pytest.mark.fixtures
@needs_fixtures
def test_fixture_keys_are_not_the_debug_key() -> None:
    assert not is_debug_key(load_private_key(SDK_SAMPLE_KEY).public_key().public_numbers().n)


def test_mrsigner_of_modulus_rejects_oversized() -> None:
    with pytest.raises(SigningKeyError):
        mrsigner_of_modulus(1 << 3072)
    with pytest.raises(SigningKeyError):
        mrsigner_of_modulus(0)
