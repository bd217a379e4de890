"""``Enclave.config.xml`` as Intel's ``sgx_sign`` reads it, and the layout table it derives (SPEC §5).

:func:`parse_config` reads the XML the way ``sgx_sign`` does: root ``<EnclaveConfiguration>``,
one child element per parameter, values like ``strtoull(text, 0)`` (decimal, ``0x`` hex, a
leading ``0`` means octal), unknown or repeated elements refused. :func:`derive_layout` then
builds the layout table ``sgx_sign`` would write for a given ELF and SDK release family
(``SDK-WHATIF.md`` §4 refines SPEC §5 per release): heap entries, the thread-context template,
the utility/pool/EREMOVE/dynamic threads with their groups, reserved memory, USER_REGION, the
rva cursor and the power-of-two enclave size, plus the 1.4/1.5 compatibility table.
:func:`compare_with_metadata` says which entries of a signed enclave's metadata differ.

Only the layout is derived here; the g_global_data and TCS templates and the measurement of
an edited config live in ``core.sdk_whatif``. This module never prints and never imports a UI.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from core.elf import PT_LOAD, ElfImage
from core.errors import SdkError
from core.records import FLAGS_TCS, PAGE_SIZE
from core.sdk_metadata import (
    METADATA_HEADER_SIZE,
    PAGE_ATTR_DYN_THREAD,
    PAGE_ATTR_EADD,
    PAGE_ATTR_EEXTEND,
    PAGE_ATTR_EREMOVE,
    PAGE_ATTR_GROWDOWN,
    PAGE_ATTR_POST_ADD,
    PAGE_ATTR_POST_REMOVE,
    TCS_TEMPLATE_SIZE,
    LayoutEntry,
    LayoutGroup,
    MetadataBlock,
    SgxMetadata,
    layout_id_name,
    page_attr_names,
)

__all__ = [
    "ConfigElement",
    "DerivedLayout",
    "ELEMENTS",
    "LayoutDifference",
    "RELEASE_FAMILIES",
    "SdkConfig",
    "compare_layout",
    "compare_with_metadata",
    "derive_layout",
    "load_config",
    "parse_config",
    "release_family",
]

RELEASE_FAMILIES: Final = ("1.8", "2.0", "2.2", "2.8", "2.13", "2.25")
"""Rule families of ``sgx_sign`` releases (SDK-WHATIF.md §1, §4); 2.26 uses 2.25's rules."""

FLAGS_RW: Final = 0x203
FLAGS_RWX: Final = 0x207
STACK_FILL: Final = 0xCCCCCCCC
GUARD_PAGES: Final = 16
LEGACY_GUARD_PAGES: Final = 1
MAX_CONFIG_BYTES: Final = 1 << 20

# LAYOUT_ID_* (SDK >= 1.9) and the SDK 1.x numbering.
HEAP_MIN, HEAP_INIT, HEAP_MAX, TCS, TD, SSA, STACK_MAX, STACK_MIN = 1, 2, 3, 4, 5, 6, 7, 8
THREAD_GROUP, GUARD, THREAD_GROUP_DYN = 0x1009, 10, 0x1013
STACK_DYN_MAX, RSRV_MIN, RSRV_INIT, RSRV_MAX, USER_REGION = 17, 20, 21, 22, 23
LEGACY_HEAP, LEGACY_TCS, LEGACY_TD, LEGACY_SSA, LEGACY_STACK, LEGACY_GROUP, LEGACY_GUARD = 1, 2, 3, 4, 5, 0x1006, 7

EADD_EEXTEND: Final = PAGE_ATTR_EADD | PAGE_ATTR_EEXTEND


@dataclass(frozen=True, slots=True)
class ConfigElement:
    """One element of ``Enclave.config.xml`` (sign_tool.cpp parameter table)."""

    name: str  # element name, e.g. "HeapMaxSize"
    default: int  # value when absent (see also the per-release defaults)
    maximum: int  # largest accepted value
    since: str  # first release family that knows the element
    page_multiple: bool = False  # value must be a multiple of 4096


