"""EINITTOKEN: fields per expected.json and matching against a SIGSTRUCT."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_sdk_support import expected

from core.containers import open_any
from core.errors import ContainerError
from core.sigstruct import Sigstruct
from core.token import TOKEN_TABLE, looks_like_token, match_token, parse_token

TOKENS = (
    "sdk/eternalray-enclave-hello/enclave.token",
    "sdk/sassiwalid-sgxPingPongTest/enclave.token",
    "gramine/victormassy-gramine_attribution/36c3785-helloworld.token",
    "gramine/victormassy-gramine_attribution/a0189d1-main.token",
)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", TOKENS)
def test_fixture_tokens_match_expected(fixtures_dir: Path, name: str) -> None:
    data = (fixtures_dir / name).read_bytes()
    assert looks_like_token(data)
    token = parse_token(data, origin=name)
    fields = token.to_dict()
    want = expected(fixtures_dir)["derived"][name]
    assert {key: fields[key] for key in want} == want


@pytest.mark.fixtures
@pytest.mark.parametrize("folder", ["eternalray-enclave-hello", "sassiwalid-sgxPingPongTest"])
def test_sdk_tokens_match_their_enclave(fixtures_dir: Path, folder: str) -> None:
    token = parse_token((fixtures_dir / "sdk" / folder / "enclave.token").read_bytes())
    with open_any(fixtures_dir / "sdk" / folder / "enclave.signed.so") as container:
        sigstruct = container.sigstruct
    match = match_token(token, sigstruct)
    assert match.ok and match.problems() == []
    other = dataclasses.replace(sigstruct, enclavehash=bytes(32))
    assert not match_token(token, other).mrenclave
    assert "MRENCLAVE" in match_token(token, other).problems()[0]


@pytest.mark.fixtures
def test_dummy_gramine_token_is_not_valid(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "gramine" / "victormassy-gramine_attribution"
    token = parse_token((folder / "36c3785-helloworld.token").read_bytes())
    sigstruct = Sigstruct.from_bytes((folder / "36c3785-helloworld.sig").read_bytes())
    match = match_token(token, sigstruct)
    assert not match.valid and not match.mrenclave and not match.ok
    assert match.attributes  # DEBUG|MODE64BIT agree under the all-ones mask


def test_token_table_and_sizes() -> None:
    assert TOKEN_TABLE.size == 304 and TOKEN_TABLE.fields[-1][1] == 288
    with pytest.raises(ContainerError, match="304 bytes"):
        parse_token(bytes(300))
    padded = parse_token(bytes(304) + b"\x01" + bytes(719))
    assert padded.file_size == 1024 and padded.trailing_nonzero
    assert not looks_like_token(b"\x05" + bytes(303)) and not looks_like_token(bytes(305))
