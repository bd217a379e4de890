"""SGX signing keys and signing: load and check RSA-3072/e=3 keys, sign a SIGSTRUCT, the debug key.

Loading (:func:`load_private_key`, :func:`load_public_key`) and signing (:func:`sign_sigstruct`)
are separate steps. Signing goes through the small :class:`Signer` protocol so that an HSM or an
external tool can stand in for a key held in memory (:class:`KeySigner`).

This module must never put passphrases or key material into messages, exceptions or logs, never
print, never import ``textual``/``rich``, and never overwrite an existing key file. Problems with
keys raise :class:`~core.errors.SigningKeyError`; a signature that fails its self-check raises
:class:`~core.errors.SignatureError`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, padding, rsa, x448, x25519

from core.errors import SignatureError, SigningKeyError, WriteError
from core.sigstruct import MODULUS_SIZE, SGX_EXPONENT, Sigstruct, mrsigner_of_modulus_bytes

__all__ = [
    "DEBUG_KEY_MRSIGNER_PATH",
    "DEBUG_KEY_PATH",
    "KeySigner",
    "Signer",
    "check_signing_key",
    "debug_key_mrsigner",
    "describe_key",
    "generate_key",
    "is_debug_key",
    "load_debug_key",
    "load_private_key",
    "load_public_key",
    "mrsigner_of_modulus",
    "sign_sigstruct",
    "sign_sigstruct_with",
    "write_private_key",
]

SGX_KEY_BITS = MODULUS_SIZE * 8
"""RSA modulus size SGX requires: 3072 bits."""

DEBUG_KEY_PATH = Path(__file__).resolve().parent / "data" / "debug_key.pem"
"""ensign's published debug-only signing key (RSA-3072, e=3). Anyone can sign with it."""

DEBUG_KEY_MRSIGNER_PATH = DEBUG_KEY_PATH.with_name("DEBUG_KEY.txt")
"""Text file whose first line is the MRSIGNER of :data:`DEBUG_KEY_PATH`."""

PassphraseCallback = Callable[[], bytes | str | None]
"""Asks the user for a passphrase; returns it, or None/empty when the user gives up."""


# --------------------------------------------------------------------------------------------
# Describing and checking keys
# --------------------------------------------------------------------------------------------


def describe_key(key: object) -> str:
    """Say what a key is, without any key material.

    Args:
        key: a ``cryptography`` key object (private or public).

    Returns:
        e.g. ``"an RSA-3072 key with exponent 3"``, ``"an EC key (curve secp256r1)"``.
    """
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        return f"an RSA-{public.key_size} key with exponent {public.public_numbers().e}"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"an EC key (curve {key.curve.name})"
    if isinstance(key, dsa.DSAPrivateKey | dsa.DSAPublicKey):
        return f"a DSA-{key.key_size} key"
    for kind, name in (
        ((ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey), "an Ed25519 key"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "an Ed448 key"),
        ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "an X25519 key"),
        ((x448.X448PrivateKey, x448.X448PublicKey), "an X448 key"),
        ((dh.DHPrivateKey, dh.DHPublicKey), "a Diffie-Hellman key"),
    ):
        if isinstance(key, kind):
            return name
    return f"not a key (a {type(key).__name__} object)"


def check_signing_key(key: object, *, name: str = "the key") -> None:
    """Make sure a key can sign (or verify) SGX enclaves: RSA-3072 with public exponent 3.

    Args:
        key: a ``cryptography`` private or public key.
        name: what to call the key in the message (usually its file name).

    Raises:
        SigningKeyError: the key is anything else, e.g. "key.pem is an RSA-2048 key with exponent
            65537; SGX needs RSA-3072 with exponent 3".
    """
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        if public.key_size == SGX_KEY_BITS and public.public_numbers().e == SGX_EXPONENT:
            return
    raise SigningKeyError(f"{name} is {describe_key(key)}; SGX needs RSA-3072 with exponent 3")


