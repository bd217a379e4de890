"""What-if for Intel SGX SDK enclaves: the MRENCLAVE ``sgx_sign`` would produce for an edited config.

Given an SDK enclave (the signed ``enclave.signed.so`` or the plain ``enclave.so``) and an
``Enclave.config.xml`` (or the same parameters as values), :func:`predict` computes what
``sgx_sign`` of the enclave's own SDK release would write and measure (``SDK-WHATIF.md`` §7):

1. the release, from the ``SGX_TSTDC_VERSION`` marker (or ``release=``), and its rules
   (:class:`ReleaseProfile`); releases never checked against ``sgx_sign`` are refused by
   name, or answered and marked unverified when their ``global_data_t`` is known from the
   headers;
2. the config, parsed and checked as ``sgx_sign`` does (refusals say why in words);
3. the primary layout (``core.sdk_config.derive_layout``);
4. the 72-byte TCS template (OENTRY = ``enclave_entry`` from the symbol table);
5. the ``g_global_data`` template of that release (:func:`global_data_table`), from zero or
   edited over the signed enclave's patch entry 0;
6. the patched image and the loader's record stream (``core.sdk_loader``), split so that
   every image page before ``g_global_data`` keeps a config-independent content key: a
   :class:`~core.measure.Measurer` resumes from its checkpoint at ``g_global_data``.

:class:`SdkWhatIf` keeps one enclave open with its measurer for live use (TUI, search);
:func:`search_sdk_parameters` looks for a configuration that reproduces a target MRENCLAVE;
:func:`compare_whatifs` names what differs between two configurations; :func:`infer_config`
recovers a signed enclave's configuration from its metadata and ``g_global_data`` template.

This module never prints, never writes files and never imports a UI.
"""

from __future__ import annotations

import itertools
import re
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from core.elf import ElfImage, Symbol
from core.errors import MeasurementCancelled, SdkError
from core.fieldtable import FieldTable
from core.measure import Measurement, Measurer, ProgressCallback
from core.records import PAGE_SIZE, MeasurementPlan, PageRun, content_key_for_bytes
from core.sdk import SdkEnclave
from core.sdk_config import (
    ELEMENTS,
    RELEASE_FAMILIES,
    DerivedLayout,
    SdkConfig,
    compare_layout,
    derive_layout,
    load_config,
    parse_config,
)
from core.sdk_loader import SdkLoad, build_sdk_plan
from core.sdk_metadata import (
    LAYOUT_ENTRY_SIZE,
    LAYOUT_ENTRY_TABLE,
    LAYOUT_GROUP_TABLE,
    TCS_TABLE,
    TCS_TEMPLATE_SIZE,
    LayoutEntry,
    LayoutGroup,
    MetadataBlock,
    build_block,
    build_note,
    pack_layout_table,
    parse_sgxmeta,
    tcs_template_offset,
)

__all__ = [
    "CHECKED_RELEASES",
    "ConfigRefused",
    "GlobalDataField",
    "ReleaseProfile",
    "SdkSearchResult",
    "SdkWhatIf",
    "UnsupportedRelease",
    "WhatIf",
    "WhatIfDifference",
    "build_global_data",
    "build_tcs_template",
    "compare_whatifs",
    "config_from_settings",
    "config_xml",
    "decode_global_data",
    "global_data_bytes",
    "global_data_layout",
    "global_data_symbol",
    "global_data_table",
    "infer_config",
    "predict",
    "release_profile",
    "search_sdk_parameters",
]

# --------------------------------------------------------------------------------------------
# Public API (kept stable: core/sdk_writer.py and the TUI build on it)
# --------------------------------------------------------------------------------------------
#
#   predict(enclave, config, *, release=None, template="auto", measure=True, measurer=None,
#           on_progress=None, cancel=None) -> WhatIf
#       enclave: SdkEnclave | ElfImage | path (signed or unsigned); config: SdkConfig | XML text |
#       Path | {element: value}. Raises ConfigRefused (sgx_sign refuses the config),
#       UnsupportedRelease (release not modelled), SdkError (not an SDK enclave, ...).
#   WhatIf: profile (ReleaseProfile), config, settings, layout (DerivedLayout: primary, compat,
#       enclave_size, ssa_frame_size, sgx2), tcs_template (72 B), global_data (bytes, the patch-0
#       content), global_data_fields (decoded on access), global_data_symbol (GlobalDataSymbol: rva, file_offset,
#       size), patches ((file offset, bytes) in sgx_sign's order), xsave_size, edmm_bk_overhead,
#       load (SdkLoad: plan, rows, regions), plan, measurement, mrenclave (hex), verified, notes.
#   SdkWhatIf.open(path, release=None) / SdkWhatIf(enclave): live session with checkpoints;
#       .predict(config, ...) -> WhatIf; .baseline() -> SdkConfig; .explain(target, ...).
#   build_tcs_template(image, profile, settings, layout) -> bytes (72)
#   global_data_bytes(profile, settings, layout, tcs_template, image, *, base=None) -> bytes
#   build_global_data(...same...) -> (bytes, fields); decode_global_data(profile, data) -> fields
#   infer_config(session) -> SdkConfig; compare_whatifs(a, b) -> WhatIfDifference;
#   search_sdk_parameters(session, target, ...) -> SdkSearchResult; config_xml(config) -> str

CHECKED_RELEASES: Final = ("1.8", "2.0", "2.2", "2.8", "2.13", "2.25", "2.26")
"""SDK releases whose ``sgx_sign`` reproduced every MRENCLAVE (SDK-WHATIF.md §8)."""

_MASK64: Final = (1 << 64) - 1
GPRSGX_SIZE: Final = 184  # bytes of the SSA's GPR area at the end of each frame
ELF64_HEADER_PATCHES: Final = ((0x3C, 2), (0x28, 8), (0x3E, 2))  # e_shnum, e_shoff, e_shstrndx (sgx_sign order)
TEMPLATE_MODES: Final = ("auto", "original", "zero")


class ConfigRefused(SdkError):
    """``sgx_sign`` would refuse this configuration (the message says why)."""

    default_title = "sgx_sign refuses this configuration"


class UnsupportedRelease(SdkError):
    """The enclave's SDK release is not one ensign can predict (the message names it)."""

    default_title = "Unsupported Intel SGX SDK release"


# --------------------------------------------------------------------------------------------
# Releases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReleaseProfile:
    """Which ``sgx_sign`` rules and which ``global_data_t`` apply to one SDK release."""

    release: str  # as detected or given, e.g. "2.26.100.0" or "2.26"
    version: str  # "major.minor", e.g. "2.26"
    family: str  # layout rule family (core.sdk_config.RELEASE_FAMILIES)
    struct: str  # global_data_t layout: "1.8", "2.0", "2.8", "2.13" or "2.25"
    verified: bool  # True when this release was checked against sgx_sign (CHECKED_RELEASES)
    note: str  # why the answer is unverified ("" when verified)

    @property
    def label(self) -> str:
        """``'SDK 2.26'`` (plus ``' (unverified)'`` when not checked against sgx_sign)."""
        return f"SDK {self.version}" + ("" if self.verified else " (unverified)")


def _release_numbers(release: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)?\s*", release)
    if not match:
        raise UnsupportedRelease(f"'{release}' is not an SDK release (expected X.Y, e.g. 2.26)")
    patch = int(match.group(3) or 0)
    return int(match.group(1)), int(match.group(2)), patch - 100 if patch >= 100 else patch


