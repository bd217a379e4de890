"""Sign with an RSA-3072 (e=3) key held in a PKCS#11 token: an HSM, a smart card, SoftHSM2.

:class:`Pkcs11Signer` is a :class:`~core.signing.Signer`, so everything that signs through
that protocol (ensign binaries, Intel SDK re-signing, the TUI) can use a token key. It opens
one session on :meth:`Pkcs11Signer.open` and closes it on :meth:`~Pkcs11Signer.close` (or at
the end of a ``with`` block). The key never leaves the token; ensign reads only its public
modulus and exponent and asks the token for ``CKM_SHA256_RSA_PKCS`` signatures (or
``CKM_RSA_PKCS`` over the DigestInfo, for tokens that only do raw PKCS#1).

Tokens and keys are chosen by label, serial, slot or id, from options or from an RFC 7512
``pkcs11:`` URI (:func:`parse_pkcs11_uri`). PINs come from a file, the URI, or a callback the
caller supplies (the CLI prompts without echo); this module never prompts, never prints, and
never puts a PIN into a message, an exception or a ``repr``.

The PKCS#11 binding is the optional dependency python-pkcs11 (``pip install 'ensign[pkcs11]'``);
it is imported only when a token is used, and its absence is reported as a
:class:`~core.errors.Pkcs11Error` that says how to install it. Every token problem is a
``Pkcs11Error``; a key SGX cannot use is a :class:`~core.errors.SigningKeyError`.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from core.errors import Pkcs11Error, SigningKeyError
from core.sigstruct import MODULUS_SIZE, SGX_EXPONENT, SHA256_DIGEST_INFO

__all__ = [
    "INSTALL_HINT",
    "KeySelection",
    "Pkcs11Signer",
    "Pkcs11Uri",
    "PinCallback",
    "TokenInfo",
    "TokenKey",
    "generate_token_key",
    "list_tokens",
    "parse_key_id",
    "parse_pkcs11_uri",
    "public_key_pem",
    "read_pin_file",
    "resolve_module",
    "selection_from",
]

INSTALL_HINT = "PKCS#11 support needs the python-pkcs11 package: pip install 'ensign[pkcs11]'"
"""What to tell a user whose Python lacks the optional PKCS#11 binding."""

SGX_KEY_BITS = MODULUS_SIZE * 8

PinCallback = Callable[[str], "str | bytes | None"]
"""Asked for a token's user PIN with a description of the token; returns it, or None to give up."""

# Where PKCS#11 modules usually live, for a ``module-name`` in a URI (RFC 7512 §2.3).
MODULE_DIRECTORIES: tuple[str, ...] = (
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/softhsm",
    "/usr/lib/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib/softhsm",
    "/usr/local/lib",
)


def _pkcs11() -> ModuleType:
    """Import python-pkcs11 lazily.

    Raises:
        Pkcs11Error: it is not installed (the message says how to install it).
    """
    try:
        import pkcs11
    except ImportError as error:
        raise Pkcs11Error(f"{INSTALL_HINT} ({error})", title="PKCS#11 support not installed") from None
    return pkcs11


# --------------------------------------------------------------------------------------------
# RFC 7512 URIs
# --------------------------------------------------------------------------------------------

_PATH_ATTRIBUTES = frozenset({
    "token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
    "library-version", "object", "type", "id", "slot-manufacturer", "slot-description", "slot-id",
})
_QUERY_ATTRIBUTES = frozenset({"pin-source", "pin-value", "module-name", "module-path"})


