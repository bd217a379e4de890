"""The sign dialog and the key generator.

:class:`SignDialog` offers four ways, as ``ensign sign``/``attach`` do: a key file (passphrase
masked), a PKCS#11 token (module, token and key by label/id or a ``pkcs11:`` URI; PIN masked or
from a file), exporting what an offline signer must sign, and attaching the signatures made
offline. It shows exactly what will be written and returns a request only on confirmation; it
refuses production with ensign's public debug key and says why. A key file is unlocked, or a
token logged in to, in a worker when the user confirms; passphrase and PIN are read from their
fields at that moment and never stored, logged or put in a reactive. :class:`KeygenDialog`
creates a new RSA-3072 (e=3) key file. Neither dialog writes the enclave: the main screen does,
in a worker.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, replace
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static, Switch

from core import pkcs11
from core.enclave import MeasuredPair, sigstruct_template
from core.errors import EnsignError, ParamError, SigningKeyError
from core.params import Params
from core.signing import (
    KeySigner,
    Signer,
    debug_key_mrsigner,
    generate_key,
    is_debug_key,
    load_debug_key,
    load_private_key,
    load_public_key,
    mrsigner_of_modulus,
    write_private_key,
)
from core.sigstruct import attribute_flag_names, xfrm_names
from tui.screens.document import EnclaveDocument, display_path
from tui.screens.files import FileDialog
from tui.widgets.params_form import SOURCE_EDITED

DEBUG_KEY_REFUSAL = (
    "Production with the built-in debug key is refused: its private key is published with ensign, "
    "so anyone could sign enclaves that verify as yours. Choose your own key or create one (New key…)."
)


@dataclass(frozen=True, slots=True)
class SignRequest:
    """What the user confirmed in the sign dialog (key file or PKCS#11 token)."""

    params: Params  # the parameters to sign with (production and key as chosen in the dialog)
    signer: Signer  # the loaded key, or an open PKCS#11 signer (the main screen closes it)
    date: _dt.date  # SIGSTRUCT DATE
    output: str | None  # None: sign in place
    debug_key: bool  # the signer is ensign's public debug key


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """Export what an offline signer must sign; nothing is written to the enclave."""

    params: Params  # the parameters the SIGSTRUCTs are built from
    date: _dt.date  # SIGSTRUCT DATE (attach must use the same one)
    path: str  # FILE: both parts; FILE.sgx1, FILE.edmm and FILE.json are written next to it
    digest: bool  # True: the SHA-256 of each part (oesign digest), else the 256 signed bytes


@dataclass(frozen=True, slots=True)
class AttachRequest:
    """Attach signatures made offline to the SIGSTRUCTs of ``params``."""

    params: Params  # the parameters of the export
    date: _dt.date | None  # SIGSTRUCT DATE; None: the date the export records
    public_key: str  # the signer's public key (PEM, certificate)
    signatures: tuple[str, ...]  # signature files (SGX1 and EDMM, any order, either byte order)
    signing_data: str | None  # the export, so a mismatch can be explained
    output: str | None  # None: in place


DialogResult = SignRequest | ExportRequest | AttachRequest
"""What :class:`SignDialog` returns on confirmation."""

METHOD_KEY = "key"
METHOD_PKCS11 = "pkcs11"
METHOD_EXPORT = "export"
METHOD_ATTACH = "attach"
METHODS = (METHOD_KEY, METHOD_PKCS11, METHOD_EXPORT, METHOD_ATTACH)
CONFIRM_LABELS = {METHOD_KEY: "Sign", METHOD_PKCS11: "Sign", METHOD_EXPORT: "Export", METHOD_ATTACH: "Attach"}


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What is known about a key file before it is unlocked."""

    mrsigner: str | None  # None when the key is encrypted or unreadable
    debug: bool | None  # is it the built-in debug key (None: unknown until unlocked)
    note: str  # e.g. "built-in debug key", "encrypted: unlocks when signing", an error


def inspect_key(path: str | None) -> KeyInfo:
    """MRSIGNER and debug-ness of a key file, without a passphrase.

    Args:
        path: the key file, or None for the built-in debug key.
    """
    if not path:
        return KeyInfo(debug_key_mrsigner(), True, "built-in debug key, for debug enclaves only")
    try:
        public = load_public_key(path)
    except SigningKeyError as error:
        if "encrypted" in error.message:
            return KeyInfo(None, None, "encrypted key: MRSIGNER shown once unlocked")
        return KeyInfo(None, None, error.message)
    modulus = public.public_numbers().n
    debug = is_debug_key(modulus)
    return KeyInfo(mrsigner_of_modulus(modulus), debug,
                   "this is the built-in debug key" if debug else os.path.basename(path))


def parse_date(text: str) -> _dt.date:
    """YYYY-MM-DD (or YYYYMMDD).

    Raises:
        ParamError: not a date.
    """
    from tui.cli import parse_date as parse_flag_date  # the one date parser (headless module)

    try:
        parsed = parse_flag_date(text.strip())
    except ParamError:
        raise ParamError(f"date: '{text}' is not a date (use YYYY-MM-DD)") from None
    assert parsed is not None
    return parsed


def unique_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem+suffix``, or ``stem-2``, ``stem-3``… if taken."""
    candidate = directory / f"{stem}{suffix}"
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}{suffix}"
        number += 1
    return candidate


