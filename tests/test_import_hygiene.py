"""core/ is headless: importing every core module must not load textual, rich or tui."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_ui() -> None:
    modules = sorted(f"core.{info.name}" for info in pkgutil.iter_modules(core.__path__))
    assert "core.measure" in modules and "core.layout" in modules
    script = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'tui'))\n"
        + "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"core pulled in UI modules: {result.stdout}"


def test_headless_cli_commands_do_not_import_textual() -> None:
    script = (
        "import sys\nfrom tui import cli\n"
        "cli.build_parser()\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""