_U64 = (1 << 64) - 1
ELEMENTS: Final[dict[str, ConfigElement]] = {
    element.name: element
    for element in (
        ConfigElement("ProdID", 0, 0xFFFF, "1.8"),
        ConfigElement("ISVSVN", 0, 0xFFFF, "1.8"),
        ConfigElement("ReleaseType", 0, 1, "1.8"),
        ConfigElement("IntelSigned", 0, 1, "1.8"),
        ConfigElement("ProvisionKey", 0, 1, "1.8"),
        ConfigElement("LaunchKey", 0, 1, "1.8"),
        ConfigElement("DisableDebug", 0, 1, "1.8"),
        ConfigElement("HW", 0, 0x10, "1.8"),
        ConfigElement("TCSNum", 1, 0xFFFFFFFF, "1.8"),
        ConfigElement("TCSMaxNum", 1, 0xFFFFFFFF, "2.0"),
        ConfigElement("TCSMinPool", 1, 0xFFFFFFFF, "2.0"),
        ConfigElement("TCSPolicy", 1, 1, "1.8"),
        ConfigElement("StackMaxSize", 0x40000, _U64, "1.8", True),
        ConfigElement("StackMinSize", 0x2000, _U64, "2.0", True),
        ConfigElement("HeapMaxSize", 0x1000000, _U64, "1.8", True),
        ConfigElement("HeapMinSize", 0x1000, _U64, "2.0", True),
        ConfigElement("HeapInitSize", 0x1000000, _U64, "2.0", True),
        ConfigElement("ReservedMemMaxSize", 0, _U64, "2.8", True),
        ConfigElement("ReservedMemMinSize", 0, _U64, "2.8", True),
        ConfigElement("ReservedMemInitSize", 0, _U64, "2.8", True),
        ConfigElement("ReservedMemExecutable", 0, 1, "2.8"),
        ConfigElement("MiscSelect", 0, 0xFFFFFFFF, "1.8"),
        ConfigElement("MiscMask", 0xFFFFFFFF, 0xFFFFFFFF, "1.8"),
        ConfigElement("EnableKSS", 0, 1, "2.2"),
        ConfigElement("ISVFAMILYID_H", 0, _U64, "2.2"),
        ConfigElement("ISVFAMILYID_L", 0, _U64, "2.2"),
        ConfigElement("ISVEXTPRODID_H", 0, _U64, "2.2"),
        ConfigElement("ISVEXTPRODID_L", 0, _U64, "2.2"),
        ConfigElement("EnclaveImageAddress", 0, _U64, "2.13"),
        ConfigElement("ELRangeStartAddress", 0, _U64, "2.13"),
        ConfigElement("ELRangeSize", 0, _U64, "2.13"),
        ConfigElement("PKRU", 0, 2, "2.25"),
        ConfigElement("AMX", 0, 2, "2.25"),
        ConfigElement("UserRegionSize", 0, _U64, "2.25", True),
        ConfigElement("EnableAEXNotify", 0, 1, "2.25"),
        ConfigElement("EnableIPPFIPS", 0, 1, "2.25"),
        ConfigElement("EnableOSSLFIPS", 0, 1, "2.25"),
    )
}
"""Every element ``sgx_sign`` knows, with its default and range (SPEC §5.1)."""

# Release-specific defaults (SDK-WHATIF.md §6).
_DEFAULTS: Final[dict[str, dict[str, int]]] = {
    "1.8": {"HeapMaxSize": 0x100000},
    "2.0": {"StackMinSize": 0x1000},
    "2.2": {"StackMinSize": 0x1000},
}

# Entries g_global_data's copy of the layout table holds (SDK-WHATIF.md §4.4).
_LAYOUT_CAP: Final[dict[str, int]] = {"2.0": 38, "2.2": 38, "2.8": 42, "2.13": 42, "2.25": 43}


def _family_index(family: str) -> int:
    return RELEASE_FAMILIES.index(family)


def release_family(release: str | None) -> str:
    """The ``sgx_sign`` rule family of an SDK release string (``'2.13.100.4'`` → ``'2.13'``).

    Args:
        release: the ``SGX_TSTDC_VERSION`` of the enclave, or None when unknown.

    Returns:
        One of :data:`RELEASE_FAMILIES`; the newest family when the release is unknown.
    """
    if not release:
        return RELEASE_FAMILIES[-1]
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        return RELEASE_FAMILIES[-1]
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3) or 0)
    patch = patch - 100 if patch >= 100 else patch  # release strings carry 100 + the patch level
    if major < 2:
        return "1.8"
    if major > 2:
        return "2.25"
    if minor < 1 or (minor == 1 and patch < 3):  # 2.1.3 changed the thread scheme (SDK-WHATIF.md §4.3)
        return "2.0"
    if minor < 6:
        return "2.2"
    if minor < 10:
        return "2.8"
    if minor < 18:
        return "2.13"
    return "2.25"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SdkConfig:
    """A parsed ``Enclave.config.xml``: the elements given, in file order."""

    origin: str  # file name (or "<text>") for messages
    values: tuple[tuple[str, int], ...]  # (element, value) as written

    def given(self, name: str) -> bool:
        """Whether the element appears in the file."""
        return any(element == name for element, _value in self.values)

    def value(self, name: str, family: str = RELEASE_FAMILIES[-1]) -> int:
        """The element's value, or its default for ``family`` (with the absent-element rules of SPEC §5.1).

        Raises:
            SdkError: unknown element name.
        """
        for element, value in self.values:
            if element == name:
                return value
        if name not in ELEMENTS:
            raise SdkError(f"unknown Enclave.config.xml element {name}")
        if name == "TCSMaxNum":
            return self.value("TCSNum", family)
        if name == "HeapInitSize":
            return self.value("HeapMaxSize", family)
        if name == "ReservedMemInitSize":
            return self.value("ReservedMemMaxSize", family)
        return _DEFAULTS.get(family, {}).get(name, ELEMENTS[name].default)

    def settings(self, family: str = RELEASE_FAMILIES[-1]) -> dict[str, int]:
        """Every element known to ``family`` with its effective value."""
        return {
            name: self.value(name, family)
            for name, element in ELEMENTS.items()
            if _family_index(element.since) <= _family_index(family)
        }

    def sources(self) -> dict[str, str]:
        """``'config'`` for given elements, ``'default'`` for the others."""
        return {name: ("config" if self.given(name) else "default") for name in ELEMENTS}


