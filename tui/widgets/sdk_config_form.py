"""The ``Enclave.config.xml`` form for Intel SGX SDK enclaves (the what-if of issue 7).

One row per configuration element that shapes the layout or the SIGSTRUCT, with a badge saying
where the value came from (``config``: the file given or the signed metadata; ``default``; or
``edited``). Values are read exactly as ``sgx_sign`` reads them (hex, decimal, leading-0 octal)
by :func:`core.sdk_config.parse_config`; a value it refuses shows its message under the field and
posts :class:`SdkConfigForm.Invalid`. A valid edit posts :class:`SdkConfigForm.Changed` with the
whole new :class:`~core.sdk_config.SdkConfig`. The form never measures anything itself.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from core.errors import EnsignError
from core.sdk_config import ELEMENTS, SdkConfig, parse_config

FORM_ELEMENTS = (
    "TCSNum", "TCSMaxNum", "TCSMinPool", "TCSPolicy", "StackMaxSize", "StackMinSize", "HeapMaxSize",
    "HeapMinSize", "HeapInitSize", "ReservedMemMaxSize", "ReservedMemMinSize", "ReservedMemInitSize",
    "ReservedMemExecutable", "ProdID", "ISVSVN", "DisableDebug", "MiscSelect", "MiscMask",
)
"""Elements shown, when the enclave's SDK release knows them (others stay as given)."""

SOURCE_CONFIG = "config"
SOURCE_DEFAULT = "default"
SOURCE_EDITED = "edited"


def element_text(name: str, value: int) -> str:
    """How the form shows a value: sizes and masks in hex, counts in decimal."""
    return f"{value:#x}" if name.endswith("Size") or name in ("MiscMask", "MiscSelect") else str(value)


class SdkConfigForm(VerticalScroll):
    """Edits one SDK configuration (see module docstring)."""

    DEFAULT_CSS = """
    SdkConfigForm { padding: 0 1; }
    SdkConfigForm #sdk-config-title { text-style: bold; margin-bottom: 1; }
    SdkConfigForm .sdk-row { height: 1; }
    SdkConfigForm .sdk-name { width: 20; }
    SdkConfigForm .sdk-row Input { width: 1fr; }
    SdkConfigForm .sdk-badge { width: 8; margin-left: 1; color: $text-muted; }
    SdkConfigForm .sdk-badge.-edited { color: $warning; text-style: bold; }
    SdkConfigForm .sdk-note { height: auto; color: $error; display: none; }
    SdkConfigForm .sdk-note.-shown { display: block; }
    """

    class Changed(Message):
        """A valid configuration after an edit."""

        def __init__(self, config: SdkConfig, name: str) -> None:
            super().__init__()
            self.config = config
            self.name = name  # the element edited

    class Invalid(Message):
        """An edit ``sgx_sign`` would refuse to parse; the form shows ``message`` under the field."""

        def __init__(self, name: str, message: str) -> None:
            super().__init__()
            self.name = name
            self.message = message

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.names: tuple[str, ...] = ()
        self.given: dict[str, str] = {}  # element -> text as given (config file or signed metadata)
        self.edited: set[str] = set()
        self.origin = "Enclave.config.xml"
        self._texts: dict[str, str] = {}  # the text each field was filled with (not an edit)

    def compose(self) -> ComposeResult:
        yield Static("", id="sdk-config-title")

    def show_config(self, config: SdkConfig, settings: dict[str, int], title: str) -> None:
        """Show ``config`` (effective values from ``settings``, the release's defaults filled in)."""
        self.origin = config.origin
        self.given = {name: element_text(name, value) for name, value in config.values}
        self.edited = set()
        self.names = tuple(name for name in FORM_ELEMENTS if name in settings)
        self.query_one("#sdk-config-title", Static).update(Text(title))
        for row in self.query(".sdk-row, .sdk-note"):
            row.remove()
        self._texts = {}
        for name in self.names:
            value = self.given.get(name, element_text(name, settings[name]))
            self._texts[name] = value
            source = SOURCE_CONFIG if name in self.given else SOURCE_DEFAULT
            row = Horizontal(
                Label(name, classes="sdk-name"),
                Input(value, id=f"sdk-{name}", compact=True),
                Static(source, id=f"sdk-badge-{name}", classes="sdk-badge"),
                classes="sdk-row",
            )
            self.mount(row)
            self.mount(Static("", id=f"sdk-note-{name}", classes="sdk-note"))

    def set_note(self, name: str | None, message: str | None) -> None:
        """Show ``message`` under element ``name`` (None clears every note)."""
        for note in self.query(".sdk-note"):
            if name is None or note.id == f"sdk-note-{name}":
                note.update(message or "")
                note.set_class(bool(message), "-shown")

    def config(self) -> SdkConfig:
        """The configuration the fields describe, parsed as ``sgx_sign`` parses it.

        Raises:
            SdkError: a value sgx_sign would refuse (the message names the element).
        """
        values = dict(self.given)
        for name in self.names:
            text = self.query_one(f"#sdk-{name}", Input).value.strip()
            if name in self.given or name in self.edited:
                values[name] = text
        body = "".join(f"  <{name}>{text}</{name}>\n" for name, text in values.items())
        return parse_config(f"<EnclaveConfiguration>\n{body}</EnclaveConfiguration>\n", origin=self.origin)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id is None or not event.input.id.startswith("sdk-"):
            return
        name = event.input.id.removeprefix("sdk-")
        if name not in ELEMENTS or event.value == self._texts.get(name):
            return  # filled in by show_config, not typed
        self._texts[name] = event.value
        self.edited.add(name)
        badge = self.query_one(f"#sdk-badge-{name}", Static)
        badge.update(SOURCE_EDITED)
        badge.add_class("-edited")
        try:
            config = self.config()
        except EnsignError as error:
            self.set_note(name, error.message)
            self.post_message(self.Invalid(name, error.message))
            return
        self.set_note(None, None)
        self.post_message(self.Changed(config, name))
