"""The file dialog: type a path or pick one from a directory tree.

Used to open a binary, load a SIGSTRUCT, choose a signing key, and name output files. It only
returns a path; opening or writing is the caller's job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label, Static


class _VisibleTree(DirectoryTree):
    """A directory tree without dot files."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [path for path in paths if not path.name.startswith(".")]


class FileDialog(ModalScreen[str | None]):
    """Ask for a path.

    Args:
        title: what the path is for.
        start: directory shown in the tree.
        initial: text the path field starts with.
        must_exist: True to open an existing file; False to name a new one (its directory
            must exist).
        action_label: label of the confirm button.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="file-cancel")]

    def __init__(self, title: str, *, start: str | Path | None = None, initial: str = "",
                 must_exist: bool = True, action_label: str = "Open") -> None:
        super().__init__(classes="dialog-screen")
        self.dialog_title = title
        self.start = Path(start) if start else Path.cwd()
        if not self.start.is_dir():
            self.start = Path.cwd()
        self.initial = initial
        self.must_exist = must_exist
        self.action_label = action_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog file-dialog"):
            yield Label(self.dialog_title, classes="dialog-title")
            yield Input(self.initial, placeholder="path", id="file-path")
            yield _VisibleTree(self.start, id="file-tree")
            yield Static("", id="file-problem", classes="problem")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.action_label, variant="primary", id="file-ok", compact=True)
                yield Button("Cancel", id="file-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#file-path", Input).focus()

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.query_one("#file-path", Input).value = str(event.path)
        if self.must_exist:
            self._confirm()

    @on(DirectoryTree.DirectorySelected)
    def _directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        if not self.must_exist:
            name = os.path.basename(self.query_one("#file-path", Input).value) or "output"
            self.query_one("#file-path", Input).value = str(event.path / name)

    @on(Input.Submitted, "#file-path")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._confirm()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "file-ok":
            self._confirm()
        else:
            self.dismiss(None)

    def _confirm(self) -> None:
        text = self.query_one("#file-path", Input).value.strip()
        problem = self.query_one("#file-problem", Static)
        if not text:
            problem.update("Type a path or pick a file.")
            return
        path = os.path.expanduser(text)
        if self.must_exist and not os.path.isfile(path):
            problem.update(f"{text}: no such file")
            return
        if not self.must_exist:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                problem.update(f"{directory}: no such directory")
                return
            if os.path.isdir(path):
                problem.update(f"{text} is a directory; add a file name")
                return
        self.dismiss(path)

    def action_cancel(self) -> None:
        """Close without a path."""
        self.dismiss(None)