def _parse_number(text: str | None, name: str, origin: str) -> int:
    """``strtoull(text, 0)`` with sgx_sign's refusals: empty, negative, trailing junk."""
    value = (text or "").strip()
    if not value or value.startswith(("-", "+")):
        raise SdkError(f"{origin}: <{name}> has no valid unsigned number ({value!r})")
    try:
        if value[:2].lower() == "0x":
            return int(value[2:], 16)
        if len(value) > 1 and value.startswith("0"):
            return int(value[1:], 8)
        return int(value, 10)
    except ValueError:
        raise SdkError(f"{origin}: <{name}> value {value!r} is not a number (decimal, 0x hex, or 0-prefixed octal)") from None


def parse_config(text: str | bytes, *, origin: str = "Enclave.config.xml") -> SdkConfig:
    """Parse an ``Enclave.config.xml``.

    Args:
        text: the XML text.
        origin: the file name for messages.

    Returns:
        The given elements with their values (range-checked).

    Raises:
        SdkError: not well-formed, wrong root, unknown or repeated element, nested elements,
            a DTD, or a value that is not a number in range.
    """
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_CONFIG_BYTES:
        raise SdkError(f"{origin}: {len(raw)} bytes is too large for an enclave configuration")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise SdkError(f"{origin}: DTDs and entities are not allowed in an enclave configuration")
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as error:
        raise SdkError(f"{origin}: not well-formed XML ({error})") from None
    if root.tag != "EnclaveConfiguration":
        raise SdkError(f"{origin}: root element is <{root.tag}>, expected <EnclaveConfiguration>")
    values: list[tuple[str, int]] = []
    seen: set[str] = set()
    for child in root:
        name = child.tag if isinstance(child.tag, str) else str(child.tag)
        if name not in ELEMENTS:
            raise SdkError(f"{origin}: unknown element <{name}> (sgx_sign refuses it)")
        if name in seen:
            raise SdkError(f"{origin}: element <{name}> appears twice")
        if len(child):
            raise SdkError(f"{origin}: <{name}> must hold a number, not elements")
        seen.add(name)
        value = _parse_number(child.text, name, origin)
        element = ELEMENTS[name]
        if value > element.maximum:
            raise SdkError(f"{origin}: <{name}> {value:#x} is above its maximum {element.maximum:#x}")
        values.append((name, value))
    return SdkConfig(origin=origin, values=tuple(values))


