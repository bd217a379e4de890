"""Make the SVG screenshots in ``screenshots/`` from the real app on the bundled sample.

Run from anywhere: ``python scripts/screenshots.py [--out screenshots] [--size 120x40]``.

Each state is reached by pressing keys in a headless app (``make_app``), waiting until every
timer and worker has finished, then ``app.save_screenshot``. States: the main view after an
incremental edit, the layout map with the heap selected, the records, the Compare tab against
a signed copy with other parameters (a mismatch), and the sign dialog.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from textual.widgets import Input  # noqa: E402

from tui.app import EnsignApp, make_app  # noqa: E402
from tui.screens.document import SAMPLE_PATH  # noqa: E402


async def settle(pilot) -> None:
    """Wait until no timer is pending and no worker runs."""
    app: EnsignApp = pilot.app
    deadline = time.monotonic() + 60
    await pilot.pause()
    while (app.main_screen.busy or any(not worker.is_finished for worker in app.workers)) \
            and time.monotonic() < deadline:
        await pilot.pause(0.02)
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause(0.1)


async def shoot(name: str, keys: list[str], out: Path, size: tuple[int, int], sig: str | None = None) -> Path:
    """Open the sample, press ``keys`` (waiting after each), save ``out/name.svg``."""
    app = make_app(SAMPLE_PATH, sig_path=sig)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        path = app.save_screenshot(f"{name}.svg", str(out))
    return Path(path)


def edit(field: str, text: str) -> list[str]:
    """Keys that focus parameter ``field`` (by tabbing from the first) and replace its text."""
    order = ["stack", "minheap", "heap", "tcs", "mprotect", "dlopen", "xfrm", "isvsvn", "isvprodid",
             "production", "key"]
    return ["e", *["tab"] * order.index(field), "end", "ctrl+u", *text, "escape"]


async def main(out: Path, size: tuple[int, int]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        signed = Path(scratch) / "sample-enclave.signed"
        subprocess.run([sys.executable, "-m", "tui.cli", "sign", "--heap", "128M", "--tcs", "4",
                        "-o", str(signed), str(SAMPLE_PATH)], cwd=REPO_ROOT, check=True, capture_output=True)
        shots = [
            ("main-view", edit("tcs", "4"), None),
            ("layout-map", ["2", *["down"] * 4], None),
            ("records", ["3", "pagedown"], None),
            ("compare-mismatch", ["4"], str(signed)),
            ("sign-dialog", ["s"], None),
        ]
        for name, keys, sig in shots:
            path = await shoot(name, keys, out, size, sig)
            print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "screenshots"), help="output directory")
    parser.add_argument("--size", default="120x40", help="terminal size WIDTHxHEIGHT")
    options = parser.parse_args()
    width, height = (int(part) for part in options.size.lower().split("x"))
    asyncio.run(main(Path(options.out), (width, height)))
