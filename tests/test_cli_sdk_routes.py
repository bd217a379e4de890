"""`ensign diff --enclave` and `ensign explain` on Intel SDK enclaves route to the what-if tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
H0MUR0 = "sdk/h0mur0-IT-MPSI-with-TEE"


def ensign(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


@pytest.fixture()
def tcs4(fixtures_dir, tmp_path) -> Path:
    config = (fixtures_dir / H0MUR0 / "Enclave.config.xml").read_text()
    assert "<TCSNum>10</TCSNum>" in config
    path = tmp_path / "tcs4.xml"
    path.write_text(config.replace("<TCSNum>10</TCSNum>", "<TCSNum>4</TCSNum>"))
    return path


@pytest.mark.fixtures
def test_diff_two_configs_of_one_enclave(fixtures_dir, tcs4: Path) -> None:
    folder = fixtures_dir / H0MUR0
    result = ensign("diff", "--json", "--enclave", str(folder / "enclave.so"), str(folder / "Enclave.config.xml"),
                    str(tcs4))
    assert result.returncode == 1, result.stderr  # the MRENCLAVEs differ
    text = ensign("diff", "--enclave", str(folder / "enclave.so"), str(folder / "Enclave.config.xml"),
                  str(tcs4)).stdout
    assert "TCSNum: 10 vs 4" in text and "SIZE: 0x1000000 vs 0x800000" in text
    # the signed configuration's MRENCLAVE, from the fixture's SIGSTRUCT (expected.json)
    expected = json.loads((fixtures_dir / "expected.json").read_text())["derived"]
    assert expected[f"{H0MUR0}/enclave.signed.so"]["sigstruct"]["enclavehash"] in text


@pytest.mark.fixtures
def test_explain_searches_sdk_config_elements(fixtures_dir, tcs4: Path) -> None:
    folder = fixtures_dir / H0MUR0
    result = ensign("explain", "--config", str(tcs4), str(folder / "enclave.signed.so"))
    assert "TCSNum 4 -> 10" in result.stdout, result.stdout + result.stderr