def load_config(path: str | Path) -> SdkConfig:
    """Read and parse an ``Enclave.config.xml`` file.

    Raises:
        SdkError: unreadable or invalid (see :func:`parse_config`).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SdkError(f"{path}: cannot read ({error.strerror or error})") from None
    return parse_config(data, origin=str(path))


# --------------------------------------------------------------------------------------------
# Derivation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DerivedLayout:
    """The layout ``sgx_sign`` of one release family would write for a config and an ELF."""

    family: str  # release family whose rules were applied
    settings: dict[str, int]  # effective config values (defaults filled in)
    primary: tuple[LayoutEntry | LayoutGroup, ...]  # the primary (2.x/3.x, or 1.3) layout table
    compat: tuple[LayoutEntry | LayoutGroup, ...] | None  # the 1.4/1.5 compatibility table, if written
    enclave_size: int  # SECS.SIZE (bytes)
    ssa_frame_size: int  # pages
    sgx2: bool  # whether SGX2 (3.x) metadata is produced
    image_end: int  # rva where the layout starts (bytes)
    notes: tuple[str, ...]  # what was assumed or not validated


def _entry(layout_id: int, attributes: int, pages: int, si_flags: int, content_size: int = 0, content_offset: int = 0) -> dict[str, int]:
    return {
        "id": layout_id,
        "attributes": attributes,
        "page_count": pages,
        "si_flags": si_flags,
        "content_size": content_size,
        "content_offset": content_offset,
    }


def _group(layout_id: int, entry_count: int, load_times: int) -> dict[str, int]:
    return {"id": layout_id, "group": 1, "entry_count": entry_count, "load_times": load_times}


def _round_up(value: int, unit: int = PAGE_SIZE) -> int:
    return -(-value // unit) * unit


def _tls_size(image: ElfImage) -> int:
    tls = image.tls
    if tls is None:
        return 0
    return _round_up(tls.memsz, tls.align) if tls.align > 1 else tls.memsz


def _image_end(image: ElfImage, legacy: bool) -> int:
    loads = [segment for segment in image.segments if segment.type == PT_LOAD]
    if not loads:
        raise SdkError(f"{image.path}: no PT_LOAD segment")
    highest = max(loads, key=lambda segment: (segment.vaddr, segment.index))
    end = _round_up(highest.vaddr + highest.memsz)
    if legacy and end < _round_up(highest.vaddr + _round_up(highest.memsz)):
        end += PAGE_SIZE  # SDK 1.x reserves the loader's legacy extra page (SDK-WHATIF.md §4.1)
    return end


def _check(settings: dict[str, int], family: str, origin: str) -> None:
    """sgx_sign's consistency checks (check_xml_parameter): refuse what it refuses."""

    def fail(message: str) -> None:
        raise SdkError(f"{origin}: {message} (sgx_sign refuses this configuration)", title="Invalid enclave configuration")

    for name in ("StackMaxSize", "StackMinSize", "HeapMaxSize", "HeapMinSize", "HeapInitSize",
                 "ReservedMemMaxSize", "ReservedMemMinSize", "ReservedMemInitSize", "UserRegionSize"):
        if name in settings and settings[name] % PAGE_SIZE:
            fail(f"{name} {settings[name]:#x} is not a multiple of 4 KiB")
    if settings["TCSNum"] < 1:
        fail("TCSNum must be at least 1")
    if settings["StackMaxSize"] < 0x1000:
        fail("StackMaxSize must be at least one page")
    if family != "1.8":
        if settings["TCSMaxNum"] < settings["TCSNum"]:
            fail("TCSMaxNum is smaller than TCSNum")
        if settings["TCSMinPool"] > settings["TCSMaxNum"]:
            fail("TCSMinPool is larger than TCSMaxNum")
        if settings["StackMinSize"] > settings["StackMaxSize"]:
            fail("StackMinSize is larger than StackMaxSize")
        if not settings["HeapMinSize"] <= settings["HeapInitSize"] <= settings["HeapMaxSize"]:
            fail("heap sizes must satisfy HeapMinSize <= HeapInitSize <= HeapMaxSize")
    if "ReservedMemMaxSize" in settings and not (
        settings["ReservedMemMinSize"] <= settings["ReservedMemInitSize"] <= settings["ReservedMemMaxSize"]
    ):
        fail("reserved memory sizes must satisfy Min <= Init <= Max")
    if settings.get("UserRegionSize", 0) and not (settings["MiscSelect"] & settings["MiscMask"] & 1):
        fail("UserRegionSize needs MiscSelect bit 0 and MiscMask bit 0 set")
    if settings["LaunchKey"] and not settings["HW"]:
        fail("LaunchKey needs HW")


def _rts_dynamic(settings: dict[str, int], pool: int) -> bool:
    """SPEC §5.2: whether anything is added or removed at run time."""
    return (
        settings["HeapInitSize"] != settings["HeapMinSize"]
        or settings["HeapInitSize"] != settings["HeapMaxSize"]
        or settings["StackMaxSize"] != settings["StackMinSize"]
        or len({settings.get("ReservedMemMinSize", 0), settings.get("ReservedMemInitSize", 0),
                settings.get("ReservedMemMaxSize", 0)}) > 1
        or settings["TCSMaxNum"] != pool + 1
    )


