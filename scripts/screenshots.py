"""Make the SVG screenshots in ``screenshots/`` from the real app on the bundled sample.

Run from anywhere: ``python scripts/screenshots.py [--out screenshots] [--size 120x40]``.

Each state is reached by pressing keys in a headless app (``make_app``), waiting until every
timer and worker has finished, then ``app.save_screenshot``. States: the main view after an
incremental edit, the layout map with the heap selected, the records, the Compare tab against
a signed copy with other parameters (a mismatch), Explain against a raw ``.sig`` (the
parameter search), the diff against the signed parameters, the sign dialog, and an Intel SGX SDK
enclave's configuration what-if (from ``../shared/fixtures`` when present).
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

SDK_ENCLAVE = REPO_ROOT.parent / "shared" / "fixtures" / "sdk" / "eternalray-enclave-hello" / "enclave.signed.so"
"""An SDK-signed enclave from the shared fixtures (shown when present)."""


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
    await pilot.pause(0.3)  # tables sized "auto" (the diff's stretches) settle over a few frames


async def shoot(name: str, keys: list[str], out: Path, size: tuple[int, int], sig: str | None = None,
                app_path: Path = SAMPLE_PATH) -> Path:
    """Open ``app_path`` (the sample), press ``keys`` (waiting after each), save ``out/name.svg``."""
    app = make_app(app_path, sig_path=sig)
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
        raw_sig = Path(scratch) / "sample-enclave.sig"
        subprocess.run([sys.executable, "-m", "tui.cli", "sign", "--heap", "128M", "--tcs", "4",
                        "-o", str(signed), "--sig-out", str(raw_sig), str(SAMPLE_PATH)], cwd=REPO_ROOT, check=True,
                       capture_output=True)
        shots = [
            ("main-view", edit("tcs", "4"), None, SAMPLE_PATH),
            ("layout-map", ["2", *["down"] * 4], None, SAMPLE_PATH),
            ("records", ["3", "pagedown"], None, SAMPLE_PATH),
            ("compare-mismatch", ["4"], str(signed), SAMPLE_PATH),
            # A raw .sig records no parameters: Explain searches for them.
            ("compare-explain", ["4", "w"], str(raw_sig), SAMPLE_PATH),
            # The signed copy opened with a smaller heap: diff against its signed parameters.
            ("compare-diff", [*edit("heap", "64M"), "4", "d"], None, signed),
            ("sign-dialog", ["s"], None, SAMPLE_PATH),
        ]
        if SDK_ENCLAVE.is_file():  # an Intel SGX SDK enclave, opened like any other file
            # its Enclave.config.xml (recovered from the signed metadata) with TCSNum edited to 4: the
            # layout and MRENCLAVE sgx_sign would produce
            shots.append(("sdk-enclave", ["e", "end", "ctrl+u", "4", "escape", "2"], None, SDK_ENCLAVE))
        for name, keys, sig, app_path in shots:
            path = await shoot(name, keys, out, size, sig, app_path)
            print(f"wrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "screenshots"), help="output directory")
    parser.add_argument("--size", default="120x40", help="terminal size WIDTHxHEIGHT")
    options = parser.parse_args()
    width, height = (int(part) for part in options.size.lower().split("x"))
    asyncio.run(main(Path(options.out), (width, height)))
