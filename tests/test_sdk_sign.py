"""Re-signing SDK enclaves: byte-identical with the fixture's own key and date; only SIGSTRUCTs change."""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from test_sdk_support import SDK_ENCLAVES, SIGNING_KEYS, whatif_runs

from core.containers import verify_file
from core.errors import SdkError
from core.sdk import SdkEnclave
from core.sdk_config import parse_config
from core.sdk_sign import resign_sdk_enclave, resigned_sigstruct
from core.signing import KeySigner, load_private_key


def signer_for(fixtures: Path, name: str) -> KeySigner:
    return KeySigner(load_private_key(fixtures / SIGNING_KEYS[name]))


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_resign_with_own_key_and_date_is_byte_identical(fixtures_dir: Path, tmp_path: Path, name: str) -> None:
    source = fixtures_dir / "sdk" / name / "enclave.signed.so"
    output = tmp_path / "out.so"
    with SdkEnclave.open(source) as enclave:
        result = resign_sdk_enclave(enclave, signer_for(fixtures_dir, name), output=output,
                                    date=enclave.sigstruct.date)
    assert output.read_bytes() == source.read_bytes()
    assert not result.enclavehash_changed and result.blocks == len(enclave.blocks)


@pytest.mark.fixtures
def test_resign_with_other_date_reproduces_the_other_build(fixtures_dir: Path, tmp_path: Path) -> None:
    folder = fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest"
    output = tmp_path / "out.so"
    with SdkEnclave.open(folder / "enclave.signed.so") as enclave:
        resign_sdk_enclave(enclave, signer_for(fixtures_dir, "sassiwalid-sgxPingPongTest"), output=output,
                           date=_dt.date(2018, 7, 19))
    assert output.read_bytes() == (folder / "enclave.signed.00a0ae2.so").read_bytes()


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_identity_fields_match_sgx_sign(fixtures_dir: Path, tmp_path: Path, name: str) -> None:
    """The 'ident' what-if run (ISVSVN, ProdID, DisableDebug=1): re-signing the original gives sgx_sign's note."""
    run = next(r for r in whatif_runs(fixtures_dir) if r["enclave"] == name and r["variant"] == "ident")
    settings = parse_config(run["config_xml"])
    output = tmp_path / "ident.so"
    with SdkEnclave.open(fixtures_dir / "sdk" / name / "enclave.signed.so") as enclave:
        resign_sdk_enclave(
            enclave, signer_for(fixtures_dir, name), output=output, date=enclave.sigstruct.date,
            isvprodid=settings.value("ProdID"), isvsvn=settings.value("ISVSVN"),
            disable_debug=bool(settings.value("DisableDebug")),
        )
    section = run["sgxmeta_section"]
    written = output.read_bytes()[section["offset"] : section["offset"] + section["size"]]
    assert written == gzip.decompress((fixtures_dir / run["sgxmeta"]).read_bytes())


@pytest.mark.fixtures
def test_resign_in_place_with_a_new_key(fixtures_dir: Path, tmp_path: Path) -> None:
    source = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE" / "enclave.signed.so"
    target = tmp_path / "enclave.signed.so"
    shutil.copyfile(source, target)
    os.chmod(target, 0o750)
    key = load_private_key(fixtures_dir / "kernel-selftest" / "sign_key.pem")  # another published test key
    with SdkEnclave.open(target) as enclave:
        old = enclave.sigstruct
        result = resign_sdk_enclave(enclave, KeySigner(key), isvsvn=7)
    assert result.output == str(target) and stat.S_IMODE(os.stat(target).st_mode) == 0o750
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    before, after = source.read_bytes(), target.read_bytes()
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    with SdkEnclave.open(target) as enclave:
        block = enclave.primary
        css = block.file_offset + 64
        assert changed and css <= changed[0] and changed[-1] < css + 1808
        assert block.sigstruct.isvsvn == 7 and block.sigstruct.date == old.date
        assert block.sigstruct.enclavehash == old.enclavehash and block.sigstruct.mrsigner != old.mrsigner
    verification = verify_file(target)
    assert verification is not None and verification.ok and verification.measured


