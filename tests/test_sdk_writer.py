"""Signing Intel SGX SDK enclaves from their config, byte for byte what ``sgx_sign`` writes.

Golden data: every run ``sgx_sign`` accepted in ``../shared/fixtures/sdk-whatif.json`` (its
``signed_file_sha256`` and the exact section in ``sdk-whatif/<enclave>/<variant>.sgxmeta.gz``),
and the committed ``enclave.signed.so`` of each SDK fixture. The same files must come out with a
PEM key, a key in a PKCS#11 token (SoftHSM2) and through export/attach; ``ensign info`` shows
every block and ``ensign verify`` passes. Then the refusals ``sgx_sign`` makes.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_pkcs11 import PIN, TOKEN, _write_pkcs8, softhsm  # noqa: F401 - softhsm: the SoftHSM2 token fixture
from test_sdk_support import SDK_ENCLAVES, SIGNING_KEYS, whatif_image, whatif_runs

from core.enclave import today_utc
from core.errors import SdkError, SignatureError
from core.sdk import SdkEnclave
from core.sdk_config import derive_layout, parse_config
from core.sdk_metadata import parse_sgxmeta
from core.sdk_writer import (
    MeasuredContent,
    attach_signature,
    config_signing_request,
    metadata_versions,
    plan_sdk_signing,
    sgx_sign_sigstruct,
    sign_sdk_enclave,
    text_relocations,
)
from core.signing import KeySigner, load_private_key, sign_sigstruct_with
from core.sigstruct import encode_bcd_date
from tui.cli import main

SAMPLE_KEY = "fortanix/sig1.key.pem"


# --------------------------------------------------------------------------------------------
# helpers and module-scoped fixtures
# --------------------------------------------------------------------------------------------


def _accepted(fixtures: Path) -> list[dict[str, Any]]:
    return [run for run in whatif_runs(fixtures) if run.get("signed_file_sha256")]


def _run_ids() -> list[str]:
    """Parametrize ids 'enclave/variant' for every accepted run (read without the fixture, to collect)."""
    from conftest import SHARED_FIXTURES

    if not (SHARED_FIXTURES / "sdk-whatif.json").is_file():
        return ["fixtures-absent"]
    return [f"{run['enclave']}/{run['variant']}" for run in _accepted(SHARED_FIXTURES)]


def _run(fixtures: Path, run_id: str) -> dict[str, Any]:
    enclave, variant = run_id.split("/")
    return next(r for r in _accepted(fixtures) if r["enclave"] == enclave and r["variant"] == variant)


def _key_path(fixtures: Path, enclave: str, name: str | None = None) -> Path:
    if name is not None:
        local = fixtures / "sdk" / enclave / name
        return local if local.is_file() else fixtures / "fortanix" / name
    return fixtures / SIGNING_KEYS[enclave]


def _date(text: str) -> _dt.date:
    return _dt.datetime.strptime(text, "%Y%m%d").date()


@pytest.fixture(scope="module")
def signers(fixtures_dir: Path) -> dict[Path, KeySigner]:
    """Loaded keys by path (loading a PEM key costs more than signing)."""
    return {}


def _signer(signers: dict[Path, KeySigner], path: Path) -> KeySigner:
    if path not in signers:
        signers[path] = KeySigner(load_private_key(path))
    return signers[path]


def _unsigned_input(fixtures: Path, run: dict[str, Any], tmp_path: Path) -> Path:
    """The enclave.so sgx_sign was run on (synthetic-TLS runs: with the PT_TLS header of image_note)."""
    source = fixtures / "sdk" / run["enclave"] / "enclave.so"
    if run["kind"] != "synthetic_tls":
        return source
    data = bytearray(whatif_image(fixtures, run))
    section = run["sgxmeta_section"]
    start, end = section["offset"], section["offset"] + section["size"]
    data[start:end] = source.read_bytes()[start:end]
    target = tmp_path / f"{run['variant']}.so"
    target.write_bytes(data)
    return target


def _committed_date(fixtures: Path, enclave: str) -> str:
    with SdkEnclave.open(fixtures / "sdk" / enclave / "enclave.signed.so") as signed:
        raw = signed.sigstruct.date
    return f"{raw >> 16:04x}-{(raw >> 8) & 0xFF:02x}-{raw & 0xFF:02x}"


# --------------------------------------------------------------------------------------------
# every accepted sgx_sign run, byte for byte
# --------------------------------------------------------------------------------------------


@pytest.mark.fixtures
@pytest.mark.parametrize("run_id", _run_ids())
def test_every_accepted_sgx_sign_run_is_reproduced(fixtures_dir: Path, signers: dict, tmp_path: Path,
                                                   run_id: str) -> None:
    """enclave.so + the run's config, key and date → the very file sgx_sign wrote (signed_file_sha256)."""
    run = _run(fixtures_dir, run_id)
    signer = _signer(signers, _key_path(fixtures_dir, run["enclave"], run["signing_key"]))
    output = tmp_path / "signed.so"
    with SdkEnclave.open(_unsigned_input(fixtures_dir, run, tmp_path)) as enclave:
        result = sign_sdk_enclave(enclave, parse_config(run["config_xml"]), signer, date=_date(run["signing_date"]),
                                  output=output)
    expected_section = gzip.decompress((fixtures_dir / run["sgxmeta"]).read_bytes())
    data = output.read_bytes()
    section = run["sgxmeta_section"]
    assert data[section["offset"]: section["offset"] + section["size"]] == expected_section
    assert (result.section_offset, result.section_size, result.section_sha256) == (
        section["offset"], section["size"], section["sha256"])
    assert hashlib.sha256(data).hexdigest() == result.file_sha256 == run["signed_file_sha256"]
    assert result.mrenclave == run["mrenclave"]
    assert list(result.versions) == run.get("metadata_versions", list(result.versions))