class SignDialog(ModalScreen[DialogResult | None]):
    """Choose how to sign; confirm to get a :class:`SignRequest`, :class:`ExportRequest` or
    :class:`AttachRequest` (see module docstring)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="sign-cancel"),
        Binding("ctrl+s", "confirm", "Confirm", id="sign-confirm"),
    ]

    def __init__(self, document: EnclaveDocument, pair: MeasuredPair, params: Params, today: _dt.date, *,
                 method: str = METHOD_KEY, last_export: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.document = document
        self.pair = pair
        self.params = params
        self.today = today
        self.initial_method = method if method in METHODS else METHOD_KEY
        self.last_export = last_export
        self._key_cache: dict[str | None, KeyInfo] = {}
        self.problem: str | None = None  # why the confirm button is disabled (None: it is enabled)
        self._busy = False

    def compose(self) -> ComposeResult:
        document = self.document
        base = Path.cwd() / document.name if document.bundled else Path(document.path)
        copy_default = display_path(f"{base}.signed")
        export_default = display_path(self.last_export or f"{base}.signing-data")
        method = self.initial_method
        with Vertical(classes="dialog sign-dialog"):
            yield Label(f"Sign {document.name}", classes="dialog-title")
            with VerticalScroll(id="sign-body"):
                with Horizontal(classes="field-row choice-row"):
                    yield Label("method", classes="field-label")
                    with RadioSet(id="sign-method", compact=True):
                        yield RadioButton("key file", id="sign-method-key", value=method == METHOD_KEY)
                        yield RadioButton("PKCS#11 token", id="sign-method-pkcs11", value=method == METHOD_PKCS11)
                        yield RadioButton("export for offline signing", id="sign-method-export",
                                          value=method == METHOD_EXPORT)
                        yield RadioButton("attach", id="sign-method-attach", value=method == METHOD_ATTACH)
                with Vertical(id="sign-key-fields", classes="method-fields"):
                    with Horizontal(classes="field-row"):
                        yield Label("key", classes="field-label")
                        yield Input(self.params.key or "", placeholder="built-in debug key", id="sign-key",
                                    compact=True)
                        yield Button("Browse…", id="sign-browse", compact=True)
                        yield Button("New key…", id="sign-keygen", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("passphrase", classes="field-label")
                        yield Input("", password=True, placeholder="only for an encrypted key",
                                    id="sign-passphrase", compact=True)
                with Vertical(id="sign-pkcs11-fields", classes="method-fields"):
                    for field_id, label, placeholder in (
                        ("uri", "URI", "pkcs11:token=…;object=… (optional; or the fields below)"),
                        ("module", "module", "e.g. /usr/lib/softhsm/libsofthsm2.so"),
                        ("token", "token", "token label (optional when there is one token)"),
                        ("key-label", "key label", "CKA_LABEL (optional when there is one RSA key)"),
                        ("key-id", "key id", "CKA_ID in hex (optional)"),
                        ("pin-file", "PIN file", "optional: a file holding the PIN"),
                    ):
                        with Horizontal(classes="field-row"):
                            yield Label(label, classes="field-label")
                            yield Input("", placeholder=placeholder, id=f"sign-pkcs11-{field_id}", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("PIN", classes="field-label")
                        yield Input("", password=True, placeholder="asked for when the token needs one",
                                    id="sign-pkcs11-pin", compact=True)
                with Vertical(id="sign-export-fields", classes="method-fields"):
                    with Horizontal(classes="field-row"):
                        yield Label("export to", classes="field-label")
                        yield Input(export_default, id="sign-export-path", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("digest only", classes="field-label")
                        yield Switch(False, id="sign-export-digest", animate=False)
                        yield Static("off: the 256 signed bytes of each SIGSTRUCT (sgx_sign gendata); "
                                     "on: their SHA-256 (oesign digest)", classes="field-hint")
                with Vertical(id="sign-attach-fields", classes="method-fields"):
                    with Horizontal(classes="field-row"):
                        yield Label("signatures", classes="field-label")
                        yield Input("", placeholder="SIG files, comma-separated (SGX1 and EDMM, any order)",
                                    id="sign-attach-signatures", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("public key", classes="field-label")
                        yield Input(self.params.key or "", placeholder="the signer's public key (PEM or certificate)",
                                    id="sign-attach-public-key", compact=True)
                    with Horizontal(classes="field-row"):
                        yield Label("export", classes="field-label")
                        yield Input(display_path(self.last_export) if self.last_export else "",
                                    placeholder="the exported signing data (optional: explains mismatches)",
                                    id="sign-attach-signing-data", compact=True)
                with Horizontal(classes="field-row"):
                    yield Label("production", classes="field-label")
                    yield Switch(self.params.production, id="sign-production", animate=False)
                    yield Static("", id="sign-production-hint", classes="field-hint")
                with Horizontal(classes="field-row"):
                    yield Label("date", classes="field-label")
                    yield Input(self.today.isoformat(), id="sign-date", compact=True)
                with Horizontal(classes="field-row choice-row", id="sign-output-row"):
                    yield Label("output", classes="field-label")
                    with RadioSet(id="sign-output-choice", compact=True):
                        yield RadioButton("in place", id="sign-in-place", value=not document.bundled)
                        yield RadioButton("copy to", id="sign-copy", value=document.bundled)
                    yield Input(copy_default, id="sign-output", compact=True)
                yield Static("", id="sign-summary")
                yield Static("", id="sign-problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button(CONFIRM_LABELS[method], variant="primary", id="sign-confirm", compact=True)
                yield Button("Cancel", id="sign-cancel", compact=True)

    def on_mount(self) -> None:
        self._refresh()
        first = {METHOD_KEY: "#sign-key", METHOD_PKCS11: "#sign-pkcs11-uri", METHOD_EXPORT: "#sign-export-path",
                 METHOD_ATTACH: "#sign-attach-signatures"}[self.method]
        self.query_one(first, Input).focus()

    # -- state -----------------------------------------------------------------------------

    @property
    def method(self) -> str:
        """The way of signing chosen: key, pkcs11, export or attach."""
        pressed = self.query_one("#sign-method", RadioSet).pressed_button
        if pressed is None or pressed.id is None:
            return self.initial_method
        return pressed.id.removeprefix("sign-method-")

    def _text(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    def _key_path(self) -> str | None:
        text = self._text("#sign-key")
        return os.path.expanduser(text) if text else None

    def _key_info(self, path: str | None) -> KeyInfo:
        if path not in self._key_cache:
            self._key_cache[path] = inspect_key(path)
        return self._key_cache[path]

    def _output(self) -> str | None:
        if self.query_one("#sign-in-place", RadioButton).value:
            return None
        return os.path.expanduser(self._text("#sign-output"))

    def _signature_paths(self) -> tuple[str, ...]:
        return tuple(os.path.expanduser(part.strip()) for part in self._text("#sign-attach-signatures").split(",")
                     if part.strip())

    def pkcs11_selection(self) -> pkcs11.KeySelection:
        """The token and key named by the PKCS#11 fields (no PIN).

        Raises:
            Pkcs11Error: no module, a bad URI or key id, or fields contradicting the URI.
        """
        def optional(name: str) -> str | None:
            return self._text(f"#sign-pkcs11-{name}") or None

        pin_file = optional("pin-file")
        module = optional("module")
        return pkcs11.selection_from(module=os.path.expanduser(module) if module else None, token=optional("token"),
                                     key_label=optional("key-label"), key_id=optional("key-id"),
                                     pin_file=os.path.expanduser(pin_file) if pin_file else None,
                                     uri=optional("uri"))

    def signing_params(self) -> Params:
        """The parameters the signature will carry (production and key as chosen here)."""
        params = self.params
        production = self.query_one("#sign-production", Switch).value
        if production != params.production:
            params = params.with_value("production", "1" if production else "0", source=SOURCE_EDITED)
        if self.method == METHOD_KEY:
            key = self._key_path()
            if key != params.key:
                params = params.with_value("key", key or "", source=SOURCE_EDITED)
        return params

    def _refresh(self) -> None:
        """Show the fields of the method chosen; recompute the summary and whether confirm may be pressed."""
        method = self.method
        for name in METHODS:
            self.query_one(f"#sign-{name}-fields").display = name == method
        self.query_one("#sign-output-row").display = method != METHOD_EXPORT
        self.query_one("#sign-confirm", Button).label = CONFIRM_LABELS[method]
        problems: list[str] = []
        production = self.query_one("#sign-production", Switch).value
        self.query_one("#sign-production-hint", Static).update(
            "on: production enclave (DEBUG cleared and enforced)" if production
            else "off: debug enclave (DEBUG set)")
        info: KeyInfo
        if method == METHOD_KEY:
            key_path = self._key_path()
            info = self._key_info(key_path)
            if key_path and info.mrsigner is None and "encrypted" not in info.note:
                problems.append(info.note)
            if production and info.debug:
                problems.append(DEBUG_KEY_REFUSAL)
        elif method == METHOD_PKCS11:
            info = KeyInfo(None, None, "the token's key: MRSIGNER shown once signed")
            try:
                selection = self.pkcs11_selection()
                info = KeyInfo(None, None, f"{selection.describe()} via {display_path(selection.module)}")
            except EnsignError as error:
                problems.append(error.message)
        elif method == METHOD_EXPORT:
            info = KeyInfo(None, None, "the offline signer's key (checked when attaching)")
            problems.extend(self._file_problems(self._text("#sign-export-path"), "Name the file to export to."))
        else:
            public = self._text("#sign-attach-public-key")
            info = self._key_info(os.path.expanduser(public)) if public else KeyInfo(None, None, "")
            signatures = self._signature_paths()
            if not signatures:
                problems.append("Name the signature file(s) made by the offline signer.")
            problems.extend(f"{path}: no such file" for path in signatures if not os.path.isfile(path))
            if not public:
                problems.append("Name the signer's public key (PEM or certificate).")
            elif info.mrsigner is None:
                problems.append(info.note)
            signing_data = self._text("#sign-attach-signing-data")
            if signing_data and not os.path.isfile(os.path.expanduser(signing_data)):
                problems.append(f"{signing_data}: no such file")
        date: _dt.date | None = None
        try:
            date = parse_date(self.query_one("#sign-date", Input).value)
        except ParamError as error:
            problems.append(error.message)
        output = self._output() if method != METHOD_EXPORT else None
        self.query_one("#sign-output", Input).disabled = output is None
        if method != METHOD_EXPORT:
            if output is None and self.document.bundled:
                problems.append("The bundled sample is package data: sign a copy (choose 'copy to').")
            elif output is not None:
                problems.extend(self._file_problems(output, "Name the signed copy."))
        self.problem = problems[0] if problems else None
        self.query_one("#sign-problem", Static).update(Text("\n".join(problems), style="bold red"))
        self.query_one("#sign-confirm", Button).disabled = bool(problems) or self._busy
        self._show_summary(method, production, info, date, output)

    def _file_problems(self, path: str, missing: str) -> list[str]:
        """Why a file cannot be written at ``path`` (empty: it can)."""
        if not path:
            return [missing]
        path = os.path.expanduser(path)
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            return [f"{path}: its directory does not exist"]
        if os.path.abspath(path) == os.path.abspath(self.document.path):
            return ["That is the input file: choose another name (or 'in place')."]
        return []

    def _show_summary(self, method: str, production: bool, info: KeyInfo, date: _dt.date | None,
                      output: str | None) -> None:
        params = self.params
        template = sigstruct_template(replace(params, production=production),
                                      self.pair.sgx1_measurement.mrenclave, date or self.today)
        flags = ", ".join(attribute_flag_names(template.attributes_flags))
        xfrm = ", ".join(xfrm_names(template.attributes_xfrm))
        text = Text()
        if method == METHOD_EXPORT:
            base = self._text("#sign-export-path") or "FILE"
            digest = self.query_one("#sign-export-digest", Switch).value
            what = "64 bytes: SHA-256 of each SIGSTRUCT's signed bytes" if digest else (
                "512 bytes: the 256 signed bytes of the SGX1, then the EDMM SIGSTRUCT")
            first = [("writes", f"{base} ({what})"), ("", f"{base}.sgx1, {base}.edmm (one each), {base}.json"),
                     ("", "the enclave is not changed; sign both offline, then choose 'attach'")]
        else:
            target = display_path(output) if output else f"{display_path(self.document.path)} (in place)"
            first = [("writes", target)]
        date_text = date.isoformat() if date else "?"
        if method == METHOD_ATTACH and self._text("#sign-attach-signing-data"):
            date_text = "the date the export records"
        rows = (
            *first,
            ("SGX1 MRENCLAVE", self.pair.sgx1_measurement.hex),
            ("EDMM MRENCLAVE", self.pair.edmm_measurement.hex),
            ("MRSIGNER", info.mrsigner or "?"),
            ("", info.note),
            ("ATTRIBUTES", f"{template.attributes_flags:#x} [{flags}]"),
            ("XFRM", f"{template.attributes_xfrm:#x} [{xfrm}]"),
            ("ISVPRODID", str(template.isvprodid)),
            ("ISVSVN", str(template.isvsvn)),
            ("DATE", date_text),
        )
        for label, value in rows:
            text.append(f"{label:<16}", style="bold")
            text.append(value + "\n", style="italic" if not label else "")
        self.query_one("#sign-summary", Static).update(text)

    # -- events ----------------------------------------------------------------------------

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(RadioSet.Changed)
    def _changed(self, event: Input.Changed | Switch.Changed | RadioSet.Changed) -> None:
        event.stop()
        if isinstance(event, Input.Changed) and event.input.id in ("sign-passphrase", "sign-pkcs11-pin"):
            return  # nothing shown depends on secrets; they are read only on confirm
        self._refresh()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id
        if button == "sign-confirm":
            self.action_confirm()
        elif button == "sign-cancel":
            self.dismiss(None)
        elif button == "sign-browse":
            start = os.path.dirname(self._key_path() or "") or None
            self.app.push_screen(FileDialog("Signing key (PEM, RSA-3072, e=3)", start=start), self._key_chosen)
        elif button == "sign-keygen":
            self.app.push_screen(KeygenDialog(), self._key_chosen)

    def _key_chosen(self, path: str | None) -> None:
        if path:
            self.query_one("#sign-key", Input).value = display_path(path)

    def action_cancel(self) -> None:
        """Close without signing."""
        self.dismiss(None)

    def action_confirm(self) -> None:
        """Return the request; a key file or token is opened in a worker first."""
        self._refresh()
        if self.problem is not None or self._busy:
            return
        method = self.method
        date = parse_date(self.query_one("#sign-date", Input).value)
        if method == METHOD_EXPORT:
            self.dismiss(ExportRequest(self.signing_params(), date,
                                       os.path.expanduser(self._text("#sign-export-path")),
                                       self.query_one("#sign-export-digest", Switch).value))
            return
        if method == METHOD_ATTACH:
            signing_data = self._text("#sign-attach-signing-data")
            self.dismiss(AttachRequest(self.signing_params(), None if signing_data else date,
                                       os.path.expanduser(self._text("#sign-attach-public-key")),
                                       self._signature_paths(),
                                       os.path.expanduser(signing_data) if signing_data else None, self._output()))
            return
        self._busy = True
        self.query_one("#sign-confirm", Button).disabled = True
        production = self.query_one("#sign-production", Switch).value
        if method == METHOD_PKCS11:
            self.query_one("#sign-problem", Static).update(Text("logging in to the token…", style="italic"))
            pin = self.query_one("#sign-pkcs11-pin", Input).value
            self._open_token(self.pkcs11_selection(), pin or None, production)
            return
        self.query_one("#sign-problem", Static).update(Text("unlocking the key…", style="italic"))
        passphrase = self.query_one("#sign-passphrase", Input).value
        self._load_key(self._key_path(), passphrase.encode() if passphrase else None, production)

    # An explicit description: Textual would otherwise put the arguments (the passphrase) in it.
    @work(thread=True, exclusive=True, group="sign-key", exit_on_error=False, description="unlock signing key")
    def _load_key(self, path: str | None, passphrase: bytes | None, production: bool) -> None:
        try:
            key = load_debug_key() if path is None else load_private_key(path, passphrase=passphrase)
            debug = path is None or is_debug_key(key.public_key().public_numbers().n)
            if production and debug:
                raise SigningKeyError(DEBUG_KEY_REFUSAL)
            signer = KeySigner(key)
        except EnsignError as error:
            self.app.call_from_thread(self._key_failed, error.message)
            return
        except Exception as error:  # never a traceback in the dialog; the class says enough
            self.app.call_from_thread(self._key_failed, f"cannot use the key: {type(error).__name__}")
            return
        self.app.call_from_thread(self._key_loaded, signer, debug)

    # The PIN is an argument, so the description is explicit here too.
    @work(thread=True, exclusive=True, group="sign-key", exit_on_error=False, description="open PKCS#11 token")
    def _open_token(self, selection: pkcs11.KeySelection, pin: str | None, production: bool) -> None:
        asked: list[str] = []

        def pin_callback(description: str) -> str | None:
            asked.append(description)
            return pin

        signer: pkcs11.Pkcs11Signer | None = None
        try:
            signer = pkcs11.Pkcs11Signer.open(selection, pin_callback=pin_callback)
            if production and is_debug_key(signer.modulus):
                raise SigningKeyError(DEBUG_KEY_REFUSAL)
        except EnsignError as error:
            if signer is not None:
                signer.close()
            message = error.message
            if asked and not pin:
                message = f"{asked[0]} needs a PIN: type it in the PIN field (or name a PIN file)"
            self.app.call_from_thread(self._key_failed, message, "#sign-pkcs11-pin" if asked else None)
            return
        except Exception as error:  # never a traceback in the dialog; the class says enough
            if signer is not None:
                signer.close()
            self.app.call_from_thread(self._key_failed, f"cannot use the token: {type(error).__name__}")
            return
        self.app.call_from_thread(self._key_loaded, signer, False)

    def _key_failed(self, message: str, focus: str | None = None) -> None:
        self._busy = False
        self._refresh()
        self.query_one("#sign-problem", Static).update(Text(message, style="bold red"))
        if focus is not None:
            self.query_one(focus, Input).focus()

    def _key_loaded(self, signer: Signer, debug: bool) -> None:
        self._busy = False
        date = parse_date(self.query_one("#sign-date", Input).value)
        self.dismiss(SignRequest(self.signing_params(), signer, date, self._output(), debug))


class KeygenDialog(ModalScreen[str | None]):
    """Create a new signing key file (RSA-3072, e=3, mode 0600); returns its path."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="keygen-cancel")]

    def compose(self) -> ComposeResult:
        default = display_path(unique_path(Path.cwd(), "ensign-signing-key", ".pem"))
        with Vertical(classes="dialog keygen-dialog"):
            yield Label("New signing key (RSA-3072, exponent 3)", classes="dialog-title")
            with Horizontal(classes="field-row"):
                yield Label("file", classes="field-label")
                yield Input(default, id="keygen-path", compact=True)
            with Horizontal(classes="field-row"):
                yield Label("passphrase", classes="field-label")
                yield Input("", password=True, placeholder="optional", id="keygen-passphrase", compact=True)
            with Horizontal(classes="field-row"):
                yield Label("repeat", classes="field-label")
                yield Input("", password=True, placeholder="optional", id="keygen-repeat", compact=True)
            yield Static("The file is created with mode 0600 and never overwritten. Keep it secret: "
                         "its MRSIGNER is your enclaves' identity.", classes="field-hint")
            yield Static("", id="keygen-problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Generate", variant="primary", id="keygen-ok", compact=True)
                yield Button("Cancel", id="keygen-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#keygen-path", Input).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "keygen-ok":
            self._generate_clicked()
        else:
            self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._generate_clicked()

    def _generate_clicked(self) -> None:
        path = os.path.expanduser(self.query_one("#keygen-path", Input).value.strip())
        passphrase = self.query_one("#keygen-passphrase", Input).value
        problem = self.query_one("#keygen-problem", Static)
        if not path:
            problem.update("Name the key file.")
            return
        if passphrase != self.query_one("#keygen-repeat", Input).value:
            problem.update("The passphrases differ.")
            return
        if os.path.exists(path):
            problem.update(f"{path} exists; refusing to overwrite")
            return
        self.query_one("#keygen-ok", Button).disabled = True
        problem.update(Text("generating (about a second)…", style="italic"))
        self._generate(path, passphrase.encode() if passphrase else None)

    @work(thread=True, exclusive=True, group="keygen", exit_on_error=False, description="generate signing key")
    def _generate(self, path: str, passphrase: bytes | None) -> None:
        try:
            write_private_key(generate_key(), path, passphrase=passphrase)
        except EnsignError as error:
            self.app.call_from_thread(self._failed, error.message)
            return
        except OSError as error:
            self.app.call_from_thread(self._failed, f"{path}: {error.strerror or error}")
            return
        self.app.call_from_thread(self.dismiss, path)

    def _failed(self, message: str) -> None:
        self.query_one("#keygen-ok", Button).disabled = False
        self.query_one("#keygen-problem", Static).update(Text(message, style="bold red"))

    def action_cancel(self) -> None:
        """Close without a key."""
        self.dismiss(None)