def mrsigner_of_modulus(modulus: int) -> str:
    """MRSIGNER of an RSA-3072 modulus: SHA-256 of its 384 little-endian bytes (SPEC §2.4).

    Args:
        modulus: n as an integer.

    Returns:
        64 lowercase hex digits.

    Raises:
        SigningKeyError: the modulus is zero or does not fit in 384 bytes.
    """
    if not 0 < modulus < 1 << SGX_KEY_BITS:
        raise SigningKeyError(f"a modulus of {modulus.bit_length()} bits has no MRSIGNER; SGX needs RSA-3072")
    return mrsigner_of_modulus_bytes(modulus).hex()


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _read_key_file(path: Path) -> bytes:
    """Read a key file, turning OS errors into SigningKeyError."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise SigningKeyError(f"cannot read {path}: {e.strerror or e}") from e


def _passphrase_bytes(value: bytes | str | None) -> bytes | None:
    """Normalise a passphrase (str is UTF-8 encoded); empty means none."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    return value or None


def _deserialize_private(data: bytes, password: bytes | None) -> object:
    """Parse PEM or DER private key bytes; lets cryptography's errors through."""
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, password=password)
    return serialization.load_der_private_key(data, password=password)


def _load_private_key_object(
    path: Path,
    data: bytes,
    passphrase: bytes | None,
    passphrase_callback: PassphraseCallback | None,
) -> object:
    """Parse a private key of any type, asking for a passphrase only when it is encrypted.

    Raises:
        SigningKeyError: unreadable, encrypted without a passphrase, or wrong passphrase.
    """
    try:
        return _deserialize_private(data, None)
    except TypeError:
        pass  # encrypted: a passphrase is needed
    except (ValueError, UnsupportedAlgorithm) as e:
        raise SigningKeyError(f"{path} is not a PEM or DER private key ensign can read") from e
    if passphrase is None and passphrase_callback is not None:
        passphrase = _passphrase_bytes(passphrase_callback())
    if passphrase is None:
        raise SigningKeyError(f"{path} is encrypted; a passphrase is needed", title="Passphrase needed")
    try:
        return _deserialize_private(data, passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Deliberately no chained detail: cryptography's text is generic and nothing in it helps.
        raise SigningKeyError(f"wrong passphrase for {path}", title="Wrong passphrase") from None


def load_private_key(
    path: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    passphrase_callback: PassphraseCallback | None = None,
) -> rsa.RSAPrivateKey:
    """Load an SGX signing key from a PEM (PKCS#1 or PKCS#8, encrypted or not) or DER file.

    Args:
        path: the key file.
        passphrase: passphrase for an encrypted key (ignored for an unencrypted one).
        passphrase_callback: called (once) only when the key is encrypted and ``passphrase`` is
            None; returns the passphrase, or None/empty to give up.

    Returns:
        The RSA-3072, e=3 private key.

    Raises:
        SigningKeyError: unreadable file, not a private key, encrypted without a passphrase, wrong
            passphrase, or a key SGX cannot use (the message says what it is).
    """
    path = Path(path)
    key = _load_private_key_object(path, _read_key_file(path), passphrase, passphrase_callback)
    check_signing_key(key, name=str(path))
    assert isinstance(key, rsa.RSAPrivateKey)  # check_signing_key guarantees it
    return key


def load_public_key(
    path: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    passphrase_callback: PassphraseCallback | None = None,
) -> rsa.RSAPublicKey:
    """Load an SGX verification key: a public key, an X.509 certificate, or a private key's public half.

    Accepts PEM ``PUBLIC KEY`` / ``RSA PUBLIC KEY``, PEM or DER certificates, DER public keys, and
    anything :func:`load_private_key` reads.

    Args:
        path: the file.
        passphrase: passphrase, if the file is an encrypted private key.
        passphrase_callback: as for :func:`load_private_key`.

    Returns:
        The RSA-3072, e=3 public key.

    Raises:
        SigningKeyError: unreadable, not a key or certificate, or a key SGX cannot use.
    """
    path = Path(path)
    data = _read_key_file(path)
    key: object
    if b"-----BEGIN" in data:
        try:
            if b"CERTIFICATE-----" in data:
                key = x509.load_pem_x509_certificate(data).public_key()
            elif b"PUBLIC KEY-----" in data:
                key = serialization.load_pem_public_key(data)
            elif b"PRIVATE KEY-----" in data:
                key = _load_private_key_object(path, data, passphrase, passphrase_callback).public_key()  # type: ignore[attr-defined]
            else:
                raise SigningKeyError(f"{path} holds no PEM public key, certificate or private key")
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise SigningKeyError(
                f"{path} is not a PEM public key, certificate or private key ensign can read"
            ) from e
    else:
        key = _load_der_public(path, data, passphrase, passphrase_callback)
    check_signing_key(key, name=str(path))
    assert isinstance(key, rsa.RSAPublicKey)  # check_signing_key guarantees it
    return key


def _load_der_public(
    path: Path,
    data: bytes,
    passphrase: bytes | None,
    passphrase_callback: PassphraseCallback | None,
) -> object:
    """Try DER certificate, DER public key, then DER private key."""
    try:
        return x509.load_der_x509_certificate(data).public_key()
    except ValueError:
        pass
    try:
        return serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        private = _load_private_key_object(path, data, passphrase, passphrase_callback)
    except SigningKeyError as e:
        raise SigningKeyError(
            f"{path} is not a public key, certificate or private key ensign can read"
        ) from e
    return private.public_key()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Signing
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Signer(Protocol):
    """Anything that can make an SGX signature: a key in memory, an HSM, an external command.

    ``modulus`` is the RSA-3072 modulus n; ``sign_pkcs1_sha256`` returns the RSASSA-PKCS1-v1_5
    SHA-256 signature of ``message`` as the usual 384 big-endian bytes (what ``openssl pkeyutl``
    or PKCS#11 ``CKM_SHA256_RSA_PKCS`` return). The SIGSTRUCT's byte reversal happens in
    :func:`sign_sigstruct_with`, not in the signer.
    """

    @property
    def modulus(self) -> int:
        """The RSA modulus n."""
        ...

    def sign_pkcs1_sha256(self, message: bytes) -> bytes:
        """Sign ``message`` (hashing it with SHA-256); return the big-endian signature."""
        ...


@dataclass(frozen=True, slots=True)
class KeySigner:
    """:class:`Signer` for a ``cryptography`` RSA private key held in memory.

    Args:
        key: an RSA-3072, e=3 private key (checked on construction).

    Raises:
        SigningKeyError: the key is not RSA-3072 with exponent 3.
    """

    key: rsa.RSAPrivateKey = field(repr=False)  # never shown, even in reprs

    def __post_init__(self) -> None:
        check_signing_key(self.key)

    @property
    def modulus(self) -> int:
        """The RSA modulus n."""
        return self.key.public_key().public_numbers().n

    def sign_pkcs1_sha256(self, message: bytes) -> bytes:
        """Sign ``message`` with PKCS#1 v1.5 / SHA-256.

        Args:
            message: the bytes to sign (for SGX, the 256 signed SIGSTRUCT bytes).

        Returns:
            The 384-byte big-endian signature.
        """
        return self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def sign_sigstruct_with(sigstruct: Sigstruct, signer: Signer) -> Sigstruct:
    """Sign a SIGSTRUCT with any :class:`Signer` and self-check the result (SPEC §2.10 steps 3–5).

    Args:
        sigstruct: the SIGSTRUCT to sign; any existing signature fields are replaced.
        signer: the signer.

    Returns:
        A new :class:`Sigstruct` with MODULUS, EXPONENT 3, SIGNATURE (little-endian), Q1 and Q2.

    Raises:
        SigningKeyError: the signer's modulus is not 3072 bits.
        SignatureError: the signer returned something that is not a valid signature over the
            SIGSTRUCT's signed bytes under its modulus.
    """
    modulus = signer.modulus
    if modulus.bit_length() != SGX_KEY_BITS:
        raise SigningKeyError(
            f"the signer's modulus is {modulus.bit_length()} bits; SGX needs RSA-3072 with exponent 3"
        )
    signature = signer.sign_pkcs1_sha256(sigstruct.signed_bytes())
    if len(signature) != MODULUS_SIZE:
        raise SignatureError(
            f"the signer returned {len(signature)} bytes; an RSA-3072 signature is {MODULUS_SIZE}"
        )
    signature_value = int.from_bytes(signature, "big")
    if signature_value >= modulus:
        raise SignatureError("the signer returned a signature that is not below its modulus")
    signed = sigstruct.with_signature(modulus, signature_value)
    if not signed.verify_signature():
        raise SignatureError(
            "the signature does not verify with exponent 3 (wrong key for this modulus, or not PKCS#1 v1.5 SHA-256)"
        )
    return signed


def sign_sigstruct(sigstruct: Sigstruct, key: rsa.RSAPrivateKey) -> Sigstruct:
    """Sign a SIGSTRUCT with an RSA-3072, e=3 private key.

    Args:
        sigstruct: the SIGSTRUCT to sign.
        key: the private key (see :func:`load_private_key`).

    Returns:
        The signed :class:`Sigstruct`; deterministic for a given key and fields.

    Raises:
        SigningKeyError: the key is not RSA-3072 with exponent 3.
        SignatureError: the self-check failed.
    """
    return sign_sigstruct_with(sigstruct, KeySigner(key))


# --------------------------------------------------------------------------------------------
# Making keys
# --------------------------------------------------------------------------------------------


def generate_key() -> rsa.RSAPrivateKey:
    """Generate a new SGX signing key (RSA-3072, e=3). Takes about a second.

    Returns:
        The private key.
    """
    return rsa.generate_private_key(public_exponent=SGX_EXPONENT, key_size=SGX_KEY_BITS)


def write_private_key(
    key: rsa.RSAPrivateKey, path: str | os.PathLike[str], *, passphrase: bytes | None = None
) -> None:
    """Write a private key as PEM PKCS#8 to a new file with mode 0600.

    The file is created with ``O_CREAT | O_EXCL`` and mode 0600 in the same call, so it is never
    readable by others and an existing file is never replaced.

    Args:
        key: the private key.
        path: the new file.
        passphrase: encrypt the PEM with this passphrase (best available PKCS#8 encryption).

    Raises:
        SigningKeyError: ``path`` exists ("OUT exists; refusing to overwrite").
        WriteError: the file could not be created or written (a partial file is removed).
    """
    path = Path(path)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} exists; refusing to overwrite") from None
    except OSError as e:
        raise WriteError(f"cannot create {path}: {e.strerror or e}") from e
    try:
        os.fchmod(descriptor, 0o600)  # the umask can only remove bits, but be exact anyway
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(pem)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as e:
        path.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from e


# --------------------------------------------------------------------------------------------
# The debug key
# --------------------------------------------------------------------------------------------


@functools.cache
def load_debug_key() -> rsa.RSAPrivateKey:
    """Load ensign's built-in debug key (published, so for debug enclaves only).

    Returns:
        The RSA-3072, e=3 private key from :data:`DEBUG_KEY_PATH`.

    Raises:
        SigningKeyError: the packaged key file is missing or damaged.
    """
    return load_private_key(DEBUG_KEY_PATH)


def is_debug_key(modulus: int) -> bool:
    """Tell whether a modulus is that of ensign's built-in debug key.

    Args:
        modulus: an RSA modulus (e.g. ``Sigstruct.modulus``).

    Returns:
        True for the debug key's modulus.
    """
    return modulus == load_debug_key().public_key().public_numbers().n


def debug_key_mrsigner() -> str:
    """MRSIGNER of the built-in debug key, 64 hex digits."""
    return mrsigner_of_modulus(load_debug_key().public_key().public_numbers().n)