@pytest.mark.fixtures
def test_writer_alone_reproduces_sections_from_sgx_sign_templates(fixtures_dir: Path, signers: dict,
                                                                   tmp_path: Path) -> None:
    """Independent of the what-if predictor: layout from the config, TCS/g_global_data templates from sgx_sign's note."""
    for run in _accepted(fixtures_dir):
        expected = gzip.decompress((fixtures_dir / run["sgxmeta"]).read_bytes())
        block = parse_sgxmeta(expected).blocks[0]
        patch = block.patches[0]
        gd = block.blob(patch.src, patch.size, what="g_global_data template")
        tcs = block.tcs_template()
        assert tcs is not None

        def content(enclave: SdkEnclave, config: Any, release: str | None, *, _gd=gd, _tcs=tcs,
                    _dst=patch.dst) -> MeasuredContent:
            layout = derive_layout(enclave.image, config, release=enclave.release)
            return MeasuredContent(enclave.release or "", layout.family, True, config, layout, _tcs, _gd, _dst)

        with SdkEnclave.open(_unsigned_input(fixtures_dir, run, tmp_path)) as enclave:
            plan = plan_sdk_signing(enclave, parse_config(run["config_xml"]), date=_date(run["signing_date"]),
                                    content=content)
        signer = _signer(signers, _key_path(fixtures_dir, run["enclave"], run["signing_key"]))
        assert plan.section(sign_sigstruct_with(plan.template, signer)) == expected, run["variant"]


@pytest.mark.fixtures
def test_refused_runs_are_refused(fixtures_dir: Path) -> None:
    """The configurations sgx_sign refused are refused too, with the reason."""
    refused = [run for run in whatif_runs(fixtures_dir) if run.get("rejected_by_sgx_sign")]
    assert refused
    for run in refused:
        with SdkEnclave.open(fixtures_dir / "sdk" / run["enclave"] / "enclave.so") as enclave, \
                pytest.raises(SdkError, match="sgx_sign"):
            plan_sdk_signing(enclave, parse_config(run["config_xml"]), date=_date(run["signing_date"]))


# --------------------------------------------------------------------------------------------
# the CLI: committed enclave.signed.so from enclave.so (PEM, PKCS#11, export/attach)
# --------------------------------------------------------------------------------------------


