"""What-if for Intel SGX SDK enclaves (``core.sdk_whatif``, ``tui.cli_sdk``) against sgx_sign's own runs.

Every run of ``../shared/fixtures/sdk-whatif.json`` is predicted from the signed and from the
unsigned enclave and must give sgx_sign's MRENCLAVE (or a refusal where sgx_sign refused); runs
with a recorded stream must match it record for record, and the g_global_data and TCS templates
must equal the bytes sgx_sign wrote into every metadata block. The synthetic-TLS images are
rebuilt here as their ``image_note`` says.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED_FIXTURES
from test_sdk_support import SDK_ENCLAVES, assert_same_stream, whatif_image, whatif_runs

from core.errors import SdkError
from core.measure import Measurer
from core.records import PAGE_SIZE
from core.sdk import SdkEnclave
from core.sdk_config import parse_config
from core.sdk_metadata import parse_sgxmeta
from core.sdk_whatif import (
    CHECKED_RELEASES,
    ConfigRefused,
    SdkWhatIf,
    UnsupportedRelease,
    _candidates,
    compare_whatifs,
    config_from_settings,
    config_xml,
    global_data_layout,
    global_data_table,
    infer_config,
    predict,
    release_profile,
    search_sdk_parameters,
)

RUNS: list[dict[str, Any]] = whatif_runs(SHARED_FIXTURES) if (SHARED_FIXTURES / "sdk-whatif.json").is_file() else []
RUN_IDS = [f"{run['enclave'].split('-')[0]}-{run['variant']}" for run in RUNS]


def config(body: str) -> str:
    return f"<EnclaveConfiguration>{body}</EnclaveConfiguration>"


# --------------------------------------------------------------------------------------------
# Release rules and structures (no fixtures)
# --------------------------------------------------------------------------------------------


def test_release_profiles() -> None:
    assert [release_profile(r).verified for r in CHECKED_RELEASES] == [True] * len(CHECKED_RELEASES)
    assert release_profile("2.26.100.0").family == "2.25" and release_profile("2.26").struct == "2.25"
    assert release_profile("1.8.100.37739").struct == "1.8"
    assert release_profile("2.13.100.4").struct == "2.13" and release_profile("2.8").struct == "2.8"
    older = release_profile("2.1.102.1")
    assert (older.family, older.struct, older.verified) == ("2.0", "2.0", False)
    assert release_profile("2.1.103.1").family == "2.2"
    assert release_profile("2.9.101.2").struct == "2.13" and release_profile("2.9.100.2").struct == "2.8"
    newer = release_profile("2.27.100.1")
    assert not newer.verified and "not checked against sgx_sign" in newer.note and newer.label.endswith("(unverified)")
    for release in ("2.17.100.3", "2.6", "1.9.100.1", "3.0"):
        with pytest.raises(UnsupportedRelease, match=release.split(".1")[0] if release != "3.0" else "3.0"):
            release_profile(release)
    with pytest.raises(UnsupportedRelease, match="SGX_TSTDC_VERSION"):
        release_profile(None)
    with pytest.raises(UnsupportedRelease, match="not an SDK release"):
        release_profile("two")


@pytest.mark.parametrize(
    "struct_name, size, offsets",
    [
        ("1.8", 184, {"heap_size": 16, "thread_policy": 24, "td.self_addr": 32, "td.ssa_frame_size": 88,
                      "td.tls_addr": 112}),
        ("2.0", 1488, {"td.self_addr": 32, "tcs_template": 192, "layout_entry_num": 264, "layout_table": 272}),
        ("2.8", 1648, {"rsrv_offset": 24, "thread_policy": 48, "tcs_max_num": 56, "td.self_addr": 64,
                       "tcs_template": 224, "layout_table": 304}),
        ("2.13", 1656, {"enclave_size": 8, "tcs_max_num": 64, "td.self_addr": 72, "tcs_template": 232,
                        "layout_entry_num": 304, "layout_table": 312}),
        ("2.25", 1768, {"tcs_num": 72, "td.self_addr": 80, "td.first_ssa_xsave": 168, "td.tls_addr": 184,
                        "tcs_template": 272, "layout_entry_num": 344, "layout_table": 352,
                        "edmm_bk_overhead": 1752, "fips_on": 1760}),
    ],
)
def test_global_data_tables_follow_sdk_whatif(struct_name: str, size: int, offsets: dict[str, int]) -> None:
    """SDK-WHATIF.md §3: every offset and the total size of global_data_t per release."""
    table = global_data_table(struct_name)
    assert table.size == size
    found = {name: offset for name, offset, _fmt in table.fields}
    for name, offset in offsets.items():
        assert found[name] == offset, name


def test_candidates_come_nearest_first() -> None:
    order = _candidates({"TCSNum": [9, 11, 8, 12, 7, 13, 6, 14], "TCSMaxNum": [11, 12]}, 2)
    assert order[:2] == [{"TCSNum": 9}, {"TCSMaxNum": 11}]
    pair = order.index({"TCSNum": 9, "TCSMaxNum": 11})
    assert order.index({"TCSNum": 12}) < pair < order.index({"TCSNum": 14})
    assert all(len(change) == 1 for change in _candidates({"TCSNum": [1, 2]}, 1))


def test_config_from_settings_checks_values() -> None:
    assert config_from_settings({"TCSNum": 4}).value("TCSNum") == 4
    with pytest.raises(SdkError, match="unknown"):
        config_from_settings({"Threads": 4})
    with pytest.raises(SdkError, match="out of range"):
        config_from_settings({"ProdID": 0x10000})
    text = config_xml(config_from_settings({"TCSNum": 4, "HeapMaxSize": 0x100000}))
    assert parse_config(text).values == (("TCSNum", 4), ("HeapMaxSize", 0x100000))


# --------------------------------------------------------------------------------------------
# Every sgx_sign run, from the signed and from the unsigned enclave
# --------------------------------------------------------------------------------------------


def _tls_images(fixtures: Path, run: dict[str, Any], folder: Path) -> dict[str, Path]:
    """The synthetic-TLS image as sgx_sign signed it, and the same without metadata (unsigned)."""
    signed = whatif_image(fixtures, run)  # enclave.so, PT_GNU_STACK rewritten as PT_TLS per image_note
    section = run["sgxmeta_section"]
    original = (fixtures / "sdk" / run["enclave"] / "enclave.so").read_bytes()
    unsigned = bytearray(signed)
    start, end = section["offset"], section["offset"] + section["size"]
    unsigned[start:end] = original[start:end]
    paths = {}
    for source, data in (("signed", signed), ("unsigned", bytes(unsigned))):
        path = folder / f"{run['enclave']}-{run['variant']}-{source}.so"
        path.write_bytes(data)
        paths[source] = path
    return paths


@pytest.fixture(scope="module")
def sessions(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], SdkWhatIf]]:
    """One open session per (enclave or synthetic-TLS run, signed/unsigned), reused by every run."""
    opened: dict[tuple[str, str], SdkWhatIf] = {}
    folder = tmp_path_factory.mktemp("sdk-whatif")

    class Lazy(dict):
        def __missing__(self, key: tuple[str, str]) -> SdkWhatIf:
            name, source = key
            if name.startswith("tls:"):
                run = next(run for run in RUNS if f"tls:{run['enclave']}:{run['variant']}" == name)
                path = _tls_images(fixtures_dir, run, folder)[source]
            else:
                path = fixtures_dir / "sdk" / name / ("enclave.signed.so" if source == "signed" else "enclave.so")
            session = SdkWhatIf.open(path)
            self[key] = session
            opened[key] = session
            return session

    yield Lazy()
    for session in opened.values():
        session.close()


def _session_key(run: dict[str, Any]) -> str:
    if run["kind"] == "synthetic_tls":
        return f"tls:{run['enclave']}:{run['variant']}"
    return run["enclave"]


@pytest.mark.fixtures
@pytest.mark.parametrize("source", ["signed", "unsigned"])
@pytest.mark.parametrize("run", RUNS, ids=RUN_IDS)
def test_every_run_gives_sgx_signs_mrenclave(
    fixtures_dir: Path, sessions: dict[tuple[str, str], SdkWhatIf], run: dict[str, Any], source: str
) -> None:
    session = sessions[(_session_key(run), source)]
    assert session.profile.verified
    if run["mrenclave"] is None:
        with pytest.raises(ConfigRefused) as refused:
            session.predict(run["config_xml"])
        assert run["rejected_by_sgx_sign"]
        assert "the layout needs 39 entries; SDK 2.2 holds 38" in refused.value.message
        return
    result = session.predict(run["config_xml"])
    assert result.mrenclave == run["mrenclave"], (run["enclave"], run["variant"], source)
    assert result.enclave_size == int(run["enclave_size"], 16) and result.ssa_frame_size == run["ssa_frame_size"]
    assert result.template_source == ("original" if source == "signed" else "zero")
    # What sgx_sign wrote into every metadata block: the g_global_data template, the TCS template, the patches.
    metadata = parse_sgxmeta(gzip.decompress((fixtures_dir / run["sgxmeta"]).read_bytes()))
    for block in metadata.blocks:
        written = [(patch.dst, block.blob(patch.src, patch.size, what="patch")) for patch in block.patches]
        assert written == list(result.patches), (run["variant"], block.version_text)
        assert block.tcs_template() == result.tcs_template
    if run.get("stream") and source == "unsigned":
        reference = gzip.decompress((fixtures_dir / run["stream"]).read_bytes())
        assert hashlib.sha256(reference).hexdigest() == run["mrenclave"]
        assert_same_stream(result.plan, reference, f"{run['enclave']} {run['variant']}")


@pytest.mark.fixtures
def test_synthetic_tls_images_are_rebuilt_as_described(sessions: dict[tuple[str, str], SdkWhatIf]) -> None:
    """The PT_GNU_STACK header became PT_TLS with the run's p_memsz/p_align, and the TD grew with it."""
    for run in (run for run in RUNS if run["kind"] == "synthetic_tls" and run["variant"] == "tls_orig"):
        session = sessions[(_session_key(run), "unsigned")]
        tls = session.image.tls
        assert tls is not None and f"p_memsz {tls.memsz:#x}" in run["image_note"]
        assert f"p_align {tls.align}" in run["image_note"]
        result = session.predict(run["config_xml"], measure=False)
        td = next(item for item in result.layout.primary if item.name == "TD")
        tls_size = -(-tls.memsz // tls.align) * tls.align
        assert td.page_count == 1 + -(-tls_size // PAGE_SIZE)
        fields = {item.name: item.value for item in result.global_data_fields}
        assert fields["td.tls_addr"] == fields["td.self_addr"] - tls_size


# --------------------------------------------------------------------------------------------
# Incremental measurement, inference, comparison, search
# --------------------------------------------------------------------------------------------


def _run(enclave: str, variant: str) -> dict[str, Any]:
    return next(run for run in RUNS if run["enclave"] == enclave and run["variant"] == variant)


@pytest.mark.fixtures
def test_a_whatif_rehashes_from_g_global_data(fixtures_dir: Path) -> None:
    name = "h0mur0-IT-MPSI-with-TEE"
    with SdkWhatIf.open(fixtures_dir / "sdk" / name / "enclave.so") as session:
        first = session.predict(_run(name, "orig")["config_xml"])
        assert first.measurement is not None and not first.measurement.incremental
        edited = session.predict(_run(name, "tcs_pool")["config_xml"])  # same SIZE, other g_global_data
        assert edited.mrenclave == _run(name, "tcs_pool")["mrenclave"]
        measurement = edited.measurement
        assert measurement is not None and measurement.incremental
        page = edited.global_data_symbol.rva & ~(PAGE_SIZE - 1)
        run_index = next(i for i, run in enumerate(edited.plan.runs) if run.offset <= page < run.end)
        assert edited.plan.runs[run_index].offset == page  # the image is split at g_global_data's page
        resumed_record = edited.plan.first_record_of_run(run_index)
        assert measurement.resumed_at == 64 + sum(run.stream_size for run in edited.plan.runs[:run_index])
        assert resumed_record > 1 and measurement.hashed_bytes < measurement.stream_size
        # A fresh measurer agrees (the checkpoint is exact).
        assert Measurer().measure(edited.plan).hex == edited.mrenclave


@pytest.mark.fixtures
@pytest.mark.parametrize("variant", ["orig", "tcs_pool", "heap_min_init", "stack_min", "rsrv", "amx1", "misc1",
                                     "edge_rsrv_min_last", "edge_dyn_nogroup", "edge_aexnotify", "heap_odd"])
def test_the_signed_configuration_is_recovered(fixtures_dir: Path, tmp_path: Path, variant: str) -> None:
    """infer_config on sgx_sign's output gives a configuration with the same MRENCLAVE."""
    runs = [run for run in RUNS if run["variant"] == variant and run.get("sgxmeta")]
    assert runs
    for run in runs:
        path = tmp_path / f"{run['enclave']}.so"
        path.write_bytes(whatif_image(fixtures_dir, run))
        with SdkWhatIf.open(path) as session:
            recovered = infer_config(session)
            assert session.predict(recovered).mrenclave == run["mrenclave"], (run["enclave"], dict(recovered.values))


@pytest.mark.fixtures
def test_differences_are_named(sessions: dict[tuple[str, str], SdkWhatIf]) -> None:
    name = "h0mur0-IT-MPSI-with-TEE"
    session = sessions[(name, "unsigned")]
    orig = session.predict(_run(name, "orig")["config_xml"])
    flipped = compare_whatifs(orig, session.predict(_run(name, "policy_flip")["config_xml"]))
    assert flipped.settings == ("TCSPolicy: 1 vs 0",) and not flipped.layout and not flipped.ecreate
    assert [line.split(" ")[0] for line in flipped.global_data] == ["thread_policy"]
    grown = compare_whatifs(orig, session.predict(_run(name, "tcs4")["config_xml"]))
    assert grown.ecreate == ("SIZE: 0x1000000 vs 0x800000",) and grown.layout
    assert any(line.startswith("tcs_num") for line in grown.global_data) and not grown.same_mrenclave
    same = compare_whatifs(orig, session.predict(_run(name, "ident")["config_xml"]))
    assert same.same_mrenclave and not same.global_data and "ISVSVN: 0 vs 5" in same.settings


@pytest.mark.fixtures
def test_search_finds_the_edited_parameters(sessions: dict[tuple[str, str], SdkWhatIf]) -> None:
    name = "shangsuru-sign-enclave"
    session = sessions[(name, "signed")]
    found = search_sdk_parameters(session, _run(name, "tcs4")["mrenclave"], elements=("TCSNum", "TCSPolicy"))
    assert found.match is not None and found.changes == ("TCSNum 10 -> 4",)
    assert found.match.value("TCSNum") == 4 and found.tried < 40
    pair = search_sdk_parameters(session, _run(name, "tcs_pool")["mrenclave"], elements=("TCSMinPool", "TCSMaxNum"))
    assert pair.match is not None and dict(pair.match.values)["TCSMaxNum"] == 14
    assert dict(pair.match.values)["TCSMinPool"] == 2
    missing = search_sdk_parameters(session, "00" * 32, elements=("TCSPolicy",))
    assert missing.match is None and missing.exhausted and missing.tried == 1


@pytest.mark.fixtures
def test_refusals_and_unsupported_releases(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE"
    with SdkEnclave.open(folder / "enclave.so") as enclave:
        with pytest.raises(ConfigRefused, match="ELRANGE"):
            predict(enclave, config("<ELRangeSize>0x10000000</ELRangeSize>"), measure=False)
        with pytest.raises(ConfigRefused, match="TCSMaxNum is smaller"):
            predict(enclave, config("<TCSNum>4</TCSNum><TCSMaxNum>2</TCSMaxNum>"), measure=False)
        with pytest.raises(ConfigRefused, match="multiple of 4 KiB"):
            predict(enclave, {"HeapMaxSize": 0x1001}, measure=False)
        with pytest.raises(UnsupportedRelease, match="SDK 2.17"):
            predict(enclave, config(""), release="2.17")
        with pytest.raises(UnsupportedRelease, match="g_global_data is 1768 bytes"):
            predict(enclave, config(""), release="2.2")
        unverified = predict(enclave, config(""), release="2.27")
        assert not unverified.verified and unverified.notes[0].startswith("SDK 2.27 was not checked")
        assert unverified.mrenclave == predict(enclave, config(""), release="2.26").mrenclave
    with pytest.raises(SdkError, match="original"):
        predict(folder / "enclave.so", config(""), template="original")
    with pytest.raises(ConfigRefused, match="not known to sgx_sign of SDK 2.13"):
        predict(fixtures_dir / "sdk" / "shangsuru-sign-enclave" / "enclave.so", config("<AMX>1</AMX>"), measure=False)


@pytest.mark.fixtures
def test_the_g_global_data_copy_is_the_primary_layout(sessions: dict[tuple[str, str], SdkWhatIf]) -> None:
    """SDK-WHATIF.md §4.4: 37 primary entries in h0mur0's template, though its file holds the 11-entry 1.5 block."""
    session = sessions[("h0mur0-IT-MPSI-with-TEE", "signed")]
    template = session.original_template()
    assert template is not None and len(session.enclave.primary.layout) == 11
    copy = global_data_layout(session.profile, template)
    assert len(copy) == 37 and copy[6].name == "TCS" and copy[6].content_offset == 0x770
    result = session.predict(session.baseline())
    assert result.global_data == template and result.tcs_content_offset == 0x770


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def cli() -> Any:
    """``tui.cli.main``, the real entry point."""
    from tui.cli import main

    return main


@pytest.mark.fixtures
def test_cli_hash_predicts_from_an_unsigned_enclave(
    fixtures_dir: Path, tmp_path: Path, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark"
    run = _run("M21121-simple_sgx_benchmark", "tcs4")
    xml = tmp_path / "Enclave.config.xml"
    xml.write_text(run["config_xml"])
    sgxs = tmp_path / "out.sgxs"
    assert cli(["hash", str(folder / "enclave.so"), "--config", str(xml), "--json", "--sgxs-out", str(sgxs)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mrenclave"] == run["mrenclave"] and data["kind"] == "sdk-whatif" and data["verified"]
    assert data["signed_enclavehash"] is None and data["template_source"] == "zero"
    assert hashlib.sha256(sgxs.read_bytes()).hexdigest() == run["mrenclave"]
    assert cli(["hash", "-q", str(folder / "enclave.signed.so"), "--config", str(folder / "Enclave.config.xml")]) == 0
    assert capsys.readouterr().out.strip() == _run("M21121-simple_sgx_benchmark", "orig")["mrenclave"]
    assert cli(["hash", str(folder / "enclave.so"), "--config", str(xml), "--heap", "64M"]) == 2
    assert "do not apply to Intel SGX SDK enclaves" in capsys.readouterr().err
    assert cli(["hash", str(folder / "enclave.so"), "--config", str(xml), "--release", "2.20"]) == 2
    assert "SDK 2.20" in capsys.readouterr().err


@pytest.mark.fixtures
def test_cli_info_shows_layout_and_global_data(fixtures_dir: Path, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fixtures_dir / "sdk" / "shangsuru-sign-enclave"
    assert cli(["info", str(folder / "enclave.signed.so"), "--config", str(folder / "Enclave.config.xml")]) == 0
    text = capsys.readouterr().out
    assert "predicted MRENCLAVE 18a37ad9" in text and "the signed ENCLAVEHASH is the same" in text
    assert "derived primary layout" in text and "+64    tcs_max_num              0xa" in text
    assert cli(["info", "--json", str(folder / "enclave.so"), "--config", str(folder / "Enclave.config.xml")]) == 0
    whatif = json.loads(capsys.readouterr().out)["config"]["whatif"]
    assert whatif["mrenclave"].startswith("18a37ad9") and whatif["global_data_t"] == "2.13"
    names = [field["name"] for field in whatif["global_data_fields"]]
    assert "td.self_addr" in names and "layout_table[0]" in names


@pytest.mark.fixtures
def test_cli_sdk_diff_between_configs(fixtures_dir: Path, tmp_path: Path, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    name = "sassiwalid-sgxPingPongTest"
    folder = fixtures_dir / "sdk" / name
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_text(_run(name, "orig")["config_xml"])
    b.write_text(_run(name, "stack_min")["config_xml"])
    assert cli(["sdk-diff", "--config", str(a), "--config", str(b), str(folder / "enclave.so")]) == 1
    text = capsys.readouterr().out
    assert "StackMinSize: 0x1000 vs 0x8000" in text and "layout_table[" in text and "ECREATE" not in text
    assert cli(["sdk-diff", "--json", "--config", str(a), str(folder / "enclave.signed.so")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["same_mrenclave"] and data["a"] == "signed"


@pytest.mark.fixtures
def test_cli_sdk_explain(fixtures_dir: Path, tmp_path: Path, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    name = "eternalray-enclave-hello"
    folder = fixtures_dir / "sdk" / name
    xml = tmp_path / "Enclave.config.xml"
    xml.write_text(_run(name, "tcs4")["config_xml"])
    # The config says TCSNum 4; the signed enclave has 10: explain finds it.
    assert cli(["sdk-explain", "--json", "--config", str(xml), "--vary", "TCSNum,HeapMaxSize",
                str(folder / "enclave.signed.so")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["match"]["TCSNum"] == 10 and data["changes"] == ["TCSNum 4 -> 10"]
    assert cli(["sdk-explain", "--mrenclave", "11" * 32, "--vary", "TCSPolicy", str(folder / "enclave.so")]) == 1
    assert "no configuration found" in capsys.readouterr().out


@pytest.mark.fixtures
def test_every_fixture_enclave_is_supported(sessions: dict[tuple[str, str], SdkWhatIf]) -> None:
    for name in SDK_ENCLAVES:
        session = sessions[(name, "signed")]
        assert session.profile.verified
        assert session.predict(session.baseline()).mrenclave == session.enclave.sigstruct.enclavehash.hex()