def release_profile(release: str | None) -> ReleaseProfile:
    """The rules of an SDK release (``SGX_TSTDC_VERSION`` string or ``X.Y``).

    Checked releases (:data:`CHECKED_RELEASES`) are verified. Releases whose
    ``global_data_t`` and layout rules SDK-WHATIF.md gives from the headers (2.1, 2.3–2.5,
    2.9–2.12, 2.27 and later 2.x) are answered and marked unverified.

    Raises:
        UnsupportedRelease: no release known, or one whose structures ensign does not model
            (1.x other than 1.8, 2.6–2.7, 2.14–2.24), naming the release.
    """
    if not release:
        raise UnsupportedRelease(
            "the enclave carries no SGX_TSTDC_VERSION marker, so its SDK release is unknown; "
            "give the release that signs it (--release X.Y)"
        )
    major, minor, patch = _release_numbers(release)
    version = f"{major}.{minor}"
    unverified = "SDK {} was not checked against sgx_sign; its rules come from the SDK headers ({})"
    if major == 1 and minor == 8:
        return ReleaseProfile(release, version, "1.8", "1.8", True, "")
    if major == 2:
        if minor == 0:
            return ReleaseProfile(release, version, "2.0", "2.0", True, "")
        if minor == 1:
            family = "2.2" if patch >= 3 else "2.0"
            return ReleaseProfile(release, version, family, "2.0", False,
                                  unverified.format(version, f"{family} thread scheme, 2.0 global_data_t"))
        if minor == 2:
            return ReleaseProfile(release, version, "2.2", "2.0", True, "")
        if 3 <= minor <= 5:
            return ReleaseProfile(release, version, "2.2", "2.0", False,
                                  unverified.format(version, "2.2 rules, 2.0 global_data_t"))
        if minor == 8:
            return ReleaseProfile(release, version, "2.8", "2.8", True, "")
        if minor == 9:
            struct_name = "2.13" if patch >= 1 else "2.8"
            return ReleaseProfile(release, version, "2.8", struct_name, False,
                                  unverified.format(version, f"2.8 reserved-memory rules, {struct_name} global_data_t"))
        if 10 <= minor <= 12:
            return ReleaseProfile(release, version, "2.13", "2.13", False,
                                  unverified.format(version, "2.13 rules and global_data_t"))
        if minor == 13:
            return ReleaseProfile(release, version, "2.13", "2.13", True, "")
        if minor in (25, 26):
            return ReleaseProfile(release, version, "2.25", "2.25", True, "")
        if minor > 26:
            return ReleaseProfile(release, version, "2.25", "2.25", False,
                                  unverified.format(version, "2.25 rules and global_data_t"))
    raise UnsupportedRelease(
        f"SDK {version} ({release}) is not supported: ensign reproduces sgx_sign of SDK "
        f"{', '.join(CHECKED_RELEASES)} (and answers 2.1, 2.3-2.5, 2.9-2.12 and 2.27+ unverified); "
        f"the global_data_t of SDK {version} is not modelled"
    )


# --------------------------------------------------------------------------------------------
# global_data_t and thread_data_t (SDK-WHATIF.md §3)
# --------------------------------------------------------------------------------------------


def _td_rows(size: int, base: int) -> list[tuple[str, int, str]]:
    """thread_data_t rows at ``base``: 152 B (1.x), 160 B (2.0-2.19) or 192 B (2.20+)."""
    rows = [
        ("td.self_addr", 0, "<Q"),  # TCS-relative: the last TD page
        ("td.last_sp", 8, "<Q"),
        ("td.stack_base_addr", 16, "<Q"),
        ("td.stack_limit_addr", 24, "<Q"),
        ("td.first_ssa_gpr", 32, "<Q"),
        ("td.stack_guard", 40, "<Q"),  # runtime, 0 in the template
        ("td.flags", 48, "<Q"),
        ("td.ssa_frame_size" if size == 152 else "td.xsave_size", 56, "<Q"),
        ("td.last_error", 64, "<Q"),  # runtime
        ("td.m_next", 72, "<Q"),  # runtime
    ]
    if size == 192:
        rows += [
            ("td.aex_runtime", 80, "8s"),  # AEX-notify runtime state, 0 in the template
            ("td.first_ssa_xsave", 88, "<Q"),
            ("td.aex_runtime2", 96, "8s"),
            ("td.tls_addr", 104, "<Q"),
            ("td.tls_array", 112, "<Q"),
            ("td.exception_flag", 120, "<Q"),
            ("td.cxx_thread_info", 128, "48s"),
            ("td.stack_commit_addr", 176, "<Q"),
            ("td.aex_notify_runtime", 184, "8s"),
        ]
    else:
        rows += [
            ("td.tls_addr", 80, "<Q"),
            ("td.tls_array", 88, "<Q"),
            ("td.exception_flag", 96, "<Q"),
            ("td.cxx_thread_info", 104, "48s"),
        ]
        if size == 160:
            rows.append(("td.stack_commit_addr", 152, "<Q"))
    return [(name, base + offset, fmt) for name, offset, fmt in rows]


def _table(name: str, size: int, rows: list[tuple[str, int, str]]) -> FieldTable:
    return FieldTable(name, size, tuple(rows), error=SdkError)


_GLOBAL_DATA_TABLES: Final[dict[str, FieldTable]] = {
    "1.8": _table("global_data_t (SDK 1.8)", 184, [
        ("enclave_size", 0, "<Q"), ("heap_offset", 8, "<Q"), ("heap_size", 16, "<Q"),
        ("thread_policy", 24, "<I"), ("padding", 28, "4s"),
        *_td_rows(152, 32),
    ]),
    "2.0": _table("global_data_t (SDK 2.0-2.5)", 1488, [
        ("enclave_size", 0, "<Q"), ("heap_offset", 8, "<Q"), ("heap_size", 16, "<Q"),
        ("thread_policy", 24, "<Q"),
        *_td_rows(160, 32),
        ("tcs_template", 192, "72s"), ("layout_entry_num", 264, "<I"), ("padding", 268, "4s"),
        ("layout_table", 272, f"{38 * 32}s"),
    ]),
    "2.8": _table("global_data_t (SDK 2.8-2.9)", 1648, [
        ("enclave_size", 0, "<Q"), ("heap_offset", 8, "<Q"), ("heap_size", 16, "<Q"),
        ("rsrv_offset", 24, "<Q"), ("rsrv_size", 32, "<Q"), ("rsrv_executable", 40, "<Q"),
        ("thread_policy", 48, "<Q"), ("tcs_max_num", 56, "<Q"),
        *_td_rows(160, 64),
        ("tcs_template", 224, "72s"), ("layout_entry_num", 296, "<I"), ("padding", 300, "4s"),
        ("layout_table", 304, f"{42 * 32}s"),
    ]),
    "2.13": _table("global_data_t (SDK 2.9.1-2.13)", 1656, [
        ("sdk_version", 0, "<Q"), ("enclave_size", 8, "<Q"), ("heap_offset", 16, "<Q"), ("heap_size", 24, "<Q"),
        ("rsrv_offset", 32, "<Q"), ("rsrv_size", 40, "<Q"), ("rsrv_executable", 48, "<Q"),
        ("thread_policy", 56, "<Q"), ("tcs_max_num", 64, "<Q"),
        *_td_rows(160, 72),
        ("tcs_template", 232, "72s"), ("layout_entry_num", 304, "<I"), ("padding", 308, "4s"),
        ("layout_table", 312, f"{42 * 32}s"),
    ]),
    "2.25": _table("global_data_t (SDK 2.25+)", 1768, [
        ("sdk_version", 0, "<Q"), ("enclave_size", 8, "<Q"), ("heap_offset", 16, "<Q"), ("heap_size", 24, "<Q"),
        ("rsrv_offset", 32, "<Q"), ("rsrv_size", 40, "<Q"), ("rsrv_executable", 48, "<Q"),
        ("thread_policy", 56, "<Q"), ("tcs_max_num", 64, "<Q"), ("tcs_num", 72, "<Q"),
        *_td_rows(192, 80),
        ("tcs_template", 272, "72s"), ("layout_entry_num", 344, "<I"), ("padding", 348, "4s"),
        ("layout_table", 352, f"{43 * 32}s"),
        ("enclave_image_address", 1728, "<Q"), ("elrange_start_address", 1736, "<Q"),
        ("elrange_size", 1744, "<Q"), ("edmm_bk_overhead", 1752, "<Q"),
        ("fips_on", 1760, "<I"), ("reserved2", 1764, "4s"),
    ]),
}

