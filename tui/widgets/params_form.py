"""The parameters form: every enclave parameter, its source badge, its kind mark, inline errors.

The form renders the :class:`~core.params.Params` it is given and validates edits through
``Params.with_value`` (the same rules as the command line, units included). A valid edit posts
:class:`ParamsForm.Changed` with the new parameters; an invalid one shows the message under the
field and posts :class:`ParamsForm.Invalid`. The form never starts measurements and never keeps
state the screen does not know about beyond the text being typed.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from core.errors import ParamError
from core.params import PARAMETERS, SOURCE_DEFAULT, SOURCE_ENV, Params, format_size, parse_value

SOURCE_EDITED = "edited"
"""Source of a value typed into the form (shown as its badge)."""

MARK_MRENCLAVE = "●"
MARK_SIGSTRUCT = "○"


def value_text(name: str, value: Any) -> str:
    """A parameter value as the user would type it (sizes as 64M, XFRM as hex)."""
    spec = next(spec for spec in PARAMETERS if spec.name == name)
    if spec.kind == "size":
        return format_size(value)
    if spec.kind == "xfrm":
        return f"{value:#x}"
    if spec.kind == "path":
        return value or ""
    if spec.kind == "bool":
        return "yes" if value else "no"
    return str(value)


def badge_text(source: str) -> str:
    """Short badge for a value's source: default, env, flag, signed or edited."""
    return SOURCE_ENV if source.startswith(SOURCE_ENV) else source