def _bookkeeping(pages: int) -> int:
    """EMM bookkeeping estimate of one region: ema + bit_array + bitmap (SPEC §5.3 step 7)."""
    bitmap = max(16, _round_up(-(-pages // 8) + 8, 8))
    return 80 + 32 + bitmap


def _finish(items: list[dict[str, int]], start: int, legacy: bool) -> tuple[LayoutEntry | LayoutGroup, ...]:
    """Assign rvas in table order and freeze the entries."""
    frozen: list[LayoutEntry | LayoutGroup] = []
    cursor = start
    for index, item in enumerate(items):
        if item.get("group"):
            step = sum(
                previous["page_count"] * PAGE_SIZE for previous in items[index - item["entry_count"] : index]
            )
            frozen.append(
                LayoutGroup(index, item["id"], item["entry_count"], item["load_times"], step,
                            layout_id_name(item["id"], legacy=legacy))
            )
            cursor += item["load_times"] * step
        else:
            frozen.append(
                LayoutEntry(index, item["id"], item["attributes"], item["page_count"], cursor,
                            item["content_size"], item["content_offset"], item["si_flags"],
                            layout_id_name(item["id"], legacy=legacy))
            )
            cursor += item["page_count"] * PAGE_SIZE
    return tuple(frozen)


def _cursor_end(items: tuple[LayoutEntry | LayoutGroup, ...], start: int) -> int:
    cursor = start
    for item in items:
        if isinstance(item, LayoutGroup):
            cursor += item.load_times * item.load_step
        else:
            cursor = item.rva + item.page_count * PAGE_SIZE
    return cursor


def _power_of_two(value: int) -> int:
    size = 1
    while size < value:
        size <<= 1
    return size


def derive_layout(image: ElfImage, config: SdkConfig, *, release: str | None = None, family: str | None = None) -> DerivedLayout:
    """Derive the layout table ``sgx_sign`` would write for ``config`` and ``image``.

    Args:
        image: the enclave ELF (signed or not; only program headers are used).
        config: the parsed configuration.
        release: the SDK release that signs (``SGX_TSTDC_VERSION``), used to pick the rules.
        family: force a rule family instead (one of :data:`RELEASE_FAMILIES`).

    Returns:
        The primary layout, the compatibility layout where one is written, SIZE and SSA frame size.

    Raises:
        SdkError: an element the release does not know, or a configuration sgx_sign refuses
            (including a layout with more entries than g_global_data can hold).
    """
    family = family or release_family(release)
    if family not in RELEASE_FAMILIES:
        raise SdkError(f"unknown SDK release family {family}; use one of {', '.join(RELEASE_FAMILIES)}")
    for name, _value in config.values:
        if _family_index(ELEMENTS[name].since) > _family_index(family):
            raise SdkError(
                f"{config.origin}: <{name}> is not known to sgx_sign of SDK {family} (it would refuse the file)"
            )
    settings = config.settings(family)
    _check(settings, family, config.origin)
    notes: list[str] = []
    legacy = family == "1.8"
    start = _image_end(image, legacy)
    tls = _tls_size(image)
    td_pages = 1 + _round_up(tls) // PAGE_SIZE

    if legacy:
        primary = _derive_legacy(settings, start, td_pages)
        size = _power_of_two(_cursor_end(primary, start))
        end = _cursor_end(primary, start)
        if size > end:
            primary = (*primary, LayoutEntry(len(primary), LEGACY_GUARD, 0, (size - end) // PAGE_SIZE, end, 0, 0, 0, "GUARD"))
        return DerivedLayout(family, settings, primary, None, size, 1, False, start, tuple(notes))

    ssa = 3 if family == "2.25" and settings.get("AMX", 0) in (1, 2) else 1
    dirs = 4 if family == "2.25" else 2
    tcs_offset = METADATA_HEADER_SIZE + 8 * dirs
    if settings.get("ELRangeSize", 0):
        tcs_offset += 24
        notes.append("ELRANGE layout derivation is not validated against sgx_sign")
    if settings.get("EnableIPPFIPS", 0):
        tcs_offset += 16 + 772
    tcs_num = settings["TCSNum"]
    pool = min(settings["TCSMinPool"], tcs_num - 1)
    eremove = tcs_num - 1 - pool
    max_num = settings["TCSMaxNum"]
    dynamic = _rts_dynamic(settings, pool)
    misc0 = settings["MiscSelect"] & 1
    sgx2 = family == "2.25" and (settings.get("UserRegionSize", 0) > 0 or (dynamic and bool(misc0)))

    items: list[dict[str, int]] = []
    heap_min, heap_init, heap_max = settings["HeapMinSize"], settings["HeapInitSize"], settings["HeapMaxSize"]
    items.append(_entry(HEAP_MIN, PAGE_ATTR_EADD, heap_min // PAGE_SIZE, FLAGS_RW))
    if heap_init > heap_min:
        items.append(_entry(HEAP_INIT, PAGE_ATTR_EADD | PAGE_ATTR_POST_REMOVE | PAGE_ATTR_POST_ADD,
                            (heap_init - heap_min) // PAGE_SIZE, FLAGS_RW))
    if heap_max > heap_init:
        items.append(_entry(HEAP_MAX, PAGE_ATTR_POST_ADD, (heap_max - heap_init) // PAGE_SIZE, FLAGS_RW))

    stack_max, stack_min = settings["StackMaxSize"], settings["StackMinSize"]
    tcs_flags_attr = EADD_EEXTEND
    template: list[dict[str, int]] = [_entry(GUARD, 0, GUARD_PAGES, 0)]
    if stack_max > stack_min:
        template.append(_entry(STACK_MAX, EADD_EEXTEND | PAGE_ATTR_GROWDOWN, (stack_max - stack_min) // PAGE_SIZE,
                               FLAGS_RW, STACK_FILL))
    template += [
        _entry(STACK_MIN, EADD_EEXTEND, stack_min // PAGE_SIZE, FLAGS_RW, STACK_FILL),
        _entry(GUARD, 0, GUARD_PAGES, 0),
        _entry(TCS, tcs_flags_attr, 1, FLAGS_TCS, TCS_TEMPLATE_SIZE, tcs_offset),
        _entry(SSA, EADD_EEXTEND, 2 * ssa, FLAGS_RW),
        _entry(GUARD, 0, GUARD_PAGES, 0),
        _entry(TD, EADD_EEXTEND, td_pages, FLAGS_RW),
    ]
    size_t = len(template)

    def copy(extra: int = 0, stack_extra: int = 0) -> list[dict[str, int]]:
        result = []
        for item in template:
            item = dict(item)
            if item["id"] != GUARD:
                item["attributes"] |= extra
            if item["id"] == STACK_MAX:
                item["attributes"] |= stack_extra
            result.append(item)
        return result

    if family == "2.0":
        items += copy()
        if pool:
            items.append(_group(THREAD_GROUP, size_t, pool))
        if eremove:
            items += copy(PAGE_ATTR_EREMOVE)
            if eremove > 1:
                items.append(_group(THREAD_GROUP, size_t, eremove - 1))
        dyn_wanted = max_num > settings["TCSMinPool"]
        notes.append("SDK 2.0 thread scheme per SDK-WHATIF.md §4.2 (no 2.0 fixture in this repository)")
    else:
        items += copy(stack_extra=PAGE_ATTR_POST_ADD | PAGE_ATTR_POST_REMOVE)
        if pool > 0:
            items += copy()
            if pool > 1:
                items.append(_group(THREAD_GROUP, size_t, pool - 1))
        if eremove > 0:
            items += copy(PAGE_ATTR_EREMOVE)
            if eremove > 1:
                items.append(_group(THREAD_GROUP, size_t, eremove - 1))
        dyn_wanted = max_num > pool + 1
    if dyn_wanted:
        for item in template:
            item = dict(item)
            if item["id"] == STACK_MAX:
                item.update(id=STACK_DYN_MAX, attributes=PAGE_ATTR_POST_ADD | PAGE_ATTR_GROWDOWN)
            elif item["id"] != GUARD:
                item.update(id=item["id"] + 10, attributes=PAGE_ATTR_POST_ADD | PAGE_ATTR_DYN_THREAD)
            items.append(item)
        count = max_num - pool - 1
        if family != "2.0" or count > 0:
            items.append(_group(THREAD_GROUP_DYN, size_t, count))

    rsrv_min = settings.get("ReservedMemMinSize", 0)
    rsrv_init = settings.get("ReservedMemInitSize", 0)
    rsrv_max = settings.get("ReservedMemMaxSize", 0)
    if rsrv_min or rsrv_init or rsrv_max:
        rsrv_flags = FLAGS_RWX if settings.get("ReservedMemExecutable", 0) else FLAGS_RW
        items.append(_entry(RSRV_MIN, PAGE_ATTR_EADD, rsrv_min // PAGE_SIZE, rsrv_flags))
        if rsrv_init > rsrv_min:
            items.append(_entry(RSRV_INIT, PAGE_ATTR_EADD | PAGE_ATTR_POST_REMOVE | PAGE_ATTR_POST_ADD,
                                (rsrv_init - rsrv_min) // PAGE_SIZE, rsrv_flags))
        if rsrv_max > rsrv_init:
            items.append(_entry(RSRV_MAX, PAGE_ATTR_POST_ADD, (rsrv_max - rsrv_init) // PAGE_SIZE, FLAGS_RW))

    if sgx2:
        items.append(_entry(USER_REGION, PAGE_ATTR_POST_ADD, _user_region_pages(items, settings, image), FLAGS_RW))
        notes.append("USER_REGION size uses SPEC §5.3 step 7's bookkeeping estimate")

    primary = _finish(items, start, legacy=False)
    end = _cursor_end(primary, start)
    size = _power_of_two(end)
    if size > end:
        primary = _pad(primary, family, size, end)
    cap = _LAYOUT_CAP[family]
    if len(primary) > cap:
        raise SdkError(
            f"{config.origin}: the layout needs {len(primary)} entries; SDK {family} holds {cap} "
            "(g_global_data's copy of the layout table; sgx_sign refuses it: 'Out of memory')",
            title="Invalid enclave configuration",
        )
    compat = None
    if not (family == "2.25" and sgx2 and misc0 and settings["MiscMask"] & 1):
        if _family_index(family) >= _family_index("2.8"):
            transform = True
        else:  # observed on sgx_sign 2.2: static, HEAP_MIN-less or single-thread layouts are copied as they are
            transform = dynamic and heap_min > 0 and tcs_num > 1
        compat = _compat(primary, tcs_num, transform)
    return DerivedLayout(family, settings, primary, compat, size, ssa, sgx2, start, tuple(notes))


def _pad(
    primary: tuple[LayoutEntry | LayoutGroup, ...], family: str, size: int, end: int
) -> tuple[LayoutEntry | LayoutGroup, ...]:
    """Fill [end, size): a trailing GUARD, or SDK 2.6–2.9's growth of a trailing RSRV entry."""
    last = primary[-1]
    if family == "2.8" and isinstance(last, LayoutEntry) and (
        last.id in (RSRV_INIT, RSRV_MAX) or (last.id == RSRV_MIN and last.page_count)
    ):
        return (*primary[:-1], replace(last, page_count=last.page_count + (size - end) // PAGE_SIZE))
    return (*primary, LayoutEntry(len(primary), GUARD, 0, (size - end) // PAGE_SIZE, end, 0, 0, 0, "GUARD"))


def _user_region_pages(items: list[dict[str, int]], settings: dict[str, int], image: ElfImage) -> int:
    user = settings.get("UserRegionSize", 0)
    overhead = max(_round_up(user >> 15), PAGE_SIZE) if user else 0
    bookkeeping = 0
    for item in items:
        if not item.get("group"):
            bookkeeping += _bookkeeping(item["page_count"])
    for segment in image.load_segments:
        bookkeeping += _bookkeeping(_round_up(segment.memsz) // PAGE_SIZE)
    bookkeeping += 80
    overhead += bookkeeping
    aligned = _round_up(overhead + 32, 0x10000)
    return (user + aligned + 0x10000) // PAGE_SIZE


def _derive_legacy(settings: dict[str, int], start: int, td_pages: int) -> tuple[LayoutEntry | LayoutGroup, ...]:
    """SDK 1.x (metadata 1.3): one HEAP entry, 1-page guards, all threads measured (SDK-WHATIF.md §4.1)."""
    tcs_offset = METADATA_HEADER_SIZE + 8 * 2
    items = [_entry(LEGACY_HEAP, PAGE_ATTR_EADD, settings["HeapMaxSize"] // PAGE_SIZE, FLAGS_RW)]
    thread = [
        _entry(LEGACY_GUARD, 0, LEGACY_GUARD_PAGES, 0),
        _entry(LEGACY_STACK, EADD_EEXTEND, settings["StackMaxSize"] // PAGE_SIZE, FLAGS_RW, STACK_FILL),
        _entry(LEGACY_GUARD, 0, LEGACY_GUARD_PAGES, 0),
        _entry(LEGACY_TCS, EADD_EEXTEND, 1, FLAGS_TCS, TCS_TEMPLATE_SIZE, tcs_offset),
        _entry(LEGACY_SSA, EADD_EEXTEND, 2, FLAGS_RW),
        _entry(LEGACY_GUARD, 0, LEGACY_GUARD_PAGES, 0),
        _entry(LEGACY_TD, EADD_EEXTEND, td_pages, FLAGS_RW),
    ]
    items += thread
    if settings["TCSNum"] > 1:
        items.append(_group(LEGACY_GROUP, len(thread), settings["TCSNum"] - 1))
    return _finish(items, start, legacy=True)


def _compat(
    primary: tuple[LayoutEntry | LayoutGroup, ...], tcs_num: int, transform: bool
) -> tuple[LayoutEntry | LayoutGroup, ...]:
    """The 1.4/1.5 compatibility table (SPEC §5.6 as observed on sgx_sign 2.2–2.26).

    Observed: sgx_sign 2.2 copies static, HEAP_MIN-less and single-thread tables unchanged
    (``transform`` False); when the entries after the utility thread start with reserved
    memory they are kept as they are; HEAP_MAX and RSRV_MAX lose POST_ADD and their SECINFO.
    """
    if not transform:
        return primary
    first_guard = next((i for i, item in enumerate(primary) if item.id == GUARD), None)
    first_td = next((i for i, item in enumerate(primary) if item.id == TD), None)
    if first_guard is None or first_td is None:
        return primary
    rest = primary[first_td + 1 :]
    items: list[LayoutEntry | LayoutGroup] = list(primary[: first_td + 1])
    if rest and not (isinstance(rest[0], LayoutEntry) and rest[0].id in (RSRV_MIN, RSRV_INIT, RSRV_MAX)):
        utility = primary[first_guard : first_td + 1]
        step = sum(item.page_count * PAGE_SIZE for item in utility if isinstance(item, LayoutEntry))
        items.append(LayoutGroup(len(items), THREAD_GROUP, len(utility), tcs_num - 1, step, "THREAD_GROUP"))
        items += [item for item in rest if isinstance(item, LayoutEntry) and item.id in (RSRV_MIN, RSRV_INIT, RSRV_MAX)]
    else:
        items += rest
    cleaned: list[LayoutEntry | LayoutGroup] = []
    stack_max_seen = False
    for index, item in enumerate(items):
        if isinstance(item, LayoutEntry):
            attributes, si_flags = item.attributes, item.si_flags
            if item.id in (HEAP_MAX, RSRV_MAX):
                attributes &= ~PAGE_ATTR_POST_ADD
                si_flags = 0
            elif item.id in (HEAP_INIT, RSRV_INIT) or (item.id == STACK_MAX and not stack_max_seen):
                attributes &= ~PAGE_ATTR_POST_ADD
            if item.id == STACK_MAX:
                stack_max_seen = True
            cleaned.append(replace(item, index=index, attributes=attributes, si_flags=si_flags))
        else:
            cleaned.append(replace(item, index=index))
    return tuple(cleaned)


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LayoutDifference:
    """How one metadata block's layout differs from the derived one."""

    block_position: int  # index of the metadata block in the note
    version: str  # its version, e.g. "1.5"
    compared_with: str  # "primary" or "compat"
    differences: tuple[str, ...]  # one line per differing header field or entry (empty = equal)

    @property
    def equal(self) -> bool:
        """True when the block's layout and header values match the derivation."""
        return not self.differences


def _describe(item: LayoutEntry | LayoutGroup) -> str:
    if isinstance(item, LayoutGroup):
        return f"{item.name} repeats {item.entry_count} entries x{item.load_times} step {item.load_step:#x}"
    attrs = "|".join(page_attr_names(item.attributes)) or "none"
    text = f"{item.name} {item.page_count} pages @{item.rva:#x} [{attrs}] si {item.si_flags:#x}"
    if item.content_offset or item.content_size:
        text += f" content {item.content_size:#x}@{item.content_offset:#x}"
    return text


def _fields(item: LayoutEntry | LayoutGroup) -> tuple:
    if isinstance(item, LayoutGroup):
        return ("group", item.id, item.entry_count, item.load_times, item.load_step)
    return ("entry", item.id, item.attributes, item.page_count, item.rva, item.content_size, item.content_offset, item.si_flags)


def compare_layout(
    derived: tuple[LayoutEntry | LayoutGroup, ...],
    actual: tuple[LayoutEntry | LayoutGroup, ...],
    *,
    labels: tuple[str, str] = ("the config derives", "the metadata has"),
) -> list[str]:
    """Entries that differ between two layout tables, one line each (empty when equal).

    Args:
        derived: the first table (normally derived from a config).
        actual: the second table (normally a metadata block's).
        labels: how to introduce each side in the lines.
    """
    ours_label, theirs_label = labels
    lines = []
    for index in range(max(len(derived), len(actual))):
        ours = derived[index] if index < len(derived) else None
        theirs = actual[index] if index < len(actual) else None
        if ours is None:
            assert theirs is not None
            lines.append(f"entry {index}: only {theirs_label} {_describe(theirs)}")
        elif theirs is None:
            lines.append(f"entry {index}: only {ours_label} {_describe(ours)}")
        elif _fields(ours) != _fields(theirs):
            lines.append(f"entry {index}: {ours_label} {_describe(ours)}; {theirs_label} {_describe(theirs)}")
    return lines


def compare_with_metadata(derived: DerivedLayout, metadata: SgxMetadata) -> tuple[LayoutDifference, ...]:
    """Compare every metadata block of a signed enclave with the derived layout.

    Blocks of version 1.4/1.5 are compared with the compatibility table, all others with the
    primary table. Besides the entries, enclave size, SSA frame size, TCS policy and the
    desired MISCSELECT are compared.

    Returns:
        One :class:`LayoutDifference` per block (none for an unsigned enclave).
    """
    results = []
    for block in metadata.blocks:
        compat = block.major in (1, 11) and block.minor >= 4 and derived.compat is not None
        table = derived.compat if compat and derived.compat is not None else derived.primary
        lines = _header_differences(derived, block)
        lines += compare_layout(table, block.layout)
        results.append(LayoutDifference(block.position, block.version_text, "compat" if compat else "primary", tuple(lines)))
    return tuple(results)


def _header_differences(derived: DerivedLayout, block: MetadataBlock) -> list[str]:
    lines = []
    pairs = (
        ("enclave size", derived.enclave_size, block.enclave_size),
        ("SSA frame size", derived.ssa_frame_size, block.ssa_frame_size),
        ("TCS policy", derived.settings["TCSPolicy"], block.tcs_policy),
        ("desired MISCSELECT", _desired_misc_select(derived), block.desired_misc_select),
    )
    for name, ours, theirs in pairs:
        if ours != theirs:
            lines.append(f"{name}: the config derives {ours:#x}; the metadata has {theirs:#x}")
    return lines


def _desired_misc_select(derived: DerivedLayout) -> int:
    """metadata.desired_misc_select as observed: 0 in SDK 1.x, MiscSelect & MiscMask up to 2.13, MiscSelect after."""
    if derived.family == "1.8":
        return 0
    if derived.family == "2.25":
        return derived.settings["MiscSelect"]
    return derived.settings["MiscSelect"] & derived.settings["MiscMask"]

