"""``open_any`` on every fixture, every SIGSTRUCT against expected.json, hash/verify/info for every kind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_sdk_support import expected

from core.containers import (
    KIND_SDK,
    KIND_SDK_UNSIGNED,
    KIND_SGXS,
    KIND_SIGSTRUCT,
    KIND_TOKEN,
    find_companion_sigstruct,
    hash_file,
    open_any,
    verify_file,
)
from core.errors import ContainerError, ElfFormatError
from core.sigstruct import Sigstruct
from tui.info import SCHEMA, bits_text, describe_file, mask_text

KIND_OF = {
    "sigstruct": KIND_SIGSTRUCT,
    "sdk-signed-enclave": KIND_SDK,
    "oe-signed-enclave": "oe-signed-enclave",
    "measurement-stream": KIND_SGXS,
    "einittoken": KIND_TOKEN,
}
SIGSTRUCT_KEYS_SKIPPED = {"kind"}


def _sigstruct_expectation(entry: dict) -> dict:
    return {key: value for key, value in entry.items() if key not in SIGSTRUCT_KEYS_SKIPPED}


@pytest.mark.fixtures
def test_every_fixture_with_expectations_opens_as_its_kind(fixtures_dir: Path) -> None:
    derived = expected(fixtures_dir)["derived"]
    assert len(derived) >= 30
    for name, want in derived.items():
        with open_any(fixtures_dir / name) as container:
            assert container.kind == KIND_OF[want["kind"]], name
            if want["kind"] == "sigstruct":
                fields = container.sigstruct.to_dict()
                assert {k: fields[k] for k in _sigstruct_expectation(want)} == _sigstruct_expectation(want), name
                assert container.sigstruct.to_bytes() == (fixtures_dir / name).read_bytes()  # byte-exact round trip
            elif "sigstruct" in want:
                for item in container.sigstructs:  # every SIGSTRUCT of the container
                    fields = item.sigstruct.to_dict()
                    assert {k: fields[k] for k in want["sigstruct"]} == want["sigstruct"], (name, item.label)
            if want["kind"] == "measurement-stream":
                assert container.sgxs.record_counts == want["records"]
            if want["kind"] == "einittoken":
                fields = container.token.to_dict()
                assert {k: fields[k] for k in want} == want


@pytest.mark.fixtures
@pytest.mark.parametrize(
    "name, fragment",
    [
        ("fortanix/sig1.key.pem", "PEM file"),
        ("gramine-oracle/oracle.manifest", "text"),
        ("sdk/h0mur0-IT-MPSI-with-TEE/Enclave.config.xml", "--config"),
        ("fortanix/sig1.sig.bin", "384 bytes"),
        ("kernel-selftest/vectors/k1.image", "24576 bytes"),
        ("gramine-oracle/pal_standin.elf", "without SGX signature data"),
    ],
)
def test_unknown_files_say_what_they_look_like(fixtures_dir: Path, name: str, fragment: str) -> None:
    with pytest.raises(ContainerError, match=fragment):
        open_any(fixtures_dir / name)


def test_missing_empty_directory_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="no such file"):
        open_any(tmp_path / "nope")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ContainerError, match="empty"):
        open_any(tmp_path / "empty")
    with pytest.raises(ContainerError, match="directory"):
        open_any(tmp_path)
    (tmp_path / "noise.sig").write_bytes(b"\x55" * 1808)
    with pytest.raises(ContainerError, match="neither SIGSTRUCT header"):
        open_any(tmp_path / "noise.sig")
    (tmp_path / "x.token").write_bytes(b"\x07" * 304)
    with pytest.raises(ContainerError, match="named .token"):
        open_any(tmp_path / "x.token")
    (tmp_path / "bad.elf").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(20))
    with pytest.raises(ElfFormatError):
        open_any(tmp_path / "bad.elf")


@pytest.mark.fixtures
def test_sdk_container_models(fixtures_dir: Path) -> None:
    with open_any(fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest" / "enclave.signed.so") as container:
        assert [item.label for item in container.sigstructs] == ["metadata[0]", "metadata[1]", "metadata[2]"]
        assert "2.2.100.45311" in container.title and "2.3 + 2.1 + 1.4" in container.title
        assert container.measurable and container.plan().counts()["EADD"] == 988
        regions = container.regions()
        assert regions[-1].end == 0x1000000 and {r.treatment for r in regions} >= {"measured", "added", "post-added"}
    with open_any(fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest" / "enclave.so") as container:
        assert container.kind == KIND_SDK_UNSIGNED and container.plan() is None and not container.measurable


@pytest.mark.fixtures
def test_hash_file(fixtures_dir: Path, tmp_path: Path) -> None:
    folder = fixtures_dir / "sdk" / "shangsuru-sign-enclave"
    result = hash_file(folder / "enclave.signed.so", sgxs_out=tmp_path / "out.sgxs")
    assert result is not None and result.matches and result.kind == KIND_SDK
    import gzip

    assert (tmp_path / "out.sgxs").read_bytes() == gzip.decompress((folder / "sgx_sign-measurement.sgxs.gz").read_bytes())
    stream = hash_file(folder / "sgx_sign-measurement.sgxs.gz")
    assert stream is not None and stream.mrenclave == result.mrenclave and stream.matches is None
    assert hash_file(fixtures_dir / "gramine-oracle" / "pal_standin.elf") is None  # measured under parameters
    with pytest.raises(ContainerError, match="holds no pages"):
        hash_file(fixtures_dir / "fortanix" / "test_enclave.sig")
    with pytest.raises(ContainerError, match="Open Enclave"):
        hash_file(fixtures_dir / "openenclave" / "ChampionNan-sgx_test" / "enclave.signed.027b2f4")
    with pytest.raises(ContainerError, match="not signed yet"):
        hash_file(folder / "enclave.so")


@pytest.mark.fixtures
def test_verify_every_kind(fixtures_dir: Path, tmp_path: Path) -> None:
    sdk = verify_file(fixtures_dir / "sdk" / "eternalray-enclave-hello" / "enclave.signed.so")
    assert sdk.ok and sdk.measured and sdk.computed == sdk.expected and len(sdk.checks) == 1
    stream = verify_file(fixtures_dir / "fortanix" / "test_enclave.sgxs")  # companion test_enclave.sig
    assert stream.ok and stream.measured and any("test_enclave.sig" in note for note in stream.notes)
    k1 = Sigstruct.from_bytes((fixtures_dir / "kernel-selftest" / "vectors" / "k1.sigstruct").read_bytes())
    k2 = Sigstruct.from_bytes((fixtures_dir / "kernel-selftest" / "vectors" / "k2.sigstruct").read_bytes())
    assert verify_file(fixtures_dir / "kernel-selftest" / "vectors" / "k1.sgxs", sigstruct=k1).ok
    wrong = verify_file(fixtures_dir / "kernel-selftest" / "vectors" / "k1.sgxs", sigstruct=k2)
    assert not wrong.ok and "does not match the computed MRENCLAVE" in wrong.problems[0]
    with pytest.raises(ContainerError, match="give --sig"):
        verify_file(fixtures_dir / "kernel-selftest" / "vectors" / "k2.sgxs")
    plain = verify_file(fixtures_dir / "enarx-sgx" / "encl.ss")
    assert plain.ok and not plain.measured and plain.computed == "" and plain.checks[0].warnings
    oe = verify_file(fixtures_dir / "openenclave" / "ChampionNan-sgx_test" / "enclave.signed.027b2f4")
    assert oe.ok and not oe.measured
    gramine = verify_file(fixtures_dir / "gramine" / "victormassy-gramine_attribution" / "a0189d1-main.sig")
    assert gramine.ok and any("binary year/month/day" in w for w in gramine.checks[0].warnings)
    token = verify_file(fixtures_dir / "sdk" / "sassiwalid-sgxPingPongTest" / "enclave.token")
    assert token.ok and not token.measured
    dummy = verify_file(fixtures_dir / "gramine" / "victormassy-gramine_attribution" / "a0189d1-main.token")
    assert not dummy.ok and any("VALID" in problem for problem in dummy.problems)
    assert verify_file(fixtures_dir / "gramine-oracle" / "pal_standin.elf") is None


@pytest.mark.fixtures
def test_verify_names_a_tampered_sdk_enclave(fixtures_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "enclave.signed.so"
    shutil.copyfile(fixtures_dir / "sdk" / "M21121-simple_sgx_benchmark" / "enclave.signed.so", copy)
    data = bytearray(copy.read_bytes())
    data[0x3000] ^= 0xFF  # inside .text
    copy.write_bytes(bytes(data))
    result = verify_file(copy)
    assert not result.ok and result.measured and result.computed != result.expected
    assert result.signature_valid and "does not match" in result.problems[0]


def test_companion_lookup(tmp_path: Path) -> None:
    (tmp_path / "app.sgxs").write_bytes(b"x")
    assert find_companion_sigstruct(tmp_path / "app.sgxs") is None
    (tmp_path / "app.sig").write_bytes(b"x")
    assert find_companion_sigstruct(tmp_path / "app.sgxs") == str(tmp_path / "app.sig")
    (tmp_path / "enclave.signed.so").write_bytes(b"x")
    assert find_companion_sigstruct(tmp_path / "enclave.token") == str(tmp_path / "enclave.signed.so")


# ---------------------------------------------------------------------------------------------
# info


TOP_LEVEL = {"schema", "file", "kind", "title", "file_size", "sigstruct", "sigstructs", "sigstruct_sources",
             "params", "ensign", "sdk", "oe", "sgxs", "token", "layout", "config", "notes"}


@pytest.mark.fixtures
@pytest.mark.parametrize(
    "name",
    [
        "sdk/sassiwalid-sgxPingPongTest/enclave.signed.so",
        "sdk/eternalray-enclave-hello/enclave.so",
        "fortanix/test_enclave.sgxs",
        "sdk/eternalray-enclave-hello/enclave.token",
        "openenclave/ChampionNan-sgx_test/enclave.signed.027b2f4",
        "gramine/victormassy-gramine_attribution/36c3785-helloworld.sig",
    ],
)
def test_info_has_one_schema(fixtures_dir: Path, name: str) -> None:
    data, lines = describe_file(str(fixtures_dir / name))
    assert set(data) == TOP_LEVEL and data["schema"] == SCHEMA
    json.dumps(data)  # serialisable
    assert lines[0].startswith(str(fixtures_dir / name))
    if data["sigstruct"] is not None:
        text = "\n".join(lines)
        assert "ATTRIBUTEMASK" in text and "reserved bit" in text and "MODE64BIT" in text
        assert data["sigstruct"] == next(iter(data["sigstructs"].values()))


@pytest.mark.fixtures
def test_info_sdk_details_and_config(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "sdk" / "h0mur0-IT-MPSI-with-TEE"
    data, lines = describe_file(str(folder / "enclave.signed.so"), config=str(folder / "Enclave.config.xml"))
    sdk = data["sdk"]
    assert sdk["release"] == "2.26.100.0" and sdk["rules"] == "2.25" and sdk["metadata_versions"] == ["1.5"]
    want = expected(fixtures_dir)["derived"]["sdk/h0mur0-IT-MPSI-with-TEE/enclave.signed.so"]["metadata_blocks"][0]
    assert {key: sdk["metadata_blocks"][0][key] for key in want} == want
    assert sdk["measurement"]["records"] == {"ECREATE": 1, "EADD": 1017, "EEXTEND": 12176}
    assert len([row for row in sdk["layout_rows"] if row["name"] == "TCS"]) == 10
    assert data["config"]["comparison"][0]["equal"] and data["config"]["parameters"]["TCSNum"]["value"] == 10
    text = "\n".join(lines)
    assert "thread 9 TCS" in text and "equals the derived compat layout" in text
    with pytest.raises(Exception, match="--config applies"):
        describe_file(str(fixtures_dir / "fortanix" / "test_enclave.sig"), config=str(folder / "Enclave.config.xml"))


def test_bit_texts() -> None:
    from core.sigstruct import ATTRIBUTE_FLAG_NAMES, MISCSELECT_NAMES, XFRM_NAMES

    assert bits_text(0x6, ATTRIBUTE_FLAG_NAMES) == "DEBUG, MODE64BIT"
    assert bits_text(0x108, ATTRIBUTE_FLAG_NAMES) == "reserved bit 3, reserved bit 8"
    assert bits_text(0, XFRM_NAMES) == "none"
    assert mask_text(0xFF00FFFFFFFFFFFD, ATTRIBUTE_FLAG_NAMES).endswith("+48 reserved bits")
    assert mask_text(0xFFFFFFFF, MISCSELECT_NAMES) == "EXINFO, CPINFO +30 reserved bits"
    assert mask_text(0x1, MISCSELECT_NAMES) == "EXINFO"