@dataclass(frozen=True, slots=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 ``pkcs11:`` URI that select a signing key.

    Library and slot descriptions are accepted and ignored; ``type`` must be ``private`` when
    given. The PIN value is kept out of ``repr``.
    """

    token: str | None = None  # token label (CKA_LABEL of the token, "token=")
    manufacturer: str | None = None  # token manufacturer ("manufacturer=")
    serial: str | None = None  # token serial number ("serial=")
    model: str | None = None  # token model ("model=")
    slot_id: int | None = None  # PKCS#11 slot id ("slot-id=")
    object: str | None = None  # key label (CKA_LABEL, "object=")
    id: bytes | None = None  # key id (CKA_ID, "id=", percent-encoded bytes)
    type: str | None = None  # object class ("type="): only "private" selects a signing key
    module_path: str | None = None  # PKCS#11 module file ("module-path=")
    module_name: str | None = None  # module name without directory and suffix ("module-name=")
    pin_source: str | None = None  # where to read the PIN ("pin-source=", a file)
    pin_value: str | None = field(default=None, repr=False)  # the PIN itself ("pin-value=")


def parse_pkcs11_uri(text: str) -> Pkcs11Uri:
    """Parse a ``pkcs11:`` URI (RFC 7512).

    Args:
        text: e.g. ``pkcs11:token=prod;object=sgx-signer;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so``.

    Returns:
        The :class:`Pkcs11Uri`.

    Raises:
        Pkcs11Error: not a pkcs11 URI, an unknown or repeated attribute, a bad slot-id, or a
            ``type`` other than ``private``. The message never repeats a PIN.
    """
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() != "pkcs11":
        raise Pkcs11Error("a PKCS#11 URI starts with 'pkcs11:' (RFC 7512)")
    path, _, query = rest.partition("?")
    values: dict[str, str] = {}
    raw_id: bytes | None = None
    for part, separator, allowed in ((path, ";", _PATH_ATTRIBUTES), (query, "&", _QUERY_ATTRIBUTES)):
        for item in filter(None, part.split(separator)):
            name, equals, value = item.partition("=")
            name = name.strip().lower()
            if not equals:
                raise Pkcs11Error(f"PKCS#11 URI: '{name}' has no value (write {name}=...)")
            if name.startswith("x-"):
                continue  # vendor extension: not ours
            if name not in allowed:
                where = "path" if allowed is _PATH_ATTRIBUTES else "query"
                raise Pkcs11Error(f"PKCS#11 URI: unknown {where} attribute '{name}'")
            if name in values:
                raise Pkcs11Error(f"PKCS#11 URI: attribute '{name}' given twice")
            if name == "id":
                raw_id = unquote_to_bytes(value)
            values[name] = unquote(value)
    slot_id = None
    if "slot-id" in values:
        try:
            slot_id = int(values["slot-id"], 10)
        except ValueError:
            raise Pkcs11Error(f"PKCS#11 URI: slot-id must be a decimal number, not '{values['slot-id']}'") from None
    if values.get("type") not in (None, "private"):
        raise Pkcs11Error(f"PKCS#11 URI: type={values['type']} cannot sign; use type=private (or leave it out)")
    return Pkcs11Uri(
        token=values.get("token"), manufacturer=values.get("manufacturer"), serial=values.get("serial"),
        model=values.get("model"), slot_id=slot_id, object=values.get("object"), id=raw_id,
        type=values.get("type"), module_path=values.get("module-path"), module_name=values.get("module-name"),
        pin_source=values.get("pin-source"), pin_value=values.get("pin-value"),
    )


def parse_key_id(text: str) -> bytes:
    """Parse a key id given as hex (``0102``, ``01:02``, ``0x0102``) or percent-encoded (``%01%02``).

    Raises:
        Pkcs11Error: neither form.
    """
    cleaned = text.strip()
    if "%" in cleaned:
        return unquote_to_bytes(cleaned)
    digits = cleaned.removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise Pkcs11Error(f"--pkcs11-key-id: '{text}' is not hex (e.g. 0102) or percent-encoded (%01%02)") from None
    if not value:
        raise Pkcs11Error("--pkcs11-key-id: empty id")
    return value


def resolve_module(name: str) -> str:
    """Find the file of a PKCS#11 module given by ``module-name`` (RFC 7512 §2.3).

    Args:
        name: e.g. ``softhsm2`` (tries ``libsofthsm2.so`` and ``softhsm2.so`` in the usual places).

    Returns:
        The path.

    Raises:
        Pkcs11Error: not found (the message lists where it looked).
    """
    if "/" in name:
        return name
    for directory in MODULE_DIRECTORIES:
        for candidate in (f"lib{name}.so", f"{name}.so", name):
            path = Path(directory) / candidate
            if path.is_file():
                return str(path)
        matches = sorted(glob.glob(str(Path(directory) / f"lib{name}.so.*")))
        if matches:
            return matches[0]
    raise Pkcs11Error(f"PKCS#11 module '{name}' not found in {', '.join(MODULE_DIRECTORIES)}; "
                      "give its path with --pkcs11-module")


def read_pin_file(path: str | os.PathLike[str]) -> str:
    """Read a PIN from a file (only a trailing newline is removed).

    Raises:
        Pkcs11Error: unreadable or empty file (the PIN is never part of the message).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise Pkcs11Error(f"PIN file {path}: {error.strerror or error}") from None
    pin = data.rstrip(b"\r\n")
    if not pin:
        raise Pkcs11Error(f"PIN file {path} is empty")
    try:
        return pin.decode("utf-8")
    except UnicodeDecodeError:
        raise Pkcs11Error(f"PIN file {path} is not UTF-8 text") from None


def _pin_source_path(source: str) -> str:
    """A file path from a URI ``pin-source`` (``file:/path``, ``file:///path`` or a plain path)."""
    if source.startswith("file://"):
        return source[len("file://"):]
    if source.startswith("file:"):
        return source[len("file:"):]
    if source.startswith("|") or ":" in source.split("/", 1)[0]:
        raise Pkcs11Error("PKCS#11 URI: pin-source must be a file (file:/path); commands are not run")
    return source


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySelection:
    """Which module, token and key to use, merged from options and a URI."""

    module: str  # path of the PKCS#11 module (.so)
    token_label: str | None = None  # CKA token label
    token_serial: str | None = None  # token serial number
    slot_id: int | None = None  # slot id
    key_label: str | None = None  # CKA_LABEL of the private key
    key_id: bytes | None = None  # CKA_ID of the private key
    pin_file: str | None = None  # file holding the user PIN
    pin_value: str | None = field(default=None, repr=False)  # the PIN from a URI pin-value

    def describe(self) -> str:
        """``token 'prod' key 'sgx-signer' (id 0102)`` (no PIN)."""
        token = f"token '{self.token_label}'" if self.token_label else (
            f"token serial {self.token_serial}" if self.token_serial else (
                f"slot {self.slot_id}" if self.slot_id is not None else "the token"))
        key = f"key '{self.key_label}'" if self.key_label else "key"
        if self.key_id:
            key += f" (id {self.key_id.hex()})"
        return f"{token} {key}"


def selection_from(
    *,
    module: str | None = None,
    token: str | None = None,
    key_label: str | None = None,
    key_id: str | bytes | None = None,
    pin_file: str | None = None,
    uri: str | None = None,
) -> KeySelection:
    """Merge command-line options and a ``pkcs11:`` URI into one :class:`KeySelection`.

    An option and the URI may name the same thing only if they agree.

    Raises:
        Pkcs11Error: no module, a bad URI, or an option contradicting the URI.
    """
    parsed = parse_pkcs11_uri(uri) if uri else Pkcs11Uri()
    key_id_bytes = parse_key_id(key_id) if isinstance(key_id, str) else key_id

    def merged(option: Any, from_uri: Any, what: str) -> Any:
        if option is not None and from_uri is not None and option != from_uri:
            raise Pkcs11Error(f"{what} is given twice with different values (option and pkcs11: URI)")
        return option if option is not None else from_uri

    uri_module = parsed.module_path or (resolve_module(parsed.module_name) if parsed.module_name else None)
    module_path = merged(module, uri_module, "the PKCS#11 module")
    if not module_path:
        raise Pkcs11Error("no PKCS#11 module: give --pkcs11-module PATH (e.g. /usr/lib/softhsm/libsofthsm2.so) "
                          "or module-path= in the pkcs11: URI")
    pin_from_uri = _pin_source_path(parsed.pin_source) if parsed.pin_source else None
    return KeySelection(
        module=module_path,
        token_label=merged(token, parsed.token, "the token label"),
        token_serial=parsed.serial,
        slot_id=parsed.slot_id,
        key_label=merged(key_label, parsed.object, "the key label"),
        key_id=merged(key_id_bytes, parsed.id, "the key id"),
        pin_file=merged(pin_file, pin_from_uri, "the PIN file"),
        pin_value=parsed.pin_value,
    )


# --------------------------------------------------------------------------------------------
# Library, tokens, sessions
# --------------------------------------------------------------------------------------------


def _load_library(module: str) -> Any:
    """Load (once per process) and initialise a PKCS#11 module.

    Raises:
        Pkcs11Error: python-pkcs11 missing, file missing, or not a PKCS#11 module.
    """
    lib = _pkcs11()
    if not Path(module).exists():
        raise Pkcs11Error(f"PKCS#11 module {module} does not exist")
    try:
        return lib.lib(module)
    except lib.PKCS11Error as error:
        raise Pkcs11Error(f"cannot load PKCS#11 module {module}: {error or type(error).__name__}") from None
    except OSError as error:
        raise Pkcs11Error(f"cannot load PKCS#11 module {module}: {error}") from None


def _error_text(error: BaseException) -> str:
    """Name a python-pkcs11 error (their messages are often empty)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed by :func:`list_tokens`."""

    slot_id: int  # PKCS#11 slot id
    label: str  # token label
    serial: str  # serial number
    manufacturer: str  # manufacturer id
    model: str  # model
    login_required: bool  # CKF_LOGIN_REQUIRED
    keys: tuple[TokenKey, ...] = ()  # RSA keys found (public objects; private ones after login)


@dataclass(frozen=True, slots=True)
class TokenKey:
    """An RSA key in a token."""

    label: str  # CKA_LABEL
    id: bytes  # CKA_ID
    kind: str  # "private" or "public"
    bits: int  # modulus size
    exponent: int | None  # public exponent, when readable
    mrsigner: str | None  # MRSIGNER, for RSA-3072 keys
    modulus: int = field(default=0, repr=False)  # n (0 when the token will not tell)

    @property
    def usable(self) -> bool:
        """RSA-3072 with exponent 3 (what SGX accepts)."""
        return self.bits == SGX_KEY_BITS and self.exponent in (SGX_EXPONENT, None)


def _token_slots(library: Any) -> list[tuple[Any, Any]]:
    """(slot, token) for every slot with an initialised token."""
    pkcs11 = _pkcs11()
    found = []
    for slot in library.get_slots(token_present=True):
        try:
            token = slot.get_token()
        except (pkcs11.TokenNotPresent, pkcs11.TokenNotRecognised):
            continue
        if not token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED:
            continue
        found.append((slot, token))
    return found


def _choose_token(library: Any, selection: KeySelection) -> tuple[Any, Any]:
    """The one (slot, token) the selection names.

    Raises:
        Pkcs11Error: none or several match (the message lists the tokens there are).
    """
    available = _token_slots(library)
    matching = [
        (slot, token) for slot, token in available
        if (selection.token_label is None or token.label == selection.token_label)
        and (selection.token_serial is None or _text(token.serial) == selection.token_serial)
        and (selection.slot_id is None or slot.slot_id == selection.slot_id)
    ]
    labels = ", ".join(f"'{token.label}' (serial {_text(token.serial)}, slot {slot.slot_id})"
                       for slot, token in available) or "none"
    if not matching:
        wanted = selection.describe().split(" key")[0]
        raise Pkcs11Error(f"no PKCS#11 {wanted} in {selection.module}; initialised tokens: {labels}")
    if len(matching) > 1:
        raise Pkcs11Error(f"several PKCS#11 tokens match; name one with --pkcs11-token: {labels}")
    return matching[0]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def _resolve_pin(selection: KeySelection, token: Any, pin_callback: PinCallback | None) -> Any:
    """The PIN to log in with, or None when the token needs no login; PROTECTED_AUTH for PIN pads."""
    pkcs11 = _pkcs11()
    if not token.flags & pkcs11.TokenFlag.LOGIN_REQUIRED:
        return None
    if selection.pin_file:
        return read_pin_file(selection.pin_file)
    if selection.pin_value is not None:
        return selection.pin_value
    if token.flags & pkcs11.TokenFlag.PROTECTED_AUTHENTICATION_PATH:
        return pkcs11.PROTECTED_AUTH
    if pin_callback is not None:
        pin = pin_callback(f"PKCS#11 token '{token.label}'")
        if isinstance(pin, bytes):
            pin = pin.decode("utf-8")
        if pin:
            return pin
    raise Pkcs11Error(f"PKCS#11 token '{token.label}' needs a PIN: give --pkcs11-pin-file FILE "
                      "(or run in a terminal to be asked)", title="PIN needed")


def _open_session(token: Any, pin: Any, *, rw: bool = False) -> Any:
    """Open a session and log in; PIN problems become clear Pkcs11Errors without the PIN."""
    pkcs11 = _pkcs11()
    try:
        return token.open(user_pin=pin, rw=rw)
    except pkcs11.PinIncorrect:
        raise Pkcs11Error(f"wrong PIN for PKCS#11 token '{token.label}'", title="Wrong PIN") from None
    except pkcs11.PinLocked:
        raise Pkcs11Error(f"the PIN of PKCS#11 token '{token.label}' is locked", title="PIN locked") from None
    except (pkcs11.PinLenRange, pkcs11.PinInvalid):
        raise Pkcs11Error(f"the PIN for PKCS#11 token '{token.label}' has an invalid length or characters",
                          title="Wrong PIN") from None
    except pkcs11.PKCS11Error as error:
        raise Pkcs11Error(f"cannot open a session on PKCS#11 token '{token.label}': {_error_text(error)}") from None


def _attribute(obj: Any, attribute: Any) -> Any:
    """Read an attribute, None when the token will not tell."""
    pkcs11 = _pkcs11()
    try:
        return obj[attribute]
    except (pkcs11.AttributeSensitive, pkcs11.AttributeTypeInvalid, pkcs11.FunctionFailed, KeyError):
        return None


def _rsa_objects(session: Any, object_class: Any, label: str | None = None,
                 key_id: bytes | None = None) -> list[Any]:
    pkcs11 = _pkcs11()
    attrs: dict[Any, Any] = {pkcs11.Attribute.CLASS: object_class, pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.RSA}
    if label is not None:
        attrs[pkcs11.Attribute.LABEL] = label
    if key_id is not None:
        attrs[pkcs11.Attribute.ID] = key_id
    return list(session.get_objects(attrs))


def _key_info(obj: Any, kind: str) -> TokenKey:
    from core.sigstruct import mrsigner_of_modulus_bytes

    pkcs11 = _pkcs11()
    modulus_bytes = _attribute(obj, pkcs11.Attribute.MODULUS) or b""
    modulus = int.from_bytes(modulus_bytes, "big")
    exponent_bytes = _attribute(obj, pkcs11.Attribute.PUBLIC_EXPONENT)
    exponent = int.from_bytes(exponent_bytes, "big") if exponent_bytes else None
    mrsigner = mrsigner_of_modulus_bytes(modulus).hex() if modulus.bit_length() == SGX_KEY_BITS else None
    return TokenKey(label=_text(_attribute(obj, pkcs11.Attribute.LABEL) or ""),
                    id=bytes(_attribute(obj, pkcs11.Attribute.ID) or b""), kind=kind,
                    bits=modulus.bit_length(), exponent=exponent, mrsigner=mrsigner, modulus=modulus)


def list_tokens(module: str, *, pin_file: str | None = None, token_label: str | None = None) -> list[TokenInfo]:
    """List the initialised tokens of a module and the RSA keys in them.

    Public key objects are listed without logging in; private keys only when a PIN file is
    given (never prompts).

    Args:
        module: the PKCS#11 module.
        pin_file: a file with the user PIN, to list private keys too.
        token_label: list only this token.

    Returns:
        One :class:`TokenInfo` per token.

    Raises:
        Pkcs11Error: module problems, a wrong PIN.
    """
    pkcs11 = _pkcs11()
    library = _load_library(module)
    result = []
    try:
        for slot, token in _token_slots(library):
            if token_label is not None and token.label != token_label:
                continue
            keys: list[TokenKey] = []
            login = bool(token.flags & pkcs11.TokenFlag.LOGIN_REQUIRED)
            pin = read_pin_file(pin_file) if (pin_file and login) else None
            with _open_session(token, pin) as session:
                keys += [_key_info(obj, "public") for obj in _rsa_objects(session, pkcs11.ObjectClass.PUBLIC_KEY)]
                if pin is not None or not login:
                    keys += [_key_info(obj, "private")
                             for obj in _rsa_objects(session, pkcs11.ObjectClass.PRIVATE_KEY)]
            result.append(TokenInfo(slot_id=slot.slot_id, label=token.label, serial=_text(token.serial),
                                    manufacturer=_text(token.manufacturer_id), model=_text(token.model),
                                    login_required=login, keys=tuple(keys)))
    except pkcs11.PKCS11Error as error:
        raise Pkcs11Error(f"PKCS#11 module {module}: {_error_text(error)}") from None
    return result


# --------------------------------------------------------------------------------------------
# The signer
# --------------------------------------------------------------------------------------------


def public_key_pem(modulus: int) -> bytes:
    """PEM ``PUBLIC KEY`` of an SGX key (e = 3), for ``attach --public-key`` or verification."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.RSAPublicNumbers(SGX_EXPONENT, modulus).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Pkcs11Signer:
    """A :class:`~core.signing.Signer` whose private key stays in a PKCS#11 token.

    Use :meth:`open`; close with :meth:`close` or a ``with`` block. Signing asks the token for
    ``CKM_SHA256_RSA_PKCS``; tokens without it get ``CKM_RSA_PKCS`` over the SHA-256 DigestInfo,
    which yields the same bytes.
    """

    def __init__(self, selection: KeySelection, session: Any, key: Any, modulus: int, token_label: str) -> None:
        self.selection = selection  # what was asked for (no PIN inside)
        self._session = session
        self._key = key
        self._modulus = modulus
        self.token_label = token_label  # label of the token actually used
        self.key_label = _text(_attribute(key, _pkcs11().Attribute.LABEL) or "")  # CKA_LABEL of the key used
        self.key_id = bytes(_attribute(key, _pkcs11().Attribute.ID) or b"")  # CKA_ID of the key used

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.describe()})"

    @classmethod
    def open(cls, selection: KeySelection, *, pin_callback: PinCallback | None = None) -> Pkcs11Signer:
        """Log in to the token and find the signing key.

        Args:
            selection: module, token and key (see :func:`selection_from`).
            pin_callback: asked for the PIN when the selection has none and the token needs one.

        Returns:
            An open signer.

        Raises:
            Pkcs11Error: python-pkcs11 missing, module/token/key not found or ambiguous, wrong PIN.
            SigningKeyError: the key is not RSA-3072 with exponent 3.
        """
        pkcs11 = _pkcs11()
        library = _load_library(selection.module)
        try:
            _slot, token = _choose_token(library, selection)
            pin = _resolve_pin(selection, token, pin_callback)
            session = _open_session(token, pin)
        except pkcs11.PKCS11Error as error:
            raise Pkcs11Error(f"PKCS#11 module {selection.module}: {_error_text(error)}") from None
        try:
            key, modulus = cls._find_key(session, selection, token.label)
            return cls(selection, session, key, modulus, token.label)
        except BaseException:
            session.close()
            raise

    @staticmethod
    def _find_key(session: Any, selection: KeySelection, token_label: str) -> tuple[Any, int]:
        pkcs11 = _pkcs11()
        try:
            candidates = _rsa_objects(session, pkcs11.ObjectClass.PRIVATE_KEY, selection.key_label, selection.key_id)
        except pkcs11.PKCS11Error as error:
            raise Pkcs11Error(f"cannot search PKCS#11 token '{token_label}': {_error_text(error)}") from None
        if len(candidates) != 1:
            present = ", ".join(
                f"'{info.label}' (id {info.id.hex() or '-'}, RSA-{info.bits})"
                for info in (_key_info(obj, "private") for obj in _rsa_objects(session, pkcs11.ObjectClass.PRIVATE_KEY))
            ) or "none"
            if not candidates:
                raise Pkcs11Error(f"no RSA private {selection.describe().split(' ', 2)[-1]} in PKCS#11 token "
                                  f"'{token_label}'; its RSA private keys: {present}")
            raise Pkcs11Error(f"several RSA private keys in PKCS#11 token '{token_label}' match; name one with "
                              f"--pkcs11-key-label or --pkcs11-key-id: {present}")
        key = candidates[0]
        info = _key_info(key, "private")
        name = f"PKCS#11 key '{info.label}' in token '{token_label}'"
        exponent = info.exponent
        if exponent is None:
            # Some tokens hide the exponent on the private key; the public object with the same id tells.
            publics = _rsa_objects(session, pkcs11.ObjectClass.PUBLIC_KEY, key_id=info.id) if info.id else []
            if publics:
                exponent = _key_info(publics[0], "public").exponent
        if info.bits != SGX_KEY_BITS or exponent not in (SGX_EXPONENT, None):
            shown = f"exponent {exponent}" if exponent is not None else "unknown exponent"
            raise SigningKeyError(f"{name} is RSA-{info.bits} with {shown}; SGX needs RSA-3072 with exponent 3")
        modulus = int.from_bytes(_attribute(key, pkcs11.Attribute.MODULUS), "big")
        return key, modulus

    @property
    def modulus(self) -> int:
        """The RSA modulus n."""
        return self._modulus

    @property
    def mrsigner(self) -> str:
        """MRSIGNER of the token key (64 hex digits)."""
        from core.sigstruct import mrsigner_of_modulus_bytes

        return mrsigner_of_modulus_bytes(self._modulus).hex()

    def describe(self) -> str:
        """``PKCS#11 token 'prod' key 'sgx-signer' (id 0102)``."""
        key = f"key '{self.key_label}'" + (f" (id {self.key_id.hex()})" if self.key_id else "")
        return f"PKCS#11 token '{self.token_label}' {key}"

    def sign_pkcs1_sha256(self, message: bytes) -> bytes:
        """Have the token sign ``message`` with PKCS#1 v1.5 / SHA-256.

        Returns:
            The 384-byte big-endian signature.

        Raises:
            Pkcs11Error: the session is closed or the token refused.
        """
        pkcs11 = _pkcs11()
        if self._session is None:
            raise Pkcs11Error("the PKCS#11 session is closed")
        try:
            try:
                signature = self._key.sign(message, mechanism=pkcs11.Mechanism.SHA256_RSA_PKCS)
            except (pkcs11.MechanismInvalid, pkcs11.FunctionNotSupported):
                digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
                signature = self._key.sign(digest_info, mechanism=pkcs11.Mechanism.RSA_PKCS)
        except pkcs11.PKCS11Error as error:
            raise Pkcs11Error(f"{self.describe()} refused to sign: {_error_text(error)}") from None
        return bytes(signature)

    def close(self) -> None:
        """Close the session (logging out); safe to call twice."""
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except Exception:  # a token gone away cannot be closed any more; nothing to do
                pass

    def __enter__(self) -> Pkcs11Signer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Key generation in a token
# --------------------------------------------------------------------------------------------


def generate_token_key(
    selection: KeySelection,
    *,
    label: str,
    key_id: bytes | None = None,
    pin_callback: PinCallback | None = None,
) -> TokenKey:
    """Generate an SGX signing key (RSA-3072, e = 3) inside a token; the private key never leaves it.

    The private key is ``CKA_TOKEN``, ``CKA_PRIVATE``, ``CKA_SENSITIVE``, not extractable and
    may only sign; the public key may only verify.

    Args:
        selection: module and token (its key label/id are ignored: ``label``/``key_id`` name the new key).
        label: CKA_LABEL of the new key pair.
        key_id: CKA_ID; 8 random bytes when None.
        pin_callback: asked for the PIN when the selection has none.

    Returns:
        The new key's :class:`TokenKey` (with its MRSIGNER).

    Raises:
        Pkcs11Error: token problems, or a key with that label or id exists (never replaced).
    """
    pkcs11 = _pkcs11()
    library = _load_library(selection.module)
    key_id = key_id if key_id is not None else secrets.token_bytes(8)
    try:
        _slot, token = _choose_token(library, selection)
        pin = _resolve_pin(selection, token, pin_callback)
        with _open_session(token, pin, rw=True) as session:
            for object_class in (pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.ObjectClass.PUBLIC_KEY):
                if list(session.get_objects({pkcs11.Attribute.CLASS: object_class, pkcs11.Attribute.LABEL: label})):
                    raise Pkcs11Error(f"PKCS#11 token '{token.label}' already has a key labelled '{label}'; "
                                      "refusing to add another")
                if list(session.get_objects({pkcs11.Attribute.CLASS: object_class, pkcs11.Attribute.ID: key_id})):
                    raise Pkcs11Error(f"PKCS#11 token '{token.label}' already has a key with id {key_id.hex()}; "
                                      "refusing to add another")
            capabilities = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY
            public, _private = session.generate_keypair(
                pkcs11.KeyType.RSA, SGX_KEY_BITS, id=key_id, label=label, store=True, capabilities=capabilities,
                public_template={pkcs11.Attribute.PUBLIC_EXPONENT: SGX_EXPONENT.to_bytes(1, "big")},
                private_template={pkcs11.Attribute.SENSITIVE: True, pkcs11.Attribute.EXTRACTABLE: False,
                                  pkcs11.Attribute.PRIVATE: True},
            )
            info = _key_info(public, "private")
    except pkcs11.PKCS11Error as error:
        raise Pkcs11Error(f"cannot generate a key in PKCS#11 {selection.describe().split(' key')[0]}: "
                          f"{_error_text(error)}") from None
    if info.bits != SGX_KEY_BITS or info.exponent != SGX_EXPONENT:
        raise Pkcs11Error(f"the token generated RSA-{info.bits} with exponent {info.exponent}, not RSA-3072 e=3; "
                          f"delete key '{label}' from it")
    return info


def iter_usable_keys(tokens: list[TokenInfo]) -> Iterator[tuple[TokenInfo, TokenKey]]:
    """Every (token, key) pair SGX can use, for listings."""
    for token in tokens:
        for key in token.keys:
            if key.usable:
                yield token, key