# Fields sgx_sign sets (SDK-WHATIF.md §3); every other field of the template is 0.
_SET_FIELDS: Final = frozenset({
    "enclave_size", "heap_offset", "heap_size", "rsrv_offset", "rsrv_size", "rsrv_executable",
    "thread_policy", "tcs_max_num", "tcs_num", "td.self_addr", "td.last_sp", "td.stack_base_addr",
    "td.stack_limit_addr", "td.first_ssa_gpr", "td.flags", "td.ssa_frame_size", "td.xsave_size",
    "td.first_ssa_xsave", "td.tls_addr", "td.tls_array", "tcs_template", "layout_entry_num",
    "layout_table", "edmm_bk_overhead", "fips_on",
})


def global_data_table(profile: ReleaseProfile | str) -> FieldTable:
    """The ``global_data_t`` field table of a release (or a struct name such as ``'2.25'``)."""
    name = profile.struct if isinstance(profile, ReleaseProfile) else profile
    return _GLOBAL_DATA_TABLES[name]


@dataclass(frozen=True, slots=True)
class GlobalDataField:
    """One field of a ``g_global_data`` template, for display and diffs."""

    name: str  # field name ("heap_size", "td.self_addr", "layout_table[3]", ...)
    offset: int  # bytes from the start of g_global_data
    size: int  # bytes
    value: int | bytes  # integer fields as int, blobs (TCS template) as bytes
    text: str  # the value as shown ("0x100000", "HEAP_MIN 1 pages @0x51000 ...")


@dataclass(frozen=True, slots=True)
class GlobalDataSymbol:
    """Where the ``g_global_data`` template is copied (patch entry 0)."""

    rva: int  # st_value of g_global_data (bytes)
    file_offset: int  # file offset of the symbol's bytes (patch dst)
    size: int  # st_size (bytes)


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhatIf:
    """Everything ``sgx_sign`` of the enclave's release would derive from one configuration."""

    path: str  # the enclave file
    profile: ReleaseProfile  # release rules applied
    config: SdkConfig  # the configuration as given
    settings: dict[str, int]  # effective values (defaults filled in)
    layout: DerivedLayout  # primary (+ compat) layout, enclave size, SSA frame size, sgx2
    tcs_template: bytes  # the 72-byte TCS template (metadata and g_global_data)
    global_data: bytes  # the g_global_data template (patch entry 0's content)
    global_data_symbol: GlobalDataSymbol  # where patch entry 0 writes it
    patches: tuple[tuple[int, bytes], ...]  # (file offset, content) in sgx_sign's patch-table order
    xsave_size: int  # XSAVE area bytes (metadata max_save_buffer_size for 2.x)
    edmm_bk_overhead: int  # EMM bookkeeping reserve in USER_REGION (bytes; 0 without SGX2 metadata)
    template_source: str  # "original" (edited over the signed template) or "zero"
    load: SdkLoad  # the loader's plan, expanded layout rows and regions
    measurement: Measurement | None  # None when predict(measure=False)
    notes: tuple[str, ...]  # assumptions and unverified parts

    @property
    def plan(self) -> MeasurementPlan:
        """ECREATE and every EADD/EEXTEND, in loader order."""
        return self.load.plan

    @property
    def enclave_size(self) -> int:
        """SECS.SIZE (bytes)."""
        return self.layout.enclave_size

    @property
    def ssa_frame_size(self) -> int:
        """SECS.SSAFRAMESIZE (pages)."""
        return self.layout.ssa_frame_size

    @property
    def family(self) -> str:
        """Layout rule family."""
        return self.profile.family

    @property
    def verified(self) -> bool:
        """True when the release was checked against sgx_sign."""
        return self.profile.verified

    @property
    def mrenclave(self) -> str:
        """The predicted MRENCLAVE as hex ('' when not measured)."""
        return self.measurement.hex if self.measurement is not None else ""

    @property
    def global_data_fields(self) -> tuple[GlobalDataField, ...]:
        """The g_global_data template decoded field by field (the layout copy entry by entry)."""
        return decode_global_data(self.profile, self.global_data)

    @property
    def tcs_content_offset(self) -> int:
        """``content_offset`` of the TCS entries as sgx_sign writes them (a primary-metadata offset)."""
        for item in self.layout.primary:
            if isinstance(item, LayoutEntry) and item.content_offset:
                return item.content_offset
        return 0


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def _find_symbol(image: ElfImage, name: str) -> Symbol | None:
    found = [symbol for symbol in image.symbols if symbol.name == name and symbol.section_index != 0]
    found.sort(key=lambda symbol: symbol.table != ".dynsym")
    return found[0] if found else None


def global_data_symbol(image: ElfImage) -> GlobalDataSymbol:
    """Locate ``g_global_data`` (``.dynsym``, else ``.symtab``) and its file offset.

    Raises:
        SdkError: no such symbol, or it does not lie in the file bytes of a PT_LOAD.
    """
    symbol = _find_symbol(image, "g_global_data")
    if symbol is None:
        raise SdkError(f"{image.path}: no g_global_data symbol: not an Intel SGX SDK enclave (or stripped of it)")
    for segment in image.load_segments:
        if segment.vaddr <= symbol.value and symbol.value + symbol.size <= segment.vaddr + segment.filesz:
            return GlobalDataSymbol(symbol.value, segment.offset + symbol.value - segment.vaddr, symbol.size)
    raise SdkError(f"{image.path}: g_global_data at {symbol.value:#x} does not lie in the file bytes of a PT_LOAD")