class ParamsForm(VerticalScroll, can_focus=False):
    """Editable enclave parameters (see module docstring)."""

    DEFAULT_CSS = """
    ParamsForm {
        height: 1fr;
        padding: 0 1;
    }
    ParamsForm .legend { color: $text-muted; height: 1; }
    ParamsForm .param-row { height: 1; margin-top: 1; }
    ParamsForm .param-name { width: 13; }
    ParamsForm .param-name.-mrenclave { color: $accent; }
    ParamsForm .param-name.-sigstruct { color: $text-muted; }
    ParamsForm Input { width: 1fr; }
    ParamsForm Input.-invalid { color: $error; }
    ParamsForm .badge { width: 8; margin-left: 1; color: $text-muted; }
    ParamsForm .badge.-flag { color: $success; }
    ParamsForm .badge.-env { color: $warning; }
    ParamsForm .badge.-signed { color: $secondary; }
    ParamsForm .badge.-edited { color: $accent; text-style: bold; }
    ParamsForm .param-error { color: $error; height: auto; display: none; padding-left: 12; }
    ParamsForm .param-error.-shown { display: block; }
    """

    class Changed(Message):
        """A field was edited to a valid value: ``params`` is the new whole set."""

        def __init__(self, form: ParamsForm, params: Params, name: str) -> None:
            super().__init__()
            self.form = form
            self.params = params
            self.name = name  # the parameter edited

        @property
        def control(self) -> ParamsForm:
            """The form."""
            return self.form

    class Invalid(Message):
        """A field holds text that is not a valid value; the previous parameters stay."""

        def __init__(self, form: ParamsForm, name: str, message: str) -> None:
            super().__init__()
            self.form = form
            self.name = name
            self.message = message

    def __init__(self, params: Params, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.params = params
        self.errors: dict[str, str] = {}  # parameter name -> message currently shown
        self._notes: dict[str, str] = {}  # problems the screen reports (e.g. an unreadable key)
        self._shown_errors: dict[str, str] = {}  # text under each field now (skip no-op updates)
        self._badges: dict[str, str] = {}  # badge text now

    def compose(self) -> ComposeResult:
        yield Static(f"{MARK_MRENCLAVE} MRENCLAVE  {MARK_SIGSTRUCT} SIGSTRUCT only",
                     classes="legend")
        for spec in PARAMETERS:
            kind_class = "-mrenclave" if spec.affects_mrenclave else "-sigstruct"
            mark = MARK_MRENCLAVE if spec.affects_mrenclave else MARK_SIGSTRUCT
            value = getattr(self.params, spec.name)
            with Horizontal(classes="param-row", id=f"row-{spec.name}"):
                label = Label(f"{mark} {spec.name}", classes=f"param-name {kind_class}")
                label.tooltip = f"{spec.flag} / {spec.env}\n{spec.help}"
                yield label
                placeholder = {"path": "built-in debug key", "bool": "no / yes"}.get(spec.kind, "")
                yield Input(value_text(spec.name, value), id=f"param-{spec.name}", compact=True,
                            placeholder=placeholder, tooltip=spec.help, select_on_focus=True)
                source = self.params.source(spec.name)
                self._badges[spec.name] = badge_text(source)
                yield Label(badge_text(source), id=f"badge-{spec.name}",
                            classes=f"badge -{badge_text(source)}")
            yield Static("", id=f"error-{spec.name}", classes="param-error", markup=False)

    # -- rendering what the screen gives ----------------------------------------------------

    def show_params(self, params: Params) -> None:
        """Show ``params``: values (without disturbing text that already means the same), badges."""
        if params is self.params and not self.errors:
            return  # the form's own edit coming back from the screen
        self.params = params
        for spec in PARAMETERS:
            value = getattr(params, spec.name)
            widget = self.query_one(f"#param-{spec.name}", Input)
            if not self._means(spec.name, widget.value, value):
                with widget.prevent(Input.Changed):
                    widget.value = value_text(spec.name, value)
                self._set_error(spec.name, None)
            self._set_badge(spec.name, params.source(spec.name))

    def set_note(self, name: str, message: str | None) -> None:
        """Show (or clear) a problem the screen found with a valid value, e.g. an unreadable key."""
        if message:
            self._notes[name] = message
        else:
            self._notes.pop(name, None)
        self._set_error(name, self.errors.get(name))

    def focus_first(self) -> None:
        """Focus the first field."""
        self.query_one(f"#param-{PARAMETERS[0].name}").focus()

    # -- edits -----------------------------------------------------------------------------

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.id is None or not event.input.id.startswith("param-"):
            return
        self._edited(event.input.id.removeprefix("param-"), event.value)

    def _edited(self, name: str, text: str) -> None:
        if self._means(name, text, getattr(self.params, name)):
            # Same value (e.g. the form filling itself in, or "64M" retyped as "65536K").
            self._set_error(name, None)
            return
        try:
            params = self.params.with_value(name, text, source=SOURCE_EDITED)
        except ParamError as error:
            self._set_error(name, error.message)
            self.post_message(self.Invalid(self, name, error.message))
            return
        self._set_error(name, None)
        # Another field's cross-check error (minheap > heap) may be resolved by this edit.
        for other, _message in list(self.errors.items()):
            if other != name:
                widget = self.query_one(f"#param-{other}")
                if isinstance(widget, Input):
                    try:
                        params = params.with_value(other, widget.value, source=SOURCE_EDITED)
                    except ParamError:
                        continue
                    self._set_error(other, None)
                    self._set_badge(other, SOURCE_EDITED)
        self.params = params
        self._set_badge(name, SOURCE_EDITED)
        self.post_message(self.Changed(self, params, name))

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _means(name: str, text: str, value: Any) -> bool:
        try:
            return bool(parse_value(name, text) == value)
        except ParamError:
            return False

    def _set_error(self, name: str, message: str | None) -> None:
        if message:
            self.errors[name] = message
        else:
            self.errors.pop(name, None)
        shown = message or self._notes.get(name) or ""
        if self._shown_errors.get(name, "") == shown:
            return  # unchanged: skip the DOM work on every keystroke
        self._shown_errors[name] = shown
        error = self.query_one(f"#error-{name}", Static)
        error.update(shown)
        error.set_class(bool(shown), "-shown")
        self.query_one(f"#param-{name}").set_class(bool(message), "-invalid")

    def _set_badge(self, name: str, source: str) -> None:
        text = badge_text(source or SOURCE_DEFAULT)
        if self._badges.get(name) == text:
            return
        self._badges[name] = text
        badge = self.query_one(f"#badge-{name}", Label)
        badge.update(text, layout=False)
        for kind in ("default", "env", "flag", "signed", "edited"):
            badge.set_class(kind == text, f"-{kind}")
