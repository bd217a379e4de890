"""Enclave parameters (scone-signer compatible): parsing, validation and provenance.

Every effective value remembers where it came from: the built-in default, a ``SCONE_*``
environment variable (only when ``--env`` is given), a command-line flag, or the
parameters signed into a binary. Invalid values raise :class:`~core.errors.ParamError`
with one line naming the flag and the rule. This module never prints and never touches
the file system (``--key`` is kept as a path string).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.errors import ParamError

PAGE_SIZE = 4096
KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
MAX_SIZE = 1 << 40  # 1 TiB: anything larger is a typo, not an enclave

# Sources of a value, shown as badges in the UI.
SOURCE_DEFAULT = "default"
SOURCE_ENV = "env"
SOURCE_FLAG = "flag"
SOURCE_SIGNED = "signed"

# XFRM (SPEC §2.6): XCR0 layout.
XFRM_LEGACY = 0x3  # x87 | SSE, always required
XFRM_AVX = 0x4
XFRM_MPX = 0x18
XFRM_AVX512 = 0xE0
XFRM_PKRU = 0x200
XFRM_AMX = 0x60000
XFRM_KNOWN = XFRM_LEGACY | XFRM_AVX | XFRM_MPX | XFRM_AVX512 | XFRM_PKRU | XFRM_AMX
DEFAULT_XFRM_MASK = 0xFFFFFFFFFFFFFF1B  # SDK default: AVX/AVX-512 left to the loader


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """Description of one parameter: its flag, variable, default and meaning."""

    name: str  # attribute name on Params
    flag: str  # command-line flag
    env: str  # SCONE_* environment variable
    kind: str  # 'size' | 'int' | 'choice' | 'xfrm' | 'bool' | 'path'
    default: Any
    affects_mrenclave: bool  # False: only SIGSTRUCT fields change
    help: str
    choices: tuple[int, ...] = ()
    maximum: int | None = None


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("stack", "--stack", "SCONE_STACK", "size", 2 * MIB, True,
              "stack size of every thread (bytes; K/M/G suffixes)"),
    ParamSpec("minheap", "--minheap", "SCONE_MIN_HEAP", "size", 20 * MIB, True,
              "heap committed at start under EDMM (the rest is added at run time)"),
    ParamSpec("heap", "--heap", "SCONE_HEAP", "size", 64 * MIB, True,
              "maximum heap size (all of it is added at start under SGX1)"),
    ParamSpec("tcs", "--tcs", "SCONE_TCS", "int", 8, True,
              "number of thread control structures (threads that may enter the enclave)",
              maximum=4096),
    ParamSpec("mprotect", "--mprotect", "SCONE_MPROTECT", "choice", 0, True,
              "1 = the enclave may make heap pages executable (heap pages are added RWX)", choices=(0, 1)),
    ParamSpec("dlopen", "--dlopen", "SCONE_ALLOW_DLOPEN", "choice", 0, True,
              "0 = no dlopen; 1 = loaded libraries must be authenticated or encrypted; "
              "2 = unprotected libraries allowed (1 and 2 add the heap RWX)", choices=(0, 1, 2)),
    ParamSpec("xfrm", "--xfrm", "SCONE_XFRM", "xfrm", XFRM_LEGACY, True,
              "XFRM bits the enclave requires (hex allowed); x87|SSE (0x3) always; AMX makes SSA frames 3 pages"),
    ParamSpec("isvsvn", "--isvsvn", "SCONE_ISVSVN", "int", 0, False,
              "ISVSVN, security version number (SIGSTRUCT only)", maximum=0xFFFF),
    ParamSpec("isvprodid", "--isvprodid", "SCONE_ISVPRODID", "int", 0, False,
              "ISVPRODID, product id (SIGSTRUCT only)", maximum=0xFFFF),
    ParamSpec("production", "--production", "SCONE_PRODUCTION", "bool", False, False,
              "production enclave: DEBUG cleared and enforced by ATTRIBUTEMASK (SIGSTRUCT only)"),
    ParamSpec("key", "--key", "SCONE_KEY", "path", None, False,
              "RSA-3072 (e=3) PEM signing key; the built-in debug key when absent"),
)
SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}
MRENCLAVE_PARAMETERS = tuple(spec.name for spec in PARAMETERS if spec.affects_mrenclave)
SIGSTRUCT_ONLY_PARAMETERS = tuple(
    spec.name for spec in PARAMETERS if not spec.affects_mrenclave and spec.name != "key"
)

_SIZE_RE = re.compile(r"^\s*(0[xX][0-9a-fA-F]+|[0-9]+)\s*([kKmMgG]?)(?:i?[bB])?\s*$")
_SUFFIX = {"": 1, "k": KIB, "m": MIB, "g": GIB}


def parse_size(text: str, *, what: str = "size") -> int:
    """Parse a size: plain bytes (decimal or 0x hex) or with a K/M/G suffix (powers of two).

    Args:
        text: e.g. ``"4096"``, ``"2M"``, ``"1G"``, ``"0x1000"``, ``"512KiB"``.
        what: the flag name for the error message.

    Returns:
        The size in bytes.

    Raises:
        ParamError: unparseable, negative, or larger than 1 TiB.
    """
    text = str(text)
    if text.strip().startswith("-"):
        raise ParamError(f"{what}: '{text}' is negative; sizes are bytes ≥ 0 (suffixes K, M, G)")
    match = _SIZE_RE.match(text)
    if not match:
        raise ParamError(f"{what}: '{text}' is not a size (use bytes or a K, M, G suffix, e.g. 64M)")
    number, suffix = match.groups()
    value = int(number, 16 if number[:2] in ("0x", "0X") else 10) * _SUFFIX[suffix.lower()]
    if value > MAX_SIZE:
        raise ParamError(f"{what}: '{text}' is larger than 1 TiB")
    return value


def format_size(value: int) -> str:
    """Shortest exact K/M/G form of a size (``2097152`` → ``"2M"``)."""
    for suffix, unit in (("G", GIB), ("M", MIB), ("K", KIB)):
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)


def parse_int(text: str, *, what: str, maximum: int | None = None, minimum: int = 0) -> int:
    """Parse a non-negative integer (decimal or 0x hex), within ``[minimum, maximum]``."""
    text = str(text).strip()
    if not re.fullmatch(r"-?(0[xX][0-9a-fA-F]+|[0-9]+)", text):
        raise ParamError(f"{what}: '{text}' is not a number")
    try:
        value = int(text, 0) if text.lower().lstrip("-").startswith("0x") else int(text, 10)
    except ValueError:
        raise ParamError(f"{what}: '{text}' is not a number") from None
    if value < 0:
        raise ParamError(f"{what}: '{text}' is negative")
    if value < minimum:
        raise ParamError(f"{what}: must be at least {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise ParamError(f"{what}: must be at most {maximum} (got {value})")
    return value


def parse_bool(text: str | bool, *, what: str) -> bool:
    """Parse 1/0, true/false, yes/no, on/off."""
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "n", ""):
        return False
    raise ParamError(f"{what}: '{text}' is not a boolean (use 1/0, true/false)")


def check_xfrm(value: int, *, what: str = "--xfrm") -> int:
    """Validate required XFRM bits against XCR0 rules (SPEC §2.6).

    Raises:
        ParamError: missing x87|SSE, unknown bits, or inconsistent groups.
    """
    if value & XFRM_LEGACY != XFRM_LEGACY:
        raise ParamError(f"{what}: {value:#x} lacks x87|SSE (bits 0 and 1, 0x3), which every enclave needs")
    unknown = value & ~XFRM_KNOWN
    if unknown:
        raise ParamError(f"{what}: {value:#x} has unknown or reserved bits {unknown:#x}")
    if value & XFRM_MPX not in (0, XFRM_MPX):
        raise ParamError(f"{what}: {value:#x} sets only one of the MPX bits 3 and 4; set both (0x18) or neither")
    if value & XFRM_AVX512 and (value & XFRM_AVX512 != XFRM_AVX512 or not value & XFRM_AVX):
        raise ParamError(f"{what}: {value:#x}: AVX-512 needs all of 0xE0 and AVX (0x4)")
    if value & XFRM_AMX not in (0, XFRM_AMX):
        raise ParamError(f"{what}: {value:#x}: AMX needs both TILECFG and TILEDATA (0x60000)")
    return value


def parse_value(name: str, text: Any) -> Any:
    """Parse ``text`` for parameter ``name`` (raises ParamError naming the flag)."""
    spec = SPECS.get(name)
    if spec is None:
        raise ParamError(f"unknown parameter '{name}'")
    what = spec.flag
    if spec.kind == "size":
        return parse_size(text, what=what)
    if spec.kind == "int":
        return parse_int(text, what=what, maximum=spec.maximum)
    if spec.kind == "choice":
        value = parse_int(text, what=what)
        if value not in spec.choices:
            allowed = "|".join(str(c) for c in spec.choices)
            raise ParamError(f"{what}: must be {allowed} (got {value})")
        return value
    if spec.kind == "xfrm":
        return check_xfrm(parse_int(text, what=what), what=what)
    if spec.kind == "bool":
        return parse_bool(text, what=what)
    return str(text) if text not in (None, "") else None


@dataclass(frozen=True, slots=True)
class Params:
    """Effective enclave parameters with the source of each value."""

    stack: int = 2 * MIB  # bytes of stack per thread (EADD only)
    minheap: int = 20 * MIB  # bytes of heap EADDed at start by the EDMM measurement
    heap: int = 64 * MIB  # bytes of heap; all EADDed by the SGX1 measurement
    tcs: int = 8  # number of TCS pages / static threads
    mprotect: int = 0  # 1: heap pages RWX
    dlopen: int = 0  # 0 none, 1 authenticated/encrypted only, 2 unprotected; ≥1: heap RWX
    xfrm: int = XFRM_LEGACY  # required XFRM bits (SIGSTRUCT ATTRIBUTES.XFRM; set in the mask too)
    isvsvn: int = 0  # SIGSTRUCT ISVSVN
    isvprodid: int = 0  # SIGSTRUCT ISVPRODID
    production: bool = False  # SIGSTRUCT: DEBUG cleared and enforced
    key: str | None = None  # path of the PEM signing key; None = built-in debug key
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def source(self, name: str) -> str:
        """Where ``name``'s value came from: default, env (with the variable), flag or signed."""
        return self.sources.get(name, SOURCE_DEFAULT)

    def values(self) -> dict[str, Any]:
        """Parameter values by name (no sources)."""
        return {spec.name: getattr(self, spec.name) for spec in PARAMETERS}

    def with_value(self, name: str, text: Any, *, source: str = SOURCE_FLAG) -> Params:
        """A copy with ``name`` parsed from ``text`` (validated as a whole).

        Raises:
            ParamError: the value or the resulting combination is invalid.
        """
        value = parse_value(name, text)
        sources = dict(self.sources)
        sources[name] = source
        return replace(self, **{name: value}, sources=sources).validated()

    def validated(self) -> Params:
        """Check cross-parameter rules; returns self.

        Raises:
            ParamError: e.g. minheap larger than heap, stack not a page multiple.
        """
        for name in ("stack", "minheap", "heap"):
            value = getattr(self, name)
            if value % PAGE_SIZE:
                raise ParamError(f"--{name}: {value} bytes is not a multiple of 4 KiB (4096)")
        if self.stack < PAGE_SIZE:
            raise ParamError("--stack: must be at least 4K")
        if self.heap < PAGE_SIZE:
            raise ParamError("--heap: must be at least 4K")
        if self.minheap > self.heap:
            raise ParamError(
                f"--minheap: {format_size(self.minheap)} is larger than --heap {format_size(self.heap)}; "
                "minheap must be ≤ heap"
            )
        if self.tcs < 1:
            raise ParamError("--tcs: must be at least 1")
        if self.tcs > SPECS["tcs"].maximum:  # type: ignore[operator]
            raise ParamError(f"--tcs: must be at most {SPECS['tcs'].maximum}")
        if self.isvsvn > 0xFFFF:
            raise ParamError(f"--isvsvn: must be at most 65535 (got {self.isvsvn})")
        if self.isvprodid > 0xFFFF:
            raise ParamError(f"--isvprodid: must be at most 65535 (got {self.isvprodid})")
        if self.mprotect not in (0, 1):
            raise ParamError(f"--mprotect: must be 0|1 (got {self.mprotect})")
        if self.dlopen not in (0, 1, 2):
            raise ParamError(f"--dlopen: must be 0|1|2 (got {self.dlopen})")
        check_xfrm(self.xfrm)
        return self

    @property
    def heap_executable(self) -> bool:
        """Heap pages are RWX when mprotect=1 or dlopen≥1."""
        return bool(self.mprotect) or self.dlopen >= 1

    @property
    def xfrm_mask(self) -> int:
        """ATTRIBUTEMASK.XFRM: the SDK default mask plus every required bit."""
        return DEFAULT_XFRM_MASK | self.xfrm

    def differences(self, other: Params) -> list[str]:
        """Names of parameters whose values differ (in PARAMETERS order)."""
        return [spec.name for spec in PARAMETERS if getattr(self, spec.name) != getattr(other, spec.name)]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{name: {"value": v, "source": s}}``."""
        return {name: {"value": value, "source": self.source(name)} for name, value in self.values().items()}


def resolve_params(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    use_env: bool = False,
    base: Params | None = None,
) -> Params:
    """Effective parameters: defaults (or ``base``), then ``SCONE_*`` variables, then flags.

    Args:
        flags: values given on the command line by parameter name (``None`` = not given).
        environ: the environment (only read when ``use_env``).
        use_env: scone-signer's ``--env``: read the ``SCONE_*`` variables.
        base: starting values (e.g. the signed parameters) instead of the defaults.

    Returns:
        Validated :class:`Params`.

    Raises:
        ParamError: the first invalid value, naming its flag or variable.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = dict(base.sources) if base is not None else {}
    if base is not None:
        values.update(base.values())
    if use_env and environ is not None:
        for spec in PARAMETERS:
            text = environ.get(spec.env)
            if text is None or text == "":
                continue
            try:
                values[spec.name] = parse_value(spec.name, text)
            except ParamError as error:
                raise ParamError(error.message.replace(spec.flag, f"{spec.env} (environment)", 1)) from None
            sources[spec.name] = f"{SOURCE_ENV}:{spec.env}"
    for name, text in (flags or {}).items():
        if text is None or (name == "production" and text is False):
            continue
        values[name] = parse_value(name, text)
        sources[name] = SOURCE_FLAG
    known = {f.name for f in fields(Params)} - {"sources"}
    params = Params(**{k: v for k, v in values.items() if k in known}, sources=sources)
    return params.validated()
