"""The Textual application: ``ensign inspect``.

:func:`make_app` builds the app for the CLI, the tests, the benchmark and the screenshot script
alike; :func:`run_app` is what ``ensign inspect`` calls. The app holds only app-wide bindings
(quit, help) and the command palette entries; everything about the open file lives on
:class:`~tui.screens.main.MainScreen`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from core.params import Params
from tui.screens.document import Comparison, Document, load_comparison, open_document
from tui.screens.help import HelpScreen
from tui.screens.main import DEBOUNCE_SECONDS, MainScreen


class EnsignApp(App[int]):
    """ensign's inspector and signer."""

    CSS_PATH = "app.tcss"
    TITLE = "ensign inspect"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help"),
    ]

    def __init__(self, document: Document, params: Params, *, comparison: Comparison | None = None,
                 debounce: float = DEBOUNCE_SECONDS, today: _dt.date | None = None,
                 stable_timings: bool = False) -> None:
        super().__init__()
        self.main_screen = MainScreen(document, params, comparison=comparison, debounce=debounce, today=today,
                                      stable_timings=stable_timings)

    def on_mount(self) -> None:
        self.push_screen(self.main_screen)

    def action_help(self) -> None:
        """Show the help screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Palette entries for the main actions (plus Textual's own)."""
        main = self.main_screen
        yield SystemCommand("Open…", "Open another enclave: ELF program, SDK / Open Enclave enclave, .sgxs, .sig, "
                            "token", main.action_open_binary)
        yield SystemCommand("Load SIGSTRUCT…", "Compare with a raw .sig or a signed binary",
                            main.action_load_sigstruct)
        if main.pair is not None:
            yield SystemCommand("Sign…", "Sign with a key, after confirming what will be written", main.action_sign)
            yield SystemCommand("Sign with a PKCS#11 token…", "Sign with a key held in an HSM or smart card",
                                lambda: main.action_sign("pkcs11"))
            yield SystemCommand("Export for offline signing…", "Write the bytes (or digests) an offline signer signs",
                                lambda: main.action_sign("export"))
            yield SystemCommand("Attach offline signatures…", "Store signatures made from an export",
                                lambda: main.action_sign("attach"))
            yield SystemCommand("Copy MRENCLAVE", "Copy the MRENCLAVE shown to the clipboard",
                                main.action_copy_mrenclave)
            yield SystemCommand("Export .sgxs…", "Write the record stream of the variant shown",
                                main.action_export_sgxs)
        if main.check_action("explain", ()) is True:
            yield SystemCommand("Explain the MRENCLAVE difference", "Why the current parameters do not give the "
                                "compared MRENCLAVE: differences, image check, parameter search", main.action_explain)
        if main.check_action("diff_signed", ()) is True:
            yield SystemCommand("Diff against the signed parameters", "Record-by-record diff; jump to the first "
                                "divergent record", main.action_diff_signed)
        if main.check_action("save_config", ()) is True:
            yield SystemCommand("Save Enclave.config.xml…", "Write the edited SDK configuration",
                                main.action_save_config)
        yield SystemCommand("Generate signing key…", "Create an RSA-3072 (e=3) key file", main.action_keygen)
        yield SystemCommand("Show SGX1 / EDMM", "Switch the Layout and Records tabs between measurements",
                            main.action_toggle_variant)
        yield SystemCommand("Help", "Keys, marks and badges", self.action_help)
        yield from super().get_system_commands(screen)


def make_app(app_path: str | os.PathLike[str] | None = None, *, params: Params | None = None,
             args: argparse.Namespace | None = None, sig_path: str | None = None, config_path: str | None = None,
             debounce: float = DEBOUNCE_SECONDS, today: _dt.date | None = None,
             stable_timings: bool = False) -> EnsignApp:
    """Build the app on ``app_path`` (the bundled sample when None).

    Args:
        app_path: the file to open: an ELF program, or any container ``core.containers.open_any``
            reads (SDK / Open Enclave enclave, ``.sgxs``, SIGSTRUCT, token).
        params: starting parameters; default: the binary's signed parameters (if signed), with
            ``args``' flags and ``--env`` applied when ``args`` is given.
        args: parsed ``ensign inspect`` arguments (flags, ``--env``).
        sig_path: a SIGSTRUCT (raw ``.sig`` or signed ELF) to compare against.
        config_path: an ``Enclave.config.xml`` for an Intel SGX SDK enclave (default: the
            configuration recovered from its signed metadata).
        debounce: seconds between an edit and its measurement.
        today: the signing date to propose (default: today, UTC).
        stable_timings: leave timings out of the display (deterministic snapshots).

    Raises:
        EnsignError: the binary, the flags or the SIGSTRUCT are unusable.
    """
    document = open_document(app_path, config=config_path)
    if params is None:
        base = document.signed_params
        if args is not None:
            from tui.cli import params_from_args

            params = params_from_args(args, base=base)
        else:
            params = base or Params()
    comparison = load_comparison(sig_path, document) if sig_path else None
    return EnsignApp(document, params, comparison=comparison, debounce=debounce, today=today,
                     stable_timings=stable_timings)


def run_app(args: argparse.Namespace) -> int:
    """Run the inspector for ``ensign inspect`` (exit code 0)."""
    app = make_app(getattr(args, "app", None), args=args, sig_path=getattr(args, "sig", None),
                   config_path=getattr(args, "config", None))
    app.run()
    return app.return_code or 0
