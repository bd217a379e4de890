"""Parameter parsing and validation: units, ranges, environment, provenance."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ParamError
from core.params import (
    GIB,
    KIB,
    MIB,
    Params,
    format_size,
    parse_size,
    parse_value,
    resolve_params,
)


@pytest.mark.parametrize("text, expected", [
    ("4096", 4096), ("4K", 4 * KIB), ("4k", 4 * KIB), ("2M", 2 * MIB), ("1G", GIB), ("0x1000", 4096),
    ("64MiB", 64 * MIB), ("512KB", 512 * KIB), (" 8M ", 8 * MIB), ("0", 0),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["12Q", "-1", "-4K", "", "M", "1.5M", "2T", "0x", "4 K B", "1e6"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_size(text, what="--heap")
    assert "--heap" in info.value.message


@given(st.integers(min_value=0, max_value=1 << 39), st.sampled_from(["", "K", "M", "G"]))
def test_size_roundtrip(number: int, suffix: str) -> None:
    unit = {"": 1, "K": KIB, "M": MIB, "G": GIB}[suffix]
    if number * unit > 1 << 40:
        with pytest.raises(ParamError):
            parse_size(f"{number}{suffix}")
        return
    value = parse_size(f"{number}{suffix}")
    assert value == number * unit
    assert parse_size(format_size(value)) == value


@given(st.text(max_size=12))
def test_parse_size_never_raises_other_errors(text: str) -> None:
    try:
        parse_size(text)
    except ParamError:
        pass


@given(st.sampled_from(["stack", "minheap", "heap", "tcs", "mprotect", "dlopen", "xfrm", "isvsvn", "isvprodid",
                        "production"]), st.text(max_size=10))
def test_parse_value_only_param_errors(name: str, text: str) -> None:
    try:
        parse_value(name, text)
    except ParamError as error:
        assert error.message


def test_defaults() -> None:
    params = resolve_params({})
    assert (params.stack, params.minheap, params.heap, params.tcs) == (2 * MIB, 20 * MIB, 64 * MIB, 8)
    assert (params.mprotect, params.dlopen, params.xfrm, params.isvsvn, params.isvprodid) == (0, 0, 3, 0, 0)
    assert params.production is False and params.key is None
    assert all(params.source(name) == "default" for name in params.values())


@pytest.mark.parametrize("flags, fragment", [
    ({"minheap": "128M", "heap": "64M"}, "--minheap"),
    ({"tcs": "0"}, "--tcs"),
    ({"isvsvn": "65536"}, "--isvsvn"),
    ({"isvprodid": "70000"}, "--isvprodid"),
    ({"xfrm": "0x1"}, "x87|SSE"),
    ({"xfrm": "0x100003"}, "unknown"),
    ({"xfrm": "0x0B"}, "MPX"),
    ({"xfrm": "0x23"}, "AVX-512"),
    ({"xfrm": "0x20003"}, "AMX"),
    ({"heap": "12Q"}, "--heap"),
    ({"stack": "-2M"}, "negative"),
    ({"tcs": "-1"}, "negative"),
    ({"stack": "1000"}, "4 KiB"),
    ({"mprotect": "2"}, "--mprotect"),
    ({"dlopen": "3"}, "--dlopen"),
    ({"production": "maybe"}, "--production"),
])
def test_invalid_values_name_the_flag(flags: dict, fragment: str) -> None:
    with pytest.raises(ParamError) as info:
        resolve_params(flags)
    assert fragment in info.value.message
    assert "\n" not in info.value.message


def test_environment_only_with_env_and_flags_win() -> None:
    environ = {"SCONE_HEAP": "128M", "SCONE_TCS": "4", "SCONE_ALLOW_DLOPEN": "2", "SCONE_PRODUCTION": "1",
               "SCONE_XFRM": "0x7", "SCONE_MIN_HEAP": "32M", "SCONE_STACK": "1M"}
    assert resolve_params({}, environ=environ, use_env=False).heap == 64 * MIB
    params = resolve_params({"tcs": "16"}, environ=environ, use_env=True)
    assert params.heap == 128 * MIB and params.source("heap") == "env:SCONE_HEAP"
    assert params.tcs == 16 and params.source("tcs") == "flag"
    assert params.dlopen == 2 and params.production is True and params.xfrm == 7
    assert params.minheap == 32 * MIB and params.stack == MIB
    assert params.source("stack") == "env:SCONE_STACK"
    assert params.source("isvsvn") == "default"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ParamError) as info:
        resolve_params({}, environ={"SCONE_HEAP": "lots"}, use_env=True)
    assert "SCONE_HEAP" in info.value.message


def test_with_value_and_differences() -> None:
    params = Params()
    edited = params.with_value("tcs", "9")
    assert edited.tcs == 9 and edited.source("tcs") == "flag"
    assert params.differences(edited) == ["tcs"]
    with pytest.raises(ParamError):
        params.with_value("minheap", "1G")


def test_derived_policies() -> None:
    assert not Params().heap_executable
    assert Params(mprotect=1).heap_executable and Params(dlopen=1).heap_executable
    assert Params().xfrm_mask == 0xFFFFFFFFFFFFFF1B
    assert Params(xfrm=0x60003).xfrm_mask == 0xFFFFFFFFFFFFFF1B | 0x60000
