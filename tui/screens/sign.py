"""The sign dialog and the key generator.

:class:`SignDialog` collects key file, passphrase (masked), production, date and output, shows
exactly what will be written, and returns a :class:`SignRequest` only on confirmation; it
refuses production with ensign's public debug key and says why. The key is loaded (with the
passphrase) in a worker when the user confirms; the passphrase is read from its field at that
moment and never stored, logged or put in a reactive. :class:`KeygenDialog` creates a new
RSA-3072 (e=3) key file. Neither dialog writes the enclave: the main screen does, in a worker.
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
    """What the user confirmed in the sign dialog."""

    params: Params  # the parameters to sign with (production and key as chosen in the dialog)
    signer: Signer  # the loaded key
    date: _dt.date  # SIGSTRUCT DATE
    output: str | None  # None: sign in place
    debug_key: bool  # the signer is ensign's public debug key


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
    cleaned = text.strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return _dt.datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise ParamError(f"date: '{text}' is not a date (use YYYY-MM-DD)")


def unique_path(directory: Path, stem: str, suffix: str) -> Path:
    """``directory/stem+suffix``, or ``stem-2``, ``stem-3``… if taken."""
    candidate = directory / f"{stem}{suffix}"
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}{suffix}"
        number += 1
    return candidate


class SignDialog(ModalScreen[SignRequest | None]):
    """Choose how to sign; confirm to get a :class:`SignRequest` (see module docstring)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="sign-cancel"),
        Binding("ctrl+s", "confirm", "Sign", id="sign-confirm"),
    ]

    def __init__(self, document: EnclaveDocument, pair: MeasuredPair, params: Params, today: _dt.date) -> None:
        super().__init__(classes="dialog-screen")
        self.document = document
        self.pair = pair
        self.params = params
        self.today = today
        self._key_cache: dict[str | None, KeyInfo] = {}
        self.problem: str | None = None  # why Sign is disabled (None: it is enabled)
        self._busy = False

    def compose(self) -> ComposeResult:
        document = self.document
        copy_default = (
            display_path(Path.cwd() / f"{document.name}.signed") if document.bundled
            else display_path(f"{document.path}.signed")
        )
        with Vertical(classes="dialog sign-dialog"):
            yield Label(f"Sign {document.name}", classes="dialog-title")
            with VerticalScroll(id="sign-body"):
                with Horizontal(classes="field-row"):
                    yield Label("key", classes="field-label")
                    yield Input(self.params.key or "", placeholder="built-in debug key", id="sign-key",
                                compact=True)
                    yield Button("Browse…", id="sign-browse", compact=True)
                    yield Button("New key…", id="sign-keygen", compact=True)
                with Horizontal(classes="field-row"):
                    yield Label("passphrase", classes="field-label")
                    yield Input("", password=True, placeholder="only for an encrypted key", id="sign-passphrase",
                                compact=True)
                with Horizontal(classes="field-row"):
                    yield Label("production", classes="field-label")
                    yield Switch(self.params.production, id="sign-production", animate=False)
                    yield Static("", id="sign-production-hint", classes="field-hint")
                with Horizontal(classes="field-row"):
                    yield Label("date", classes="field-label")
                    yield Input(self.today.isoformat(), id="sign-date", compact=True)
                with Horizontal(classes="field-row output-row"):
                    yield Label("output", classes="field-label")
                    with RadioSet(id="sign-output-choice", compact=True):
                        yield RadioButton("in place", id="sign-in-place", value=not document.bundled)
                        yield RadioButton("copy to", id="sign-copy", value=document.bundled)
                    yield Input(copy_default, id="sign-output", compact=True)
                yield Static("", id="sign-summary")
                yield Static("", id="sign-problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sign", variant="primary", id="sign-confirm", compact=True)
                yield Button("Cancel", id="sign-cancel", compact=True)

    def on_mount(self) -> None:
        self._refresh()
        self.query_one("#sign-key", Input).focus()

    # -- state -----------------------------------------------------------------------------

    def _key_path(self) -> str | None:
        text = self.query_one("#sign-key", Input).value.strip()
        return os.path.expanduser(text) if text else None

    def _key_info(self, path: str | None) -> KeyInfo:
        if path not in self._key_cache:
            self._key_cache[path] = inspect_key(path)
        return self._key_cache[path]

    def _output(self) -> str | None:
        if self.query_one("#sign-in-place", RadioButton).value:
            return None
        return os.path.expanduser(self.query_one("#sign-output", Input).value.strip())

    def signing_params(self) -> Params:
        """The parameters the signature will carry (production and key as chosen here)."""
        params = self.params
        production = self.query_one("#sign-production", Switch).value
        if production != params.production:
            params = params.with_value("production", "1" if production else "0", source=SOURCE_EDITED)
        key = self._key_path()
        if key != params.key:
            params = params.with_value("key", key or "", source=SOURCE_EDITED)
        return params

    def _refresh(self) -> None:
        """Recompute the summary and whether Sign may be pressed."""
        problems: list[str] = []
        production = self.query_one("#sign-production", Switch).value
        self.query_one("#sign-production-hint", Static).update(
            "on: production enclave (DEBUG cleared and enforced)" if production
            else "off: debug enclave (DEBUG set)")
        key_path = self._key_path()
        info = self._key_info(key_path)
        if key_path and info.mrsigner is None and "encrypted" not in info.note:
            problems.append(info.note)
        if production and info.debug:
            problems.append(DEBUG_KEY_REFUSAL)
        date: _dt.date | None = None
        try:
            date = parse_date(self.query_one("#sign-date", Input).value)
        except ParamError as error:
            problems.append(error.message)
        output = self._output()
        self.query_one("#sign-output", Input).disabled = output is None
        if output is None and self.document.bundled:
            problems.append("The bundled sample is package data: sign a copy (choose 'copy to').")
        elif output is not None:
            if not output:
                problems.append("Name the signed copy.")
            elif not os.path.isdir(os.path.dirname(os.path.abspath(output))):
                problems.append(f"{output}: its directory does not exist")
            elif os.path.abspath(output) == os.path.abspath(self.document.path):
                problems.append("The copy is the input file: choose 'in place' instead.")
        self.problem = problems[0] if problems else None
        self.query_one("#sign-problem", Static).update(Text("\n".join(problems), style="bold red"))
        self.query_one("#sign-confirm", Button).disabled = bool(problems) or self._busy
        self._show_summary(production, info, date, output)

    def _show_summary(self, production: bool, info: KeyInfo, date: _dt.date | None, output: str | None) -> None:
        params = self.params
        template = sigstruct_template(replace(params, production=production),
                                      self.pair.sgx1_measurement.mrenclave, date or self.today)
        flags = ", ".join(attribute_flag_names(template.attributes_flags))
        xfrm = ", ".join(xfrm_names(template.attributes_xfrm))
        text = Text()
        target = display_path(output) if output else f"{display_path(self.document.path)} (in place)"
        rows = (
            ("writes", target),
            ("SGX1 MRENCLAVE", self.pair.sgx1_measurement.hex),
            ("EDMM MRENCLAVE", self.pair.edmm_measurement.hex),
            ("MRSIGNER", info.mrsigner or "?"),
            ("", info.note),
            ("ATTRIBUTES", f"{template.attributes_flags:#x} [{flags}]"),
            ("XFRM", f"{template.attributes_xfrm:#x} [{xfrm}]"),
            ("ISVPRODID", str(template.isvprodid)),
            ("ISVSVN", str(template.isvsvn)),
            ("DATE", date.isoformat() if date else "?"),
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
        if isinstance(event, Input.Changed) and event.input.id == "sign-passphrase":
            return  # nothing shown depends on it; it is read only on confirm
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
        """Load the key (in a worker) and return the request."""
        self._refresh()
        if self.problem is not None or self._busy:
            return
        self._busy = True
        self.query_one("#sign-confirm", Button).disabled = True
        self.query_one("#sign-problem", Static).update(Text("unlocking the key…", style="italic"))
        passphrase = self.query_one("#sign-passphrase", Input).value
        self._load_key(self._key_path(), passphrase.encode() if passphrase else None,
                       self.query_one("#sign-production", Switch).value)

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

    def _key_failed(self, message: str) -> None:
        self._busy = False
        self._refresh()
        self.query_one("#sign-problem", Static).update(Text(message, style="bold red"))

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