def _geometry(profile: ReleaseProfile, settings: Mapping[str, int], layout: DerivedLayout, image: ElfImage) -> dict[str, int]:
    """s, guards, TD pages, TLS size, xsave size and the TCS-relative thread offsets (§3)."""
    ssa = layout.ssa_frame_size
    guard = 1 if profile.family == "1.8" else 16
    tls = image.tls
    tls_size = 0
    if tls is not None:
        tls_size = -(-tls.memsz // tls.align) * tls.align if tls.align > 1 else tls.memsz
    td_pages = 1 + -(-tls_size // PAGE_SIZE)
    if profile.family == "1.8":
        xsave = ssa
    elif profile.struct == "2.0":
        xsave = 832
    elif profile.family == "2.25":
        if settings.get("AMX", 0) in (1, 2):
            xsave = 11008
        elif settings.get("PKRU", 0) in (1, 2):
            xsave = 2752
        else:
            xsave = 2688
    else:
        xsave = 2688
    self_addr = (1 + 2 * ssa + guard + td_pages - 1) * PAGE_SIZE
    return {"ssa": ssa, "guard": guard, "td_pages": td_pages, "tls_size": tls_size, "xsave": xsave,
            "self_addr": self_addr}


def build_tcs_template(image: ElfImage, profile: ReleaseProfile, settings: Mapping[str, int], layout: DerivedLayout) -> bytes:
    """The 72-byte TCS template ``sgx_sign`` writes (SDK-WHATIF.md §5).

    OENTRY is ``enclave_entry`` (else ``e_entry``); OSSA 0x1000 and OFSBASE/OGSBASE = the last
    TD page, all relative to the TCS page; NSSA 2; FS/GS limits 0xFFFFFFFF; FLAGS bit 1 =
    EnableAEXNotify.
    """
    geometry = _geometry(profile, settings, layout, image)
    entry = _find_symbol(image, "enclave_entry")
    return TCS_TABLE.pack({
        "reserved0": 0,
        "flags": 2 if settings.get("EnableAEXNotify", 0) else 0,
        "ossa": PAGE_SIZE,
        "cssa": 0,
        "nssa": 2,
        "oentry": entry.value if entry is not None else image.entry,
        "reserved1": 0,
        "ofs_base": geometry["self_addr"],
        "ogs_base": geometry["self_addr"],
        "ofs_limit": 0xFFFFFFFF,
        "ogs_limit": 0xFFFFFFFF,
    })


def _find(layout: DerivedLayout, layout_id: int) -> LayoutEntry | None:
    for item in layout.primary:
        if isinstance(item, LayoutEntry) and item.id == layout_id:
            return item
    return None


def _rsrv_size(profile: ReleaseProfile, settings: Mapping[str, int], layout: DerivedLayout) -> int:
    """ReservedMemInitSize, plus SDK 2.6-2.9's growth when RSRV_MIN/RSRV_INIT ends the layout (§4.3)."""
    init = settings.get("ReservedMemInitSize", 0)
    last = layout.primary[-1]
    if profile.family == "2.8" and isinstance(last, LayoutEntry) and last.id in (20, 21):
        expected = (settings.get("ReservedMemMinSize", 0) if last.id == 20
                    else init - settings.get("ReservedMemMinSize", 0))
        return init + last.page_count * PAGE_SIZE - expected
    return init


def build_global_data(
    profile: ReleaseProfile,
    settings: Mapping[str, int],
    layout: DerivedLayout,
    tcs_template: bytes,
    image: ElfImage,
    *,
    base: bytes | None = None,
) -> tuple[bytes, tuple[GlobalDataField, ...]]:
    """The ``g_global_data`` template ``sgx_sign`` of ``profile`` writes, and its decoded fields.

    See :func:`global_data_bytes` (same arguments) for the rules.
    """
    data = global_data_bytes(profile, settings, layout, tcs_template, image, base=base)
    return data, decode_global_data(profile, data)


def global_data_bytes(
    profile: ReleaseProfile,
    settings: Mapping[str, int],
    layout: DerivedLayout,
    tcs_template: bytes,
    image: ElfImage,
    *,
    base: bytes | None = None,
) -> bytes:
    """The ``g_global_data`` template ``sgx_sign`` of ``profile`` writes (SDK-WHATIF.md §3, §4.4).

    Args:
        profile: the release rules.
        settings: effective config values.
        layout: the derived layout (its primary table is copied for SDK 2.x).
        tcs_template: the 72-byte TCS template.
        image: the enclave image (PT_TLS sizes the TD).
        base: an existing template to edit (patch entry 0 of the signed enclave); every field
            sgx_sign sets is overwritten, the others are kept. None starts from zero.

    Returns:
        The template bytes (``sizeof(global_data_t)`` of the release).

    Raises:
        ConfigRefused: the layout has more entries than the release's copy holds.
        SdkError: ``base`` has the wrong size.
    """
    table = global_data_table(profile)
    if base is not None and len(base) != table.size:
        raise SdkError(f"the signed g_global_data template is {len(base)} bytes; {table.name} is {table.size}")
    values = table.unpack(base) if base is not None else {
        name: (bytes(struct.calcsize("<" + fmt.lstrip("<"))) if fmt.endswith("s") else 0)
        for name, _offset, fmt in table.fields
    }
    geometry = _geometry(profile, settings, layout, image)
    self_addr = geometry["self_addr"]
    stack_base = (-geometry["guard"] * PAGE_SIZE) & _MASK64
    tls_offset = 0x68 if profile.struct == "2.25" else 0x50
    tls_addr = (self_addr - geometry["tls_size"]) if image.tls is not None else self_addr
    family = profile.family
    rsrv_min = _find(layout, 20)
    computed: dict[str, Any] = {
        "enclave_size": layout.enclave_size,
        "heap_offset": layout.image_end,
        "heap_size": settings["HeapMaxSize"] if family == "1.8" else settings["HeapInitSize"],
        "rsrv_offset": rsrv_min.rva if rsrv_min is not None else 0,
        "rsrv_size": _rsrv_size(profile, settings, layout) if rsrv_min is not None else 0,
        "rsrv_executable": settings.get("ReservedMemExecutable", 0) if rsrv_min is not None else 0,
        "thread_policy": settings["TCSPolicy"],
        "tcs_max_num": settings.get("TCSMaxNum", settings["TCSNum"]),
        "tcs_num": settings["TCSNum"],
        "td.self_addr": self_addr,
        "td.last_sp": stack_base,
        "td.stack_base_addr": stack_base,
        "td.stack_limit_addr": (stack_base - settings["StackMaxSize"]) & _MASK64,
        "td.first_ssa_gpr": PAGE_SIZE + geometry["ssa"] * PAGE_SIZE - GPRSGX_SIZE,
        "td.flags": 0,
        "td.ssa_frame_size": geometry["ssa"],
        "td.xsave_size": geometry["xsave"],
        "td.first_ssa_xsave": PAGE_SIZE,
        "td.tls_addr": tls_addr & _MASK64,
        "td.tls_array": (self_addr + tls_offset) & _MASK64,
        "tcs_template": tcs_template,
        "edmm_bk_overhead": _edmm_overhead(settings, layout),
        "fips_on": settings.get("EnableIPPFIPS", 0),
    }
    if "layout_table" in values:
        capacity = struct.calcsize(dict((n, f) for n, _o, f in table.fields)["layout_table"]) // LAYOUT_ENTRY_SIZE
        if len(layout.primary) > capacity:
            raise ConfigRefused(
                f"the layout needs {len(layout.primary)} entries; {profile.label} holds {capacity} "
                "(g_global_data's copy of the layout table; sgx_sign: 'Out of memory')"
            )
        raw = pack_layout_table(layout.primary)
        computed["layout_entry_num"] = len(layout.primary)
        computed["layout_table"] = raw + bytes(capacity * LAYOUT_ENTRY_SIZE - len(raw))
    for name in values:
        if name in computed and name in _SET_FIELDS:
            values[name] = computed[name]
    return table.pack(values)


def _edmm_overhead(settings: Mapping[str, int], layout: DerivedLayout) -> int:
    """edmm_bk_overhead A: USER_REGION pages = (UserRegionSize + A + 0x10000) / 4096 (§4.5)."""
    user_region = _find(layout, 23)
    if user_region is None:
        return 0
    return user_region.page_count * PAGE_SIZE - settings.get("UserRegionSize", 0) - 0x10000


def decode_global_data(profile: ReleaseProfile | str, data: bytes) -> tuple[GlobalDataField, ...]:
    """Decode a ``g_global_data`` template field by field (the layout copy entry by entry).

    Raises:
        SdkError: ``data`` is shorter than the release's ``global_data_t``.
    """
    from core.sdk_config import _describe  # one formatter for layout entries everywhere

    table = global_data_table(profile)
    values = table.unpack(data)
    legacy = table.size == 184
    fields: list[GlobalDataField] = []
    count = values.get("layout_entry_num", 0)
    for name, offset, fmt in table.fields:
        value = values[name]
        size = struct.calcsize("<" + fmt.lstrip("<"))
        if name == "layout_table":
            for index in range(min(count, size // LAYOUT_ENTRY_SIZE)):
                item = _parse_entry(value, index, legacy)
                fields.append(GlobalDataField(f"layout_table[{index}]", offset + index * LAYOUT_ENTRY_SIZE,
                                              LAYOUT_ENTRY_SIZE, value[index * 32 : index * 32 + 32], _describe(item)))
            continue
        if name == "tcs_template":
            tcs = TCS_TABLE.unpack(value)
            text = (f"OENTRY {tcs['oentry']:#x} OSSA {tcs['ossa']:#x} OFSBASE {tcs['ofs_base']:#x} "
                    f"OGSBASE {tcs['ogs_base']:#x} NSSA {tcs['nssa']} FLAGS {tcs['flags']:#x}")
            fields.append(GlobalDataField(name, offset, size, value, text))
            continue
        if isinstance(value, bytes):
            if any(value):
                fields.append(GlobalDataField(name, offset, size, value, value.hex()))
            continue
        fields.append(GlobalDataField(name, offset, size, value, f"{value:#x}"))
    return tuple(fields)


def _parse_entry(table_bytes: bytes, index: int, legacy: bool) -> LayoutEntry | LayoutGroup:
    from core.sdk_metadata import layout_id_name

    position = index * LAYOUT_ENTRY_SIZE
    layout_id = struct.unpack_from("<H", table_bytes, position)[0]
    if layout_id & 0x1000:
        group = LAYOUT_GROUP_TABLE.unpack(table_bytes, position)
        return LayoutGroup(index, layout_id, group["entry_count"], group["load_times"], group["load_step"],
                           layout_id_name(layout_id, legacy=legacy))
    entry = LAYOUT_ENTRY_TABLE.unpack(table_bytes, position)
    return LayoutEntry(index, layout_id, entry["attributes"], entry["page_count"], entry["rva"],
                       entry["content_size"], entry["content_offset"], entry["si_flags"],
                       layout_id_name(layout_id, legacy=legacy))


def global_data_layout(profile: ReleaseProfile | str, data: bytes) -> tuple[LayoutEntry | LayoutGroup, ...]:
    """The primary layout copy held by a ``g_global_data`` template (empty for SDK 1.x)."""
    table = global_data_table(profile)
    values = table.unpack(data)
    if "layout_table" not in values:
        return ()
    count = min(values["layout_entry_num"], len(values["layout_table"]) // LAYOUT_ENTRY_SIZE)
    return tuple(_parse_entry(values["layout_table"], index, False) for index in range(count))


# --------------------------------------------------------------------------------------------
# Config handling
# --------------------------------------------------------------------------------------------


def config_from_settings(values: Mapping[str, int], *, origin: str = "<values>") -> SdkConfig:
    """An :class:`SdkConfig` from ``{element: value}`` (validated like a parsed file).

    Raises:
        SdkError: an unknown element or a value out of range.
    """
    items = []
    for name, value in values.items():
        if name not in ELEMENTS:
            raise SdkError(f"{origin}: unknown Enclave.config.xml element {name}")
        value = int(value)
        if not 0 <= value <= ELEMENTS[name].maximum:
            raise SdkError(f"{origin}: <{name}> {value:#x} is out of range (0..{ELEMENTS[name].maximum:#x})")
        items.append((name, value))
    return SdkConfig(origin=origin, values=tuple(items))


def _as_config(config: SdkConfig | str | bytes | Path | Mapping[str, int]) -> SdkConfig:
    if isinstance(config, SdkConfig):
        return config
    if isinstance(config, Path):
        return load_config(config)
    if isinstance(config, (str, bytes)):
        text = config.decode(errors="replace") if isinstance(config, bytes) else config
        if "<" not in text:
            return load_config(text)
        return parse_config(config, origin="<config text>")
    return config_from_settings(config)


def _release_adjusted(config: SdkConfig, profile: ReleaseProfile) -> SdkConfig:
    """StackMinSize defaults to 0x2000 from SDK 2.4 (SDK-WHATIF.md §4.2), also in the 2.2 family."""
    if profile.family == "2.2" and not config.given("StackMinSize"):
        major, minor, _patch = _release_numbers(profile.release)
        if (major, minor) >= (2, 4):
            return replace(config, values=(*config.values, ("StackMinSize", 0x2000)))
    return config


def _refusals(config: SdkConfig, profile: ReleaseProfile, settings: Mapping[str, int]) -> None:
    """Configurations ensign does not predict (never checked against sgx_sign)."""
    if settings.get("ELRangeSize", 0) or settings.get("EnclaveImageAddress", 0) or settings.get("ELRangeStartAddress", 0):
        raise ConfigRefused(
            f"{config.origin}: ELRANGE (EnclaveImageAddress/ELRangeStartAddress/ELRangeSize) was never checked "
            "against sgx_sign; ensign does not predict it", title="Configuration not predicted")
    if settings.get("EnableOSSLFIPS", 0):
        raise ConfigRefused(
            f"{config.origin}: EnableOSSLFIPS=1 appends the OpenSSL FIPS module to the enclave; ensign does not "
            "predict it", title="Configuration not predicted")
    if settings.get("HW", 0) or settings.get("LaunchKey", 0):
        raise ConfigRefused(
            f"{config.origin}: HW/LaunchKey (launch enclaves) were never checked against sgx_sign; ensign does "
            "not predict them", title="Configuration not predicted")


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


def _synthetic_block(
    profile: ReleaseProfile, layout: DerivedLayout, tcs_template: bytes, patches: Sequence[tuple[int, bytes]]
) -> MetadataBlock:
    """A metadata block holding exactly what the loader needs (the layout, the TCS template, the patches).

    The TCS entries point at where this block keeps the template; the metadata-internal offset
    sgx_sign writes (and g_global_data copies) does not change what the loader measures.
    """
    dirs = 4 if profile.family == "2.25" else 2
    version = (1, 3) if profile.family == "1.8" else (2, 4)
    offset = tcs_template_offset(dirs)
    items = [replace(item, content_offset=offset) if isinstance(item, LayoutEntry) and item.content_offset else item
             for item in layout.primary]
    raw = build_block(version=version, enclave_size=layout.enclave_size, layout=items,
                      ssa_frame_size=layout.ssa_frame_size, tcs_template=tcs_template, patches=list(patches),
                      dir_count=dirs, layout_first=profile.family == "1.8")
    return parse_sgxmeta(build_note([raw], len(raw))).blocks[0]


def _split_at_global_data(
    load: SdkLoad, image: ElfImage, symbol: GlobalDataSymbol, stable: str
) -> SdkLoad:
    """Give the image runs config-independent content keys, split around g_global_data's pages.

    ``build_sdk_plan`` keys image runs by the metadata block, which changes with every config.
    Only the pages under g_global_data depend on the config, so every other image piece gets a
    key made of the file identity, the fixed patches and its position: a Measurer then reuses
    its checkpoint up to the first g_global_data page.
    """
    first_page = symbol.rva & ~(PAGE_SIZE - 1)
    end_page = -(-(symbol.rva + symbol.size) // PAGE_SIZE) * PAGE_SIZE
    runs: list[PageRun] = []
    for run in load.plan.runs:
        key = run.key
        if run.data is None or not (key and key[0] == "sdk-image"):
            runs.append(run)
            continue
        cuts = sorted({run.offset, run.end, *(edge for edge in (first_page, end_page) if run.offset < edge < run.end)})
        for low, high in itertools.pairwise(cuts):
            data = run.data[low - run.offset : high - run.offset]
            inside = low < end_page and high > first_page
            piece_key = content_key_for_bytes(data) if inside else ("sdk-whatif-image", image.identity, stable, low, high)
            runs.append(replace(run, offset=low, pages=(high - low) // PAGE_SIZE, data=data, key=piece_key,
                                checkpoint=high == first_page))  # what-ifs re-hash from g_global_data on
    plan = MeasurementPlan(ssaframesize=load.plan.ssaframesize, size=load.plan.size, runs=tuple(runs))
    return replace(load, plan=plan)


# --------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------


class SdkWhatIf:
    """A live what-if session on one SDK enclave: its image, release rules and measurement checkpoints.

    Thread-safe for one prediction at a time (the TUI runs predictions in a worker).

    Args:
        enclave: the open SDK enclave (signed or unsigned); the session does not close it.
        release: the SDK release that signs (default: the enclave's ``SGX_TSTDC_VERSION``).
        measurer: checkpoint store (default: the enclave's own).

    Raises:
        UnsupportedRelease: the release is unknown or not modelled.
    """

    def __init__(self, enclave: SdkEnclave, *, release: str | None = None, measurer: Measurer | None = None) -> None:
        self.enclave = enclave
        self.profile = release_profile(release or enclave.release)
        self.measurer = measurer if measurer is not None else enclave.measurer
        self._owned = False
        self._lock = threading.Lock()
        self.symbol = global_data_symbol(enclave.image)
        table = global_data_table(self.profile)
        if self.symbol.size and self.symbol.size != table.size:
            raise UnsupportedRelease(
                f"{enclave.path}: g_global_data is {self.symbol.size} bytes but {table.name} is {table.size}: the "
                f"enclave's trusted runtime does not match {self.profile.label} (give the right --release)"
            )

    @classmethod
    def open(cls, path: str | Path, *, release: str | None = None) -> SdkWhatIf:
        """Open an SDK enclave file for what-if predictions (close the session when done).

        Raises:
            ElfFormatError, SdkError, UnsupportedRelease: not an SDK enclave, or release not supported.
        """
        enclave = SdkEnclave.open(path)
        try:
            session = cls(enclave, release=release)
        except BaseException:
            enclave.close()
            raise
        session._owned = True
        return session

    def close(self) -> None:
        """Close the enclave if this session opened it."""
        if self._owned:
            self.enclave.close()

    def __enter__(self) -> SdkWhatIf:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def image(self) -> ElfImage:
        """The enclave image."""
        return self.enclave.image

    def original_template(self) -> bytes | None:
        """Patch entry 0 of the signed enclave (the g_global_data template sgx_sign wrote), if signed."""
        if not self.enclave.signed:
            return None
        block = self.enclave.primary
        patch = block.global_data_template()
        if patch is None or patch.dst != self.symbol.file_offset:
            return None
        return block.blob(patch.src, patch.size, what="g_global_data template")

    def baseline(self) -> SdkConfig:
        """The configuration the enclave was signed with (inferred), or the release's defaults if unsigned."""
        if self.enclave.signed:
            return infer_config(self)
        return SdkConfig(origin="<SDK defaults>", values=())

    def derive(self, config: SdkConfig | str | bytes | Path | Mapping[str, int]) -> tuple[SdkConfig, DerivedLayout]:
        """Parse, check and derive the layout of a configuration (no measurement).

        Raises:
            ConfigRefused: sgx_sign refuses it, or ensign does not predict it.
        """
        parsed = _release_adjusted(_as_config(config), self.profile)
        try:
            layout = derive_layout(self.image, parsed, family=self.profile.family)
        except ConfigRefused:
            raise
        except SdkError as error:
            raise ConfigRefused(error.message) from None
        _refusals(parsed, self.profile, layout.settings)
        return parsed, layout

    def predict(
        self,
        config: SdkConfig | str | bytes | Path | Mapping[str, int],
        *,
        template: str = "auto",
        measure: bool = True,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> WhatIf:
        """What ``sgx_sign`` would derive and measure for ``config`` (see :func:`predict`)."""
        if template not in TEMPLATE_MODES:
            raise SdkError(f"template must be one of {', '.join(TEMPLATE_MODES)}")
        parsed, layout = self.derive(config)
        settings = layout.settings
        image = self.image
        notes = list(layout.notes)
        if not self.profile.verified:
            notes.insert(0, self.profile.note)
        tcs = build_tcs_template(image, self.profile, settings, layout)
        base = self.original_template() if template in ("auto", "original") else None
        if template == "original" and base is None:
            raise SdkError(f"{self.enclave.path}: not signed: there is no original g_global_data template to edit")
        global_data = global_data_bytes(self.profile, settings, layout, tcs, image, base=base)
        patches: list[tuple[int, bytes]] = [(self.symbol.file_offset, global_data)]
        patches += [(offset, bytes(size)) for offset, size in ELF64_HEADER_PATCHES]
        block = _synthetic_block(self.profile, layout, tcs, patches)
        load = build_sdk_plan(image, block)
        stable = f"{self.profile.family}:{len(global_data)}"
        load = _split_at_global_data(load, image, self.symbol, stable)
        geometry = _geometry(self.profile, settings, layout, image)
        measurement = self.measure(load.plan, on_progress=on_progress, cancel=cancel) if measure else None
        return WhatIf(
            path=self.enclave.path,
            profile=self.profile,
            config=parsed,
            settings=settings,
            layout=layout,
            tcs_template=tcs,
            global_data=global_data,
            global_data_symbol=self.symbol,
            patches=tuple(patches),
            xsave_size=geometry["xsave"],
            edmm_bk_overhead=_edmm_overhead(settings, layout),
            template_source="original" if base is not None else "zero",
            load=load,
            measurement=measurement,
            notes=tuple(notes),
        )

    def measure(
        self, plan: MeasurementPlan, *, on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Measurement:
        """Measure a plan with the session's checkpoints (one measurement at a time)."""
        with self._lock:
            return self.measurer.measure(plan, on_progress=on_progress, cancel=cancel)

    def explain(self, target: bytes | str, **options: Any) -> SdkSearchResult:
        """Search SDK parameters for ``target`` (see :func:`search_sdk_parameters`)."""
        return search_sdk_parameters(self, target, **options)


def predict(
    enclave: SdkEnclave | ElfImage | str | Path,
    config: SdkConfig | str | bytes | Path | Mapping[str, int],
    *,
    release: str | None = None,
    template: str = "auto",
    measure: bool = True,
    measurer: Measurer | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> WhatIf:
    """Predict what ``sgx_sign`` of the enclave's SDK release writes and measures for ``config``.

    Args:
        enclave: an open :class:`~core.sdk.SdkEnclave`, a loaded image, or a path; signed or
            unsigned (an ``enclave.so`` straight from the build).
        config: an :class:`SdkConfig`, the XML text, a path, or ``{element: value}``.
        release: the SDK release that signs (``X.Y`` or a full version); default: detected
            from the enclave's ``SGX_TSTDC_VERSION`` marker.
        template: ``"auto"`` edits the signed enclave's g_global_data template when there is
            one, else starts from zero; ``"original"``/``"zero"`` force one (both give the same
            bytes: the template holds nothing the config does not determine).
        measure: False skips hashing (layout, templates and plan only).
        measurer: a :class:`~core.measure.Measurer` whose checkpoints to use (default: the
            enclave's; for live edits keep one :class:`SdkWhatIf` instead).
        on_progress: ``(done, total)`` stream bytes.
        cancel: set to stop the measurement.

    Returns:
        The :class:`WhatIf`: layout, TCS and g_global_data templates, patches, plan and MRENCLAVE.

    Raises:
        ConfigRefused: ``sgx_sign`` would refuse the configuration (or ensign does not predict it).
        UnsupportedRelease: the release is unknown or not modelled.
        SdkError: not an SDK enclave, or corrupt metadata.
        MeasurementCancelled: ``cancel`` was set.
    """
    if isinstance(enclave, SdkEnclave):
        session = SdkWhatIf(enclave, release=release, measurer=measurer)
        return session.predict(config, template=template, measure=measure, on_progress=on_progress, cancel=cancel)
    if isinstance(enclave, ElfImage):
        wrapped = SdkEnclave.from_image(enclave)
        session = SdkWhatIf(wrapped, release=release, measurer=measurer)
        return session.predict(config, template=template, measure=measure, on_progress=on_progress, cancel=cancel)
    with SdkWhatIf.open(enclave, release=release) as session:
        if measurer is not None:
            session.measurer = measurer
        return session.predict(config, template=template, measure=measure, on_progress=on_progress, cancel=cancel)


# --------------------------------------------------------------------------------------------
# Inferring the signed configuration
# --------------------------------------------------------------------------------------------


def infer_config(session: SdkWhatIf) -> SdkConfig:
    """The configuration a signed enclave was signed with, recovered from its metadata and template.

    Recovers the measured elements (heap, stack, threads, policy, pools, reserved memory,
    MiscSelect, AMX/PKRU, AEX-notify, IPP FIPS, UserRegionSize) from the primary layout (the
    copy inside the g_global_data template for SDK 2.x, which keeps what the 1.x compatibility
    block drops) and the template's counters, plus ProdID, ISVSVN, DisableDebug and MiscMask from
    the SIGSTRUCT. Elements equal to the release default are left out, except the usual four
    (TCSNum, TCSPolicy, StackMaxSize, HeapMaxSize).

    Raises:
        SdkError: the enclave is not signed.
    """
    enclave = session.enclave
    block = enclave.primary
    profile = session.profile
    family = profile.family
    sig = block.sigstruct
    template = session.original_template()
    template_values = global_data_table(profile).unpack(template) if template is not None else {}
    primary: Sequence[LayoutEntry | LayoutGroup] = ()
    if template is not None and family != "1.8":
        primary = global_data_layout(profile, template)
    if not primary:
        primary = block.layout
    entries = [item for item in primary if isinstance(item, LayoutEntry)]

    def size_of(layout_id: int) -> int:
        return next((item.page_count * PAGE_SIZE for item in entries if item.id == layout_id), 0)

    values: dict[str, int] = {
        "ProdID": sig.isvprodid,
        "ISVSVN": sig.isvsvn,
        "TCSPolicy": block.tcs_policy,
        "DisableDebug": 1 if sig.attributemask_flags & 2 and not sig.attributes_flags & 2 else 0,
        "MiscSelect": sig.miscselect,
        "MiscMask": sig.miscmask,
    }
    if family == "1.8":
        values["HeapMaxSize"] = size_of(1)
        values["StackMaxSize"] = size_of(5)
        values["TCSNum"] = 1 + sum(item.load_times for item in primary if isinstance(item, LayoutGroup))
    else:
        heap_min = size_of(1)
        values["HeapMinSize"] = heap_min
        values["HeapInitSize"] = heap_min + size_of(2)
        values["HeapMaxSize"] = heap_min + size_of(2) + size_of(3)
        values["StackMinSize"] = size_of(8)
        values["StackMaxSize"] = size_of(8) + size_of(7)
        static_threads = 0
        dynamic_group: LayoutGroup | None = None
        for item in primary:
            if isinstance(item, LayoutEntry):
                static_threads += item.id == 4
                continue
            repeated = primary[item.index - item.entry_count : item.index]
            if any(isinstance(entry, LayoutEntry) and entry.id == 4 for entry in repeated):
                static_threads += item.load_times
            elif any(isinstance(entry, LayoutEntry) and entry.id == 14 for entry in repeated):
                dynamic_group = item
        values["TCSNum"] = static_threads
        values["TCSMinPool"] = block.tcs_min_pool
        if "tcs_max_num" in template_values:
            values["TCSMaxNum"] = template_values["tcs_max_num"]
        elif any(item.id == 14 for item in entries):  # THREAD_GROUP_DYN repeats TCSMaxNum - pool' - 1 times
            pool = min(block.tcs_min_pool, static_threads - 1)
            values["TCSMaxNum"] = pool + 1 + (dynamic_group.load_times if dynamic_group is not None else 0)
        else:
            values["TCSMaxNum"] = static_threads
        rsrv = [item for item in entries if item.id in (20, 21, 22)]
        if rsrv:
            minimum, init_extra, max_extra = size_of(20), size_of(21), size_of(22)
            if family == "2.8" and isinstance(primary[-1], LayoutEntry) and primary[-1].id in (20, 21, 22):
                # SDK 2.6-2.9 grew the last RSRV entry to the power of two; the template keeps the real init
                init = template_values.get("rsrv_size", minimum + init_extra)
                values["ReservedMemMinSize"] = minimum if primary[-1].id != 20 else init
                values["ReservedMemInitSize"] = init
                values["ReservedMemMaxSize"] = init + (max_extra if primary[-1].id != 22 else 0)
            else:
                values["ReservedMemMinSize"] = minimum
                values["ReservedMemInitSize"] = minimum + init_extra
                values["ReservedMemMaxSize"] = minimum + init_extra + max_extra
            values["ReservedMemExecutable"] = 1 if rsrv[0].si_flags & 4 else 0
        if family == "2.25":
            values["MiscSelect"] = block.desired_misc_select
            if block.ssa_frame_size > 1 or block.max_save_buffer_size == 11008:
                values["AMX"] = 1
            elif block.max_save_buffer_size == 2752:
                values["PKRU"] = 1
            tcs = TCS_TABLE.unpack(block.tcs_template() or bytes(TCS_TEMPLATE_SIZE))
            values["EnableAEXNotify"] = 1 if tcs["flags"] & 2 else 0
            values["EnableIPPFIPS"] = 1 if template_values.get("fips_on") else 0
            user_region = next((item for item in entries if item.id == 23), None)
            if user_region is not None:
                user = user_region.page_count * PAGE_SIZE - template_values.get("edmm_bk_overhead", 0) - 0x10000
                values["UserRegionSize"] = max(0, user)
    defaults = SdkConfig(origin="", values=())
    always = ("TCSNum", "TCSPolicy", "StackMaxSize", "HeapMaxSize")
    follows = {"HeapInitSize": "HeapMaxSize", "TCSMaxNum": "TCSNum", "ReservedMemInitSize": "ReservedMemMaxSize"}
    kept = {}
    for name, value in values.items():
        default = values.get(follows[name], 0) if name in follows else defaults.value(name, family)
        if name in always or value != default:
            kept[name] = value
    known = {name for name, element in ELEMENTS.items()
             if RELEASE_FAMILIES.index(element.since) <= RELEASE_FAMILIES.index(family)}
    ordered = {name: kept[name] for name in ELEMENTS if name in kept and name in known}
    return config_from_settings(ordered, origin=f"<signed metadata of {Path(enclave.path).name}>")


# --------------------------------------------------------------------------------------------
# Differences between two configurations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhatIfDifference:
    """What differs between two predictions for the same enclave."""

    settings: tuple[str, ...]  # config elements with different effective values
    ecreate: tuple[str, ...]  # SECS.SIZE / SSAFRAMESIZE lines
    layout: tuple[str, ...]  # primary layout entries that differ
    global_data: tuple[str, ...]  # g_global_data fields that differ
    mrenclave_a: str  # hex ('' if not measured)
    mrenclave_b: str

    @property
    def same_mrenclave(self) -> bool:
        """True when both predictions measure the same."""
        return self.mrenclave_a == self.mrenclave_b


def compare_whatifs(a: WhatIf, b: WhatIf) -> WhatIfDifference:
    """Name the config elements, ECREATE values, layout entries and g_global_data fields that differ."""
    settings = []
    for name in sorted(set(a.settings) | set(b.settings), key=lambda n: list(ELEMENTS).index(n)):
        left, right = a.settings.get(name), b.settings.get(name)
        if left != right:
            settings.append(f"{name}: {_value(name, left)} vs {_value(name, right)}")
    ecreate = []
    if a.enclave_size != b.enclave_size:
        ecreate.append(f"SIZE: {a.enclave_size:#x} vs {b.enclave_size:#x}")
    if a.ssa_frame_size != b.ssa_frame_size:
        ecreate.append(f"SSAFRAMESIZE: {a.ssa_frame_size} vs {b.ssa_frame_size}")
    layout = compare_layout(a.layout.primary, b.layout.primary, labels=("A has", "B has"))
    fields_a = {item.name: item for item in a.global_data_fields}
    fields_b = {item.name: item for item in b.global_data_fields}
    global_data = []
    for name in list(fields_a) + [name for name in fields_b if name not in fields_a]:
        field_a, field_b = fields_a.get(name), fields_b.get(name)
        if field_a is not None and field_b is not None and field_a.value == field_b.value:
            continue
        offset = (field_a or field_b).offset  # type: ignore[union-attr]
        global_data.append(f"{name} (+{offset}): {field_a.text if field_a else '(absent)'} vs "
                           f"{field_b.text if field_b else '(absent)'}")
    return WhatIfDifference(tuple(settings), tuple(ecreate), tuple(layout), tuple(global_data), a.mrenclave, b.mrenclave)


def _value(name: str, value: int | None) -> str:
    """Sizes, addresses and masks in hex; counts and flags in decimal."""
    if value is None:
        return "(unknown to this release)"
    hexadecimal = name.endswith(("Size", "Address")) or name.startswith(("Misc", "ISVFAMILYID", "ISVEXTPRODID"))
    return f"{value:#x}" if hexadecimal else str(value)


# --------------------------------------------------------------------------------------------
# Parameter search (explain)
# --------------------------------------------------------------------------------------------

SEARCH_ELEMENTS: Final = ("TCSNum", "HeapMaxSize", "StackMaxSize", "TCSPolicy", "TCSMinPool", "TCSMaxNum",
                          "HeapMinSize", "HeapInitSize")
"""The elements :func:`search_sdk_parameters` varies."""

_MIB = 1 << 20
_SIZES: Final = tuple(sorted({1 << bit for bit in range(12, 34)}
                             | {k * _MIB for k in range(1, 17)}
                             | {k * 64 * _MIB for k in range(1, 17)}
                             | {k * 100 * _MIB for k in range(1, 11)}
                             | {0x40000 * k for k in range(1, 9)}))


@dataclass(frozen=True, slots=True)
class SdkSearchResult:
    """Outcome of a parameter search for a target MRENCLAVE."""

    target: str  # hex
    match: SdkConfig | None  # the first configuration that reproduces the target
    changes: tuple[str, ...]  # how the match differs from the baseline ("TCSNum 10 -> 4")
    baseline: SdkConfig  # where the search started
    baseline_mrenclave: str  # hex
    tried: int  # configurations measured
    refused: int  # candidates skipped: sgx_sign would refuse them, or their stream exceeds the budget
    elapsed: float  # seconds
    exhausted: bool  # True when every candidate was tried (False: stopped by max_candidates)


def _candidate_values(name: str, current: int) -> list[int]:
    """Values tried for one element, nearest to ``current`` first."""
    if name == "TCSPolicy":
        values = [0, 1]
    elif name in ("TCSNum", "TCSMaxNum", "TCSMinPool"):
        values = list(range(0 if name == "TCSMinPool" else 1, 65))
    else:
        sizes = set(_SIZES) | {current * 2, max(PAGE_SIZE, current // 2)}
        if name == "HeapMinSize":
            sizes |= {0, PAGE_SIZE}
        values = sorted(value for value in sizes if value % PAGE_SIZE == 0)
    ordered = sorted({*values, current})
    position = ordered.index(current)
    return sorted((value for value in ordered if value != current), key=lambda value: abs(ordered.index(value) - position))


def _candidates(choices: dict[str, list[int]], max_changed: int) -> list[dict[str, int]]:
    """Candidates nearest the baseline first: by the summed distance rank of the changed values.

    A pair of neighbouring values (TCSMinPool 1 -> 2 with TCSMaxNum 10 -> 14) comes before a far
    single change (HeapMaxSize 1 MiB -> 8 GiB), a near single change before both.
    """
    ranked: list[tuple[int, int, int, tuple[tuple[str, int], ...]]] = []
    for name, values in choices.items():
        for rank, value in enumerate(values):
            ranked.append((rank + 1, 1, rank, ((name, value),)))
    if max_changed >= 2:
        for left, right in itertools.combinations(choices, 2):
            for rank_a, value_a in enumerate(choices[left]):
                for rank_b, value_b in enumerate(choices[right]):
                    # A pair costs a few ranks more than its parts: one edited element is the common case.
                    ranked.append((rank_a + rank_b + 5, 2, max(rank_a, rank_b), ((left, value_a), (right, value_b))))
    ranked.sort(key=lambda item: item[:3])
    return [dict(change) for _total, _count, _largest, change in ranked]


def search_sdk_parameters(
    session: SdkWhatIf,
    target: bytes | str,
    *,
    baseline: SdkConfig | None = None,
    elements: Sequence[str] = SEARCH_ELEMENTS,
    max_changed: int = 2,
    max_candidates: int = 5000,
    max_stream_bytes: int = 512 << 20,
    on_progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> SdkSearchResult:
    """Look for a configuration that makes ``sgx_sign`` produce ``target``.

    Starts from ``baseline`` (default: :meth:`SdkWhatIf.baseline`) and changes at most
    ``max_changed`` of ``elements`` at a time: single changes first, then pairs, each nearest
    to the baseline first (TCSNum 9 and 11 before 1 and 64; the neighbouring sizes before
    far ones). Every candidate is predicted exactly; configurations sgx_sign refuses are
    skipped. Candidates share the image and everything up to g_global_data, so each costs
    about the stream after it (heap EADDs and thread contexts): a few ms on typical enclaves.

    Args:
        session: the enclave.
        target: the MRENCLAVE wanted (32 bytes or 64 hex digits).
        baseline: the configuration to start from.
        elements: which elements to vary (those the release knows).
        max_changed: how many elements may differ from the baseline (1 or 2).
        max_candidates: stop after this many measured candidates.
        max_stream_bytes: skip candidates whose record stream is longer (a 64 MiB stack in 64
            threads is gigabytes of EEXTENDs; such configurations are not what anyone signed).
        on_progress: ``(tried, total)`` candidates.
        cancel: set to stop (raises :class:`~core.errors.MeasurementCancelled`).

    Returns:
        The :class:`SdkSearchResult` (``match`` None when nothing reproduces the target).

    Raises:
        SdkError: a bad target or element name.
        ConfigRefused: the baseline itself is refused.
        MeasurementCancelled: ``cancel`` was set.
    """
    wanted = _target_bytes(target)
    started = time.perf_counter()
    base_config = baseline if baseline is not None else session.baseline()
    family = session.profile.family
    unknown = [name for name in elements if name not in ELEMENTS]
    if unknown:
        raise SdkError(f"unknown Enclave.config.xml element(s): {', '.join(unknown)}")
    known = [name for name in elements
             if RELEASE_FAMILIES.index(ELEMENTS[name].since) <= RELEASE_FAMILIES.index(family)]
    base_settings = dict(base_config.values)
    effective = base_config.settings(family)
    first = session.predict(base_config)
    assert first.measurement is not None
    if first.measurement.mrenclave == wanted:
        return SdkSearchResult(wanted.hex(), base_config, (), base_config, first.mrenclave, 1, 0,
                               time.perf_counter() - started, True)
    choices = {name: _candidate_values(name, effective[name]) for name in known}
    candidates = _candidates(choices, max_changed)
    total = min(len(candidates), max_candidates)
    tried = refused = 0
    for change in candidates:
        if tried >= max_candidates:
            break
        if cancel is not None and cancel.is_set():
            raise MeasurementCancelled("search cancelled")
        try:
            result = session.predict(config_from_settings({**base_settings, **change}, origin="<candidate>"),
                                     measure=False)
        except ConfigRefused:
            refused += 1
            continue
        if result.plan.stream_size > max_stream_bytes:
            refused += 1
            continue
        result = replace(result, measurement=session.measure(result.plan, cancel=cancel))
        tried += 1
        if on_progress is not None:
            on_progress(tried, total)
        if result.measurement is not None and result.measurement.mrenclave == wanted:
            changes = tuple(f"{name} {_value(name, effective.get(name))} -> {_value(name, value)}"
                            for name, value in change.items())
            match = config_from_settings({**base_settings, **change}, origin="<found>")
            return SdkSearchResult(wanted.hex(), match, changes, base_config, first.mrenclave, tried, refused,
                                   time.perf_counter() - started, False)
    return SdkSearchResult(wanted.hex(), None, (), base_config, first.mrenclave, tried, refused,
                           time.perf_counter() - started, tried < max_candidates)


def _target_bytes(target: bytes | str) -> bytes:
    if isinstance(target, bytes) and len(target) == 32:
        return target
    text = target.decode() if isinstance(target, bytes) else target
    text = text.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise SdkError(f"target MRENCLAVE '{text[:80]}' is not 64 hex digits")
    return bytes.fromhex(text)


def config_xml(config: SdkConfig) -> str:
    """The configuration as ``Enclave.config.xml`` text, the given elements in order (what "save config" writes)."""
    lines = ["<EnclaveConfiguration>"]
    for name, value in config.values:
        shown = f"{value:#x}" if name.endswith("Size") or name in ("MiscMask", "MiscSelect") else str(value)
        lines.append(f"  <{name}>{shown}</{name}>")
    lines.append("</EnclaveConfiguration>")
    return "\n".join(lines) + "\n"