@pytest.mark.fixtures
def test_unsigned_enclave_is_refused(fixtures_dir: Path, tmp_path: Path) -> None:
    with SdkEnclave.open(fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark" / "enclave.so") as enclave:
        with pytest.raises(SdkError, match="not signed"):
            resign_sdk_enclave(enclave, signer_for(fixtures_dir, "M21121-simple_sgx_benchmark"), output=tmp_path / "x.so")
    assert not (tmp_path / "x.so").exists()


@pytest.mark.fixtures
def test_resigned_sigstruct_fields(fixtures_dir: Path) -> None:
    with SdkEnclave.open(fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark" / "enclave.signed.so") as enclave:
        old = enclave.sigstruct
    signer = signer_for(fixtures_dir, "M21121-simple_sgx_benchmark")
    same = resigned_sigstruct(old, signer)
    assert same == old
    changed = resigned_sigstruct(old, signer, date=_dt.date(2030, 1, 2), isvprodid=3, disable_debug=True)
    assert changed.date == 0x20300102 and changed.isvprodid == 3
    assert changed.attributemask_flags == old.attributemask_flags | 0x2 and changed.verify_signature()
    assert resigned_sigstruct(changed, signer, disable_debug=False).attributemask_flags == old.attributemask_flags


@pytest.mark.fixtures
def test_cli_resign_sdk_config_and_diff(fixtures_dir: Path, tmp_path: Path, capsys) -> None:
    from tui.cli import main

    folder = fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest"
    key = fixtures_dir / SIGNING_KEYS["sassiwalid-sgxPingPongTest"]
    output = tmp_path / "r.so"
    assert main(["resign", "--key", str(key), "--date", "2018-07-19", "-o", str(output),
                 str(folder / "enclave.signed.so"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["blocks"] == 3 and data["date"] == "20180719" and not data["enclavehash_changed"]
    assert output.read_bytes() == (folder / "enclave.signed.00a0ae2.so").read_bytes()

    assert main(["sdk-diff", str(folder / "enclave.signed.so"), str(output)]) == 1
    text = capsys.readouterr().out
    assert "DATE 0x20180721 vs 0x20180719" in text
    assert main(["sdk-diff", str(output), str(folder / "enclave.signed.00a0ae2.so")]) == 0
    capsys.readouterr()

    assert main(["sdk-config", "--config", str(folder / "Enclave.config.xml"), str(folder / "enclave.signed.so")]) == 0
    assert "equals the derived primary layout" in capsys.readouterr().out
    other = fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark" / "Enclave.config.xml"
    assert main(["sdk-config", "--json", "--config", str(other), str(folder / "enclave.signed.so")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["rules"] == "2.2" and not report["comparison"][0]["equal"]

    assert main(["resign", str(folder / "enclave.signed.so")]) == 2
    assert "needs the new key" in capsys.readouterr().err


@pytest.mark.fixtures
def test_sdk_diff_names_pages_sections_and_symbols(fixtures_dir: Path) -> None:
    from core.sdk import compare_sdk_enclaves

    with (
        SdkEnclave.open(fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest" / "enclave.signed.so") as a,
        SdkEnclave.open(fixtures_dir / "sdk" / "shangsuru-sign-enclave" / "enclave.signed.so") as b,
    ):
        result = compare_sdk_enclaves(a, b, limit=10)
    assert not result.identical and result.page_count > 100 and len(result.pages) == 10
    assert ".text" in result.sections and result.symbols
    assert any("version 2.3 vs 2.4" in line for line in result.metadata)
    assert any(line.startswith("ENCLAVEHASH") for line in result.sigstruct) and result.layout