@pytest.mark.fixtures
@pytest.mark.parametrize("name", SDK_ENCLAVES)
def test_cli_sign_reproduces_committed_signed_enclave(fixtures_dir: Path, tmp_path: Path, name: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = fixtures_dir / "sdk" / name
    output = tmp_path / "enclave.signed.so"
    assert main(["sign", "--json", "--config", str(folder / "Enclave.config.xml"), "--key",
                 str(fixtures_dir / SIGNING_KEYS[name]), "--date", _committed_date(fixtures_dir, name),
                 "-o", str(output), str(folder / "enclave.so")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert output.read_bytes() == (folder / "enclave.signed.so").read_bytes()
    assert data["file_sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert main(["verify", str(output)]) == 0
    capsys.readouterr()
    assert main(["info", "--json", str(output)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sdk"]["metadata_versions"] == data["metadata_versions"]  # every block shown
    assert len(info["sdk"]["metadata_blocks"]) == len(info["sigstructs"]) == len(data["metadata_versions"])
    # Re-signing the signed file (--resign) gives the same bytes: sgx_sign never reads the old metadata.
    again = tmp_path / "again.so"
    assert main(["sign", "--config", str(folder / "Enclave.config.xml"), "--key", str(fixtures_dir / SIGNING_KEYS[name]),
                 "--date", _committed_date(fixtures_dir, name), "--resign", "-o", str(again), str(output)]) == 0
    assert again.read_bytes() == output.read_bytes()


@pytest.mark.fixtures
def test_older_committed_signature_is_reproduced_with_its_date(fixtures_dir: Path, tmp_path: Path) -> None:
    """sassiwalid's enclave.signed.00a0ae2.so: same enclave.so and config, signed two days earlier."""
    folder = fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest"
    output = tmp_path / "signed.so"
    assert main(["sign", "--config", str(folder / "Enclave.config.xml"), "--key", str(fixtures_dir / SAMPLE_KEY),
                 "--date", "2018-07-19", "-o", str(output), str(folder / "enclave.so")]) == 0
    assert output.read_bytes() == (folder / "enclave.signed.00a0ae2.so").read_bytes()


@pytest.mark.fixtures
def test_cli_sign_in_place_and_sigstruct_options(fixtures_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--production is DisableDebug=1 and --isvsvn/--isvprodid override the config: SIGSTRUCT only."""
    folder = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE"
    app = tmp_path / "enclave.so"
    shutil.copy2(folder / "enclave.so", app)
    assert main(["sign", "--json", "--config", str(folder / "Enclave.config.xml"), "--key",
                 str(folder / "Enclave_private_test.pem"), "--production", "--isvsvn", "5", "--isvprodid", "0x1234",
                 "--sig-out", str(tmp_path / "css.bin"), str(app)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["file"] == str(app) and data["attributemask_flags"] == "0xff00ffffffffffff"
    assert (data["isvsvn"], data["isvprodid"]) == (5, 0x1234)
    with SdkEnclave.open(app) as signed, SdkEnclave.open(folder / "enclave.signed.so") as original:
        assert signed.sigstruct.enclavehash == original.sigstruct.enclavehash  # MRENCLAVE unchanged
        assert signed.sigstruct.to_bytes() == (tmp_path / "css.bin").read_bytes()
        assert signed.sigstruct.date == encode_bcd_date(today_utc())  # sgx_sign's default: today (UTC)
    assert main(["verify", str(app)]) == 0


@pytest.mark.fixtures
@pytest.mark.parametrize("export", ["--export-signing-data", "--export-digest"])
def test_cli_export_then_attach_reproduces_committed_file(fixtures_dir: Path, tmp_path: Path, export: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """sgx_sign gendata/catsig, ensign style: export, sign the bytes (or digest) elsewhere, attach."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    for name in SDK_ENCLAVES:
        folder = fixtures_dir / "sdk" / name
        app = tmp_path / f"{name}.so"
        shutil.copy2(folder / "enclave.so", app)
        request = tmp_path / f"{name}.req"
        date = _committed_date(fixtures_dir, name)
        config = ["--config", str(folder / "Enclave.config.xml")]
        assert main(["sign", *config, export, str(request), "--date", date, str(app)]) == 0
        assert "ensign attach" in capsys.readouterr().out
        assert app.read_bytes() == (folder / "enclave.so").read_bytes()  # nothing signed yet
        key = load_private_key(fixtures_dir / SIGNING_KEYS[name])
        if export == "--export-signing-data":
            signature = key.sign(request.read_bytes(), padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = key.sign(request.read_bytes(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        (tmp_path / "sdk.sig").write_bytes(signature[::-1])  # little-endian: found by verifying
        public = tmp_path / "public.pem"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        output = tmp_path / f"{name}.signed.so"
        assert main(["attach", *config, str(app), "-s", str(tmp_path / "sdk.sig"), "--public-key", str(public),
                     "--signing-data", str(request), "-o", str(output)]) == 0, capsys.readouterr().err
        capsys.readouterr()
        assert output.read_bytes() == (folder / "enclave.signed.so").read_bytes(), name
    # A signature over another configuration is refused, naming the element that changed.
    text = (folder / "Enclave.config.xml").read_text().replace("<TCSNum>10</TCSNum>", "<TCSNum>4</TCSNum>")
    (tmp_path / "other.xml").write_text(text)
    assert main(["attach", "--config", str(tmp_path / "other.xml"), str(app), "-s", str(tmp_path / "sdk.sig"),
                 "--public-key", str(public), "--signing-data", str(request), "-o", str(tmp_path / "x.so")]) == 2
    assert "TCSNum 10 → 4" in capsys.readouterr().err


@pytest.mark.fixtures
def test_attach_signature_core_api(fixtures_dir: Path, signers: dict) -> None:
    folder = fixtures_dir / "sdk" / "eternalray-enclave-hello"
    signer = _signer(signers, fixtures_dir / SAMPLE_KEY)
    with SdkEnclave.open(folder / "enclave.so") as enclave:
        plan = plan_sdk_signing(enclave, parse_config((folder / "Enclave.config.xml").read_bytes()),
                                date=_dt.date(2017, 5, 29))
        request = config_signing_request(plan)
        assert request.messages()[0] == plan.template.signed_bytes() and request.params["TCSNum"] == 10
        signature = signer.sign_pkcs1_sha256(request.messages()[0])
        signed, attached = attach_signature(plan, signer.modulus, [("sig", signature)])
        assert attached.matches[0].byte_order == "big"
        assert plan.section(signed) == bytes((folder / "enclave.signed.so").read_bytes()[
            plan.section_offset: plan.section_offset + plan.section_size])
        with pytest.raises(SignatureError, match="wrong key"):
            attach_signature(plan, signer.modulus, [("sig", signature)], expected_mrsigner="00" * 32)


@pytest.fixture(scope="module")
def token(fixtures_dir: Path, request: pytest.FixtureRequest) -> Iterator[dict]:
    """test_pkcs11's SoftHSM2 token, plus every SDK fixture's key imported from its PEM (label = enclave name)."""
    hsm = request.getfixturevalue("softhsm")
    for index, name in enumerate(SDK_ENCLAVES):
        pem = _write_pkcs8(load_private_key(fixtures_dir / SIGNING_KEYS[name]), hsm["dir"] / f"{name}.pem")
        hsm["util"]("--import", str(pem), "--token", TOKEN, "--label", name, "--id", f"{0x50 + index:02x}",
                    "--pin", PIN)
    import pkcs11

    # SoftHSM2 lists its tokens at C_Initialize: a library loaded before the keys were imported must look
    # again, and the next module's token fixture must find no library loaded with this configuration.
    pkcs11.unload(hsm["module"])
    yield {**hsm, "token": TOKEN}
    pkcs11.unload(hsm["module"])


@pytest.mark.fixtures
def test_cli_sign_through_pkcs11_reproduces_committed_files(fixtures_dir: Path, token: dict, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    for name in SDK_ENCLAVES:
        folder = fixtures_dir / "sdk" / name
        output = tmp_path / f"{name}.signed.so"
        assert main(["sign", "--json", "--config", str(folder / "Enclave.config.xml"), "--date",
                     _committed_date(fixtures_dir, name), "--pkcs11-module", str(token["module"]), "--pkcs11-token",
                     token["token"], "--pkcs11-key-label", name, "--pkcs11-pin-file", str(token["pin_file"]),
                     "-o", str(output), str(folder / "enclave.so")]) == 0, capsys.readouterr().err
        assert "PKCS#11 token" in json.loads(capsys.readouterr().out)["signer"]
        assert output.read_bytes() == (folder / "enclave.signed.so").read_bytes(), name


@pytest.mark.fixtures
def test_pkcs11_signer_reproduces_whatif_runs(fixtures_dir: Path, token: dict, tmp_path: Path) -> None:
    """One run per enclave and metadata shape (3.x + 1.5, SGX2-only, AMX, TLS) through the token."""
    from core import pkcs11

    wanted = {("M21121-simple_sgx_benchmark", "misc1"), ("h0mur0-IT-MPSI-with-TEE", "edge_sgx2_only"),
              ("h0mur0-IT-MPSI-with-TEE", "tls_amx1"), ("sassiwalid-sgxPingPongTest", "tcs_pool"),
              ("eternalray-enclave-hello", "heap_odd"), ("shangsuru-sign-enclave", "rsrv")}
    runs = [run for run in _accepted(fixtures_dir) if (run["enclave"], run["variant"]) in wanted]
    assert len(runs) == len(wanted)
    for run in runs:
        selection = pkcs11.selection_from(module=str(token["module"]), token=token["token"], key_label=run["enclave"],
                                          pin_file=str(token["pin_file"]))
        with pkcs11.Pkcs11Signer.open(selection) as signer, \
                SdkEnclave.open(_unsigned_input(fixtures_dir, run, tmp_path)) as enclave:
            result = sign_sdk_enclave(enclave, parse_config(run["config_xml"]), signer,
                                      date=_date(run["signing_date"]), output=tmp_path / "out.so")
        assert result.file_sha256 == run["signed_file_sha256"], run["variant"]


# --------------------------------------------------------------------------------------------
# sgx_sign's checks
# --------------------------------------------------------------------------------------------


def _copy(fixtures: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / "enclave.so"
    shutil.copy2(fixtures / "sdk" / name / "enclave.so", target)
    return target


@pytest.mark.fixtures
def test_refusals_and_opt_outs(fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "sassiwalid-sgxPingPongTest"
    folder = fixtures_dir / "sdk" / name
    key = str(fixtures_dir / SAMPLE_KEY)
    config = str(folder / "Enclave.config.xml")

    def sign(app: Path, *flags: str) -> tuple[int, str]:
        code = main(["sign", "--config", config, "--key", key, "--date", "2018-07-21", "-o", str(tmp_path / "o.so"),
                     *flags, str(app)])
        return code, capsys.readouterr().err

    # already signed
    code, err = sign(folder / "enclave.signed.so")
    assert code == 2 and "already signed" in err and "--resign" in err
    # text relocations: the first of the trailing DT_NULLs becomes DT_TEXTREL
    app = _copy(fixtures_dir, name, tmp_path)
    data = bytearray(app.read_bytes())
    with SdkEnclave.open(app) as enclave:
        dynamic = next(segment for segment in enclave.image.segments if segment.type == 2)
        assert not text_relocations(enclave.image)
    entries = [struct.unpack_from("<qQ", data, dynamic.offset + 16 * i) for i in range(dynamic.filesz // 16)]
    null = next(i for i, (tag, _value) in enumerate(entries) if tag == 0)
    struct.pack_into("<qQ", data, dynamic.offset + 16 * null, 22, 0)
    app.write_bytes(data)
    code, err = sign(app)
    assert code == 2 and "text relocations" in err and "--ignore-rel-error" in err
    assert sign(app, "--ignore-rel-error")[0] == 0
    # an .init section: rename .comment
    app = _copy(fixtures_dir, name, tmp_path)
    data = bytearray(app.read_bytes())
    position = data.find(b"\0.comment\0")
    assert position > 0
    data[position + 1: position + 7] = b".init\0"
    app.write_bytes(data)
    code, err = sign(app)
    assert code == 2 and ".init section" in err and "--ignore-init-sec-error" in err
    assert sign(app, "--ignore-init-sec-error")[0] == 0
    # a note too small for the metadata: shrink descsz in the note header (2.2 writes 3 blocks)
    app = _copy(fixtures_dir, name, tmp_path)
    with SdkEnclave.open(app) as enclave:
        offset = enclave.metadata.section_offset
    data = bytearray(app.read_bytes())
    struct.pack_into("<I", data, offset + 4, 0x2000)
    app.write_bytes(data)
    code, err = sign(app)
    assert code == 2 and "does not fit" in err
    # keys: not RSA-3072 e=3, or none
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = tmp_path / "weak.pem"
    weak.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    app = _copy(fixtures_dir, name, tmp_path)
    assert main(["sign", "--config", config, "--key", str(weak), str(app)]) == 2
    assert "RSA-2048 key with exponent 65537; SGX needs RSA-3072 with exponent 3" in capsys.readouterr().err
    assert main(["sign", "--config", config, str(app)]) == 2
    assert "needs a key" in capsys.readouterr().err
    # layout flags do not apply: the layout is the config's
    assert main(["sign", "--config", config, "--key", key, "--heap", "1G", str(app)]) == 2
    assert "--heap does not apply with --config" in capsys.readouterr().err
    # not an SDK enclave
    program = fixtures_dir / "gramine-oracle" / "pal_standin.elf"
    assert main(["sign", "--config", config, "--key", key, "-o", str(tmp_path / "x"), str(program)]) == 2
    assert "no .note.sgxmeta" in capsys.readouterr().err
    assert app.read_bytes() == (folder / "enclave.so").read_bytes()  # nothing written on refusal


@pytest.mark.fixtures
def test_configuration_refusals(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE"
    cases = {
        "<ISVFAMILYID_L>1</ISVFAMILYID_L>": "EnableKSS",
        "<EnableIPPFIPS>1</EnableIPPFIPS>": "EnableIPPFIPS",
        "<ELRangeSize>0x10000000</ELRangeSize>": "ELRANGE",
        "<UserRegionSize>0x1000</UserRegionSize>": "UserRegionSize",
        "<Bogus>1</Bogus>": "unknown element",
    }
    with SdkEnclave.open(folder / "enclave.so") as enclave:
        for element, message in cases.items():
            with pytest.raises(SdkError, match=message):
                config = parse_config(f"<EnclaveConfiguration><TCSNum>2</TCSNum>{element}</EnclaveConfiguration>")
                plan_sdk_signing(enclave, config, date=_dt.date(2025, 1, 1))


# --------------------------------------------------------------------------------------------
# SIGSTRUCT defaults and block versions (no fixtures)
# --------------------------------------------------------------------------------------------


def test_sgx_sign_sigstruct_defaults_per_release() -> None:
    """SPEC §2.7 as the fixtures show it: DEBUG not enforced, the XFRM mask per release, MISCSELECT."""
    defaults = {"MiscMask": 0xFFFFFFFF}
    new = sgx_sign_sigstruct(defaults, "2.25", date=_dt.date(2024, 1, 1))
    assert (new.attributes_flags, new.attributemask_flags) == (0x4, 0xFF00FFFFFFFFFFFD)
    assert (new.attributes_xfrm, new.attributemask_xfrm) == (0x3, 0xFFFFFFFFFFFFFF1B)
    assert new.date == 0x20240101 and new.header[12:] == bytes(4) and new.vendor == 0 and new.miscmask == 0xFFFFFFFF
    old = sgx_sign_sigstruct(defaults, "2.2", date=0x20180721)
    assert (old.attributemask_flags, old.attributemask_xfrm) == (0xFFFFFFFFFFFFFFFD, 0xFFFFFFFFFFFFFFFB)
    assert sgx_sign_sigstruct(defaults, "2.13", date=0).attributemask_xfrm == 0xFFFFFFFFFFFFFF1B
    # MISCSELECT: as written up to 2.13, masked from 2.25
    misc = {"MiscSelect": 1, "MiscMask": 0xFFFFFFFE}
    assert sgx_sign_sigstruct(misc, "2.13", date=0).miscselect == 1
    assert sgx_sign_sigstruct(misc, "2.25", date=0).miscselect == 0
    # PKRU/AMX policies, AEX-Notify, KSS, identity fields
    features = sgx_sign_sigstruct({"PKRU": 2, "AMX": 1, "EnableAEXNotify": 1, "EnableKSS": 1, "ISVFAMILYID_L": 1,
                                   "ISVEXTPRODID_H": 2, "ProdID": 7, "ISVSVN": 3, "DisableDebug": 1,
                                   "ProvisionKey": 1, "ReleaseType": 1, "IntelSigned": 1}, "2.25", date=0)
    assert features.attributes_xfrm == 0x60003 and features.attributemask_xfrm == 0xFFFFFFFFFFFFFD1B
    assert features.attributes_flags == 0x4 | 0x10 | 0x80 | 0x400
    assert features.attributemask_flags == 0xFF00FFFFFFFFFFFF
    assert features.isvfamilyid == (1).to_bytes(16, "little")
    assert features.isvextprodid == (2 << 64).to_bytes(16, "little")
    assert (features.isvprodid, features.isvsvn, features.vendor) == (7, 3, 0x8086)
    assert features.header[12:] == (1 << 31).to_bytes(4, "little")


def test_metadata_versions_per_release() -> None:
    from dataclasses import dataclass

    @dataclass
    class Layout:
        compat: object
        sgx2: bool

    assert metadata_versions("1.8", "1.8.100.1", Layout(None, False)) == ((1, 3),)
    assert metadata_versions("2.2", "2.2.100.1", Layout((), False)) == ((2, 3), (2, 1), (1, 4))
    assert metadata_versions("2.13", "2.13.100.4", Layout((), False)) == ((2, 4), (2, 1), (1, 4))
    assert metadata_versions("2.25", "2.25.100.3", Layout((), False)) == ((1, 5),)
    assert metadata_versions("2.25", "2.25.100.3", Layout((), True)) == ((3, 2), (1, 5))
    assert metadata_versions("2.25", "2.26.100.0", Layout(None, True)) == ((3, 3),)
