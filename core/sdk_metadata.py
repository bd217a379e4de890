"""Intel SGX SDK enclave metadata: the ``.note.sgxmeta`` note and its ``metadata_t`` blocks.

``sgx_sign`` writes one or more ``metadata_t`` structures into the desc of the ELF note
``.note.sgxmeta`` (SPEC §4.1–§4.5): a fixed header with the SIGSTRUCT, then directories
pointing at the patch table, the layout table, the ELRANGE entry and the EXTEND table, all
located by offsets relative to the block. Every metadata version seen in the wild parses
here: 1.3 (SDK 1.x, old layout ids), 1.4/1.5 (compatibility blocks), 2.x (SDK 2.0–2.17),
3.x (SGX2/EDMM), 11.x/13.x (ELRANGE), one block or several in a row.

Parsing is strict about structure (magic, sizes, offsets, table bounds, groups) and lenient
about values: what the loader needs (enclave size, page counts) is checked by
``core.sdk_loader``. Every problem raises :class:`~core.errors.SdkError`; no bad input may
cause another exception, a crash or unbounded work. The binary layouts are field tables
(:class:`FieldTable`) checked at import time to cover their structure exactly.

This module never reads files by itself, never prints and never imports a UI.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from core.errors import SdkError, SigstructFormatError
from core.fieldtable import FieldTable
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct

__all__ = [
    "DIR_ELRANGE",
    "DIR_EXTEND",
    "DIR_LAYOUT",
    "DIR_PATCH",
    "ElrangeConfig",
    "ExtendEntry",
    "FieldTable",
    "LayoutEntry",
    "LayoutGroup",
    "METADATA_MAGIC",
    "MetadataBlock",
    "NOTE_NAME",
    "NOTE_SECTION",
    "PAGE_ATTR_NAMES",
    "PatchEntry",
    "SgxMetadata",
    "layout_id_name",
    "page_attr_names",
    "parse_sgxmeta",
]

# --------------------------------------------------------------------------------------------
# Field tables
# --------------------------------------------------------------------------------------------



def _sdk_table(name: str, size: int, fields: tuple[tuple[str, int, str], ...]) -> FieldTable:
    """A FieldTable whose short-data errors are SdkError (metadata problems)."""
    return FieldTable(name, size, fields, SdkError)


# --------------------------------------------------------------------------------------------
# Constants (SPEC §4.1–§4.4)
# --------------------------------------------------------------------------------------------

NOTE_SECTION: Final = ".note.sgxmeta"
NOTE_NAME: Final = b"sgx_metadata\x00"
NOTE_HEADER_SIZE: Final = 12  # namesz, descsz, type (u32 each)
METADATA_MAGIC: Final = 0x86A80294635D0E4C
METADATA_HEADER_SIZE: Final = 1872  # up to (excluding) dirs
DIR_ENTRY_SIZE: Final = 8
DIR_PATCH: Final = 0
DIR_LAYOUT: Final = 1
DIR_ELRANGE: Final = 2
DIR_EXTEND: Final = 3
MAX_DIRS: Final = 4
TCS_TEMPLATE_SIZE: Final = 72
LAYOUT_ENTRY_SIZE: Final = 32
PATCH_ENTRY_SIZE: Final = 32
EXTEND_ENTRY_SIZE: Final = 16
ELRANGE_SIZE: Final = 24
GROUP_ID_FLAG: Final = 0x1000
MAX_LAYOUT_ENTRIES: Final = 4096  # the SDK caps at 43; anything beyond a few thousand is corrupt
MAX_PATCHES: Final = 4096

EXTEND_ID_FIPS_SIGNATURE: Final = 0x1001
EXTEND_ID_OSSL_FIPS_DSO: Final = 0x1002

# PAGE_ATTR_* (se_page_attr.h)
PAGE_ATTR_EADD: Final = 0x01
PAGE_ATTR_EEXTEND: Final = 0x02
PAGE_ATTR_EREMOVE: Final = 0x04
PAGE_ATTR_POST_ADD: Final = 0x08
PAGE_ATTR_POST_REMOVE: Final = 0x10
PAGE_ATTR_DYN_THREAD: Final = 0x20
PAGE_ATTR_GROWDOWN: Final = 0x40

PAGE_ATTR_NAMES: Final[dict[int, str]] = {
    PAGE_ATTR_EADD: "EADD",
    PAGE_ATTR_EEXTEND: "EEXTEND",
    PAGE_ATTR_EREMOVE: "EREMOVE",
    PAGE_ATTR_POST_ADD: "POST_ADD",
    PAGE_ATTR_POST_REMOVE: "POST_REMOVE",
    PAGE_ATTR_DYN_THREAD: "DYN_THREAD",
    PAGE_ATTR_GROWDOWN: "GROWDOWN",
}

# LAYOUT_ID_* of SDK 1.9 and later (metadata.h)
LAYOUT_ID_NAMES: Final[dict[int, str]] = {
    1: "HEAP_MIN",
    2: "HEAP_INIT",
    3: "HEAP_MAX",
    4: "TCS",
    5: "TD",
    6: "SSA",
    7: "STACK_MAX",
    8: "STACK_MIN",
    0x1009: "THREAD_GROUP",
    10: "GUARD",
    11: "HEAP_DYN_MIN",
    12: "HEAP_DYN_INIT",
    13: "HEAP_DYN_MAX",
    14: "TCS_DYN",
    15: "TD_DYN",
    16: "SSA_DYN",
    17: "STACK_DYN_MAX",
    18: "STACK_DYN_MIN",
    0x1013: "THREAD_GROUP_DYN",
    20: "RSRV_MIN",
    21: "RSRV_INIT",
    22: "RSRV_MAX",
    23: "USER_REGION",
}

# The numbering of SDK 1.x metadata 1.3 (one HEAP entry, 1-page guards).
LEGACY_LAYOUT_ID_NAMES: Final[dict[int, str]] = {
    1: "HEAP",
    2: "TCS",
    3: "TD",
    4: "SSA",
    5: "STACK",
    0x1006: "THREAD_GROUP",
    7: "GUARD",
}


def layout_id_name(layout_id: int, *, legacy: bool = False) -> str:
    """Name of a LAYOUT_ID (``'HEAP_MIN'``, ``'TCS'``, ...); ``'id 0x..'`` when unknown.

    Args:
        layout_id: the entry's ``id``.
        legacy: use the numbering of metadata 1.3 (SDK 1.x).
    """
    names = LEGACY_LAYOUT_ID_NAMES if legacy else LAYOUT_ID_NAMES
    return names.get(layout_id, f"id {layout_id:#x}")


def page_attr_names(attributes: int) -> list[str]:
    """Names of the PAGE_ATTR_* bits set in ``attributes`` (unknown bits as ``'bit N'``)."""
    names = []
    for bit in range(16):
        if attributes >> bit & 1:
            names.append(PAGE_ATTR_NAMES.get(1 << bit, f"bit {bit}"))
    return names


_NOTE_HEADER = _sdk_table(
    "Elf64_Nhdr",
    NOTE_HEADER_SIZE,
    (("namesz", 0, "<I"), ("descsz", 4, "<I"), ("type", 8, "<I")),
)

METADATA_TABLE = _sdk_table(
    "metadata_t",
    METADATA_HEADER_SIZE + MAX_DIRS * DIR_ENTRY_SIZE,
    (
        ("magic_num", 0, "<Q"),
        ("version", 8, "<Q"),  # (major << 32) | minor
        ("size", 16, "<I"),  # bytes of this block (header + data)
        ("tcs_policy", 20, "<I"),  # 0 BIND, 1 UNBIND
        ("ssa_frame_size", 24, "<I"),  # pages
        ("max_save_buffer_size", 28, "<I"),  # XSAVE bytes
        ("desired_misc_select", 32, "<I"),
        ("tcs_min_pool", 36, "<I"),  # 'reserved' before SDK 2.0
        ("enclave_size", 40, "<Q"),  # SECS.SIZE, bytes
        ("attributes_flags", 48, "<Q"),  # maximum ATTRIBUTES.FLAGS the loader may request
        ("attributes_xfrm", 56, "<Q"),  # maximum XFRM the loader may request
        ("enclave_css", 64, f"{SIGSTRUCT_SIZE}s"),  # the SIGSTRUCT
        ("dirs", METADATA_HEADER_SIZE, f"{MAX_DIRS * DIR_ENTRY_SIZE}s"),  # {u32 offset, u32 size}[N]
    ),
)

PATCH_TABLE = _sdk_table(
    "patch_entry_t",
    PATCH_ENTRY_SIZE,
    (("dst", 0, "<Q"), ("src", 8, "<I"), ("size", 12, "<I"), ("reserved", 16, "16s")),
)

LAYOUT_ENTRY_TABLE = _sdk_table(
    "layout_entry_t",
    LAYOUT_ENTRY_SIZE,
    (
        ("id", 0, "<H"),
        ("attributes", 2, "<H"),  # PAGE_ATTR_*
        ("page_count", 4, "<I"),
        ("rva", 8, "<Q"),
        ("content_size", 16, "<I"),  # bytes of content, or the u32 fill pattern
        ("content_offset", 20, "<I"),  # offset of the content in the metadata block, 0 = none
        ("si_flags", 24, "<Q"),  # SECINFO.FLAGS
    ),
)

LAYOUT_GROUP_TABLE = _sdk_table(
    "layout_group_t",
    LAYOUT_ENTRY_SIZE,
    (
        ("id", 0, "<H"),
        ("entry_count", 2, "<H"),  # entries immediately before the group that it repeats
        ("load_times", 4, "<I"),  # repetitions
        ("load_step", 8, "<Q"),  # bytes added to the rvas per repetition
        ("reserved", 16, "16s"),
    ),
)

EXTEND_ENTRY_TABLE = _sdk_table(
    "extend_entry_t",
    EXTEND_ENTRY_SIZE,
    (("entry_id", 0, "<I"), ("size", 4, "<I"), ("offset", 8, "<I"), ("reserved", 12, "<I")),
)

OSSL_FIPS_TABLE = _sdk_table(
    "ossl_fips_so_t",
    32,
    (("file_offset", 0, "<Q"), ("mem_offset", 8, "<Q"), ("size", 16, "<Q"), ("reserved", 24, "<Q")),
)

ELRANGE_TABLE = _sdk_table(
    "elrange_config_entry_t",
    ELRANGE_SIZE,
    (("enclave_image_address", 0, "<Q"), ("elrange_start_address", 8, "<Q"), ("elrange_size", 16, "<Q")),
)

TCS_TABLE = _sdk_table(
    "tcs_t (template)",
    TCS_TEMPLATE_SIZE,
    (
        ("reserved0", 0, "<Q"),  # STATE
        ("flags", 8, "<Q"),  # bit 0 DBGOPTIN, bit 1 AEXNOTIFY
        ("ossa", 16, "<Q"),  # relative to the TCS page in the template
        ("cssa", 24, "<I"),
        ("nssa", 28, "<I"),
        ("oentry", 32, "<Q"),
        ("reserved1", 40, "<Q"),  # AEP
        ("ofs_base", 48, "<Q"),  # relative to the TCS page in the template
        ("ogs_base", 56, "<Q"),  # relative to the TCS page in the template
        ("ofs_limit", 64, "<I"),
        ("ogs_limit", 68, "<I"),
    ),
)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatchEntry:
    """One patch_entry_t: copy ``size`` bytes from the metadata block at ``src`` to the file at ``dst``."""

    dst: int  # file offset in the ELF (not an rva), bytes
    src: int  # offset in the metadata block, bytes
    size: int  # bytes


@dataclass(frozen=True, slots=True)
class LayoutEntry:
    """One layout_entry_t: a run of pages of one kind (SPEC §4.3)."""

    index: int  # position in the layout table
    id: int  # LAYOUT_ID_*
    attributes: int  # PAGE_ATTR_* bit set
    page_count: int  # 4 KiB pages
    rva: int  # offset from the enclave base, bytes
    content_size: int  # content bytes, or the u32 fill pattern when content_offset == 0
    content_offset: int  # offset of the content in the metadata block (0 = none)
    si_flags: int  # SECINFO.FLAGS of the pages (0x203 RW, 0x207 RWX, 0x100 TCS, 0 none)
    name: str  # LAYOUT_ID name for display

    is_group = False

    @property
    def end(self) -> int:
        """First rva after the entry."""
        return self.rva + self.page_count * 4096


@dataclass(frozen=True, slots=True)
class LayoutGroup:
    """One layout_group_t: repeat the ``entry_count`` entries before it ``load_times`` times."""

    index: int  # position in the layout table
    id: int  # LAYOUT_ID_THREAD_GROUP (0x1009), _DYN (0x1013), legacy 0x1006
    entry_count: int  # entries immediately preceding the group that it repeats
    load_times: int  # repetitions (0 = none)
    load_step: int  # bytes added to every rva per repetition
    name: str  # LAYOUT_ID name for display

    is_group = True


@dataclass(frozen=True, slots=True)
class ElrangeConfig:
    """elrange_config_entry_t (ELRANGE mode, metadata 11.x/13.x)."""

    enclave_image_address: int  # where the image is loaded (bytes)
    elrange_start_address: int  # start of the ELRANGE (bytes)
    elrange_size: int  # size of the ELRANGE, measured as SECS.SIZE (bytes)


@dataclass(frozen=True, slots=True)
class ExtendEntry:
    """One extend_entry_t of the EXTEND directory (FIPS signature, OpenSSL FIPS DSO)."""

    entry_id: int  # 0x1001 FIPS signature, 0x1002 OpenSSL FIPS shared object
    size: int  # bytes of the entry's content
    offset: int  # offset of the content in the metadata block
    content: bytes = field(repr=False, default=b"")  # the content bytes


@dataclass(frozen=True, slots=True)
class MetadataBlock:
    """One metadata_t of a ``.note.sgxmeta`` note, with its tables decoded."""

    position: int  # index of the block in the note (0 = first)
    desc_offset: int  # offset of the block in the note's desc (bytes)
    file_offset: int  # offset of the block in the ELF file (bytes)
    version: int  # (major << 32) | minor
    size: int  # bytes of the block
    tcs_policy: int  # 0 BIND, 1 UNBIND
    ssa_frame_size: int  # SECS.SSAFRAMESIZE, pages
    max_save_buffer_size: int  # XSAVE area size (bytes)
    desired_misc_select: int  # MiscSelect of the config
    tcs_min_pool: int  # TCSMinPool (reserved before SDK 2.0)
    enclave_size: int  # SECS.SIZE, bytes
    attributes_flags: int  # maximum ATTRIBUTES.FLAGS
    attributes_xfrm: int  # maximum ATTRIBUTES.XFRM
    sigstruct: Sigstruct  # enclave_css
    dirs: tuple[tuple[int, int], ...]  # (offset, size) of PATCH, LAYOUT, ELRANGE, EXTEND as stored
    dir_count: int  # 2 (SDK < 2.24) or 4
    patches: tuple[PatchEntry, ...]
    layout: tuple[LayoutEntry | LayoutGroup, ...]  # in table order
    elrange: ElrangeConfig | None
    extends: tuple[ExtendEntry, ...]
    raw: bytes = field(repr=False, compare=False)  # the block's bytes

    @property
    def major(self) -> int:
        """Major version (1, 2, 3, or 11/13 with ELRANGE)."""
        return self.version >> 32

    @property
    def minor(self) -> int:
        """Minor version."""
        return self.version & 0xFFFFFFFF

    @property
    def version_text(self) -> str:
        """``'2.3'``-style version."""
        return f"{self.major}.{self.minor}"

    @property
    def legacy_ids(self) -> bool:
        """True when the layout uses the SDK 1.x numbering (metadata 1.3 and older, group id 0x1006)."""
        return (self.major, self.minor) <= (1, 3) or any(item.id == 0x1006 for item in self.layout)

    @property
    def digest(self) -> str:
        """SHA-256 of the block's bytes (identifies its content for caching)."""
        return hashlib.sha256(self.raw).hexdigest()

    def blob(self, offset: int, size: int, *, what: str) -> bytes:
        """Bytes ``[offset, offset+size)`` of the block.

        Raises:
            SdkError: the range lies outside the block.
        """
        if offset < 0 or size < 0 or offset + size > len(self.raw):
            raise SdkError(
                f"metadata {self.version_text} (block {self.position}): {what} at {offset:#x}+{size:#x} "
                f"lies outside the {len(self.raw)}-byte block"
            )
        return self.raw[offset : offset + size]

    def tcs_template(self) -> bytes | None:
        """The 72-byte TCS template referenced by the first TCS entry, if any."""
        for item in self.layout:
            if isinstance(item, LayoutEntry) and item.content_offset and item.si_flags == 0x100:
                return self.blob(item.content_offset, min(item.content_size, 4096), what="TCS template")
        return None

    def global_data_template(self) -> PatchEntry | None:
        """The first patch (the g_global_data template), if any."""
        return self.patches[0] if self.patches else None

    def header_dict(self) -> dict[str, Any]:
        """The header fields in ``expected.json`` form (hex strings where it uses them)."""
        return {
            "attributes_flags": f"{self.attributes_flags:#x}",
            "attributes_xfrm": f"{self.attributes_xfrm:#x}",
            "desired_misc_select": self.desired_misc_select,
            "enclave_size": f"{self.enclave_size:#x}",
            "max_save_buffer_size": self.max_save_buffer_size,
            "offset": self.file_offset,
            "size": self.size,
            "ssa_frame_size": self.ssa_frame_size,
            "tcs_min_pool": self.tcs_min_pool,
            "tcs_policy": self.tcs_policy,
            "version": f"{self.version:#x}",
        }


@dataclass(frozen=True, slots=True)
class SgxMetadata:
    """The decoded ``.note.sgxmeta`` section of an SDK enclave."""

    section_offset: int  # file offset of the section (bytes)
    section_size: int  # sh_size (bytes)
    descsz: int  # size of the note's desc (METADATA_SIZE: 0x1000, 0x5000, 0x6000)
    desc_offset: int  # file offset of the desc (section offset + 25)
    blocks: tuple[MetadataBlock, ...]  # empty for an unsigned enclave (zeroed desc)

    @property
    def signed(self) -> bool:
        """True when at least one metadata block is present."""
        return bool(self.blocks)

    @property
    def primary(self) -> MetadataBlock:
        """The first block: the one MRENCLAVE is measured from (SPEC §4.5).

        Raises:
            SdkError: the enclave is not signed (no block).
        """
        if not self.blocks:
            raise SdkError("the enclave is not signed: its .note.sgxmeta holds no metadata")
        return self.blocks[0]

    @property
    def versions(self) -> tuple[str, ...]:
        """Versions of every block, in order (e.g. ``('2.3', '2.1', '1.4')``)."""
        return tuple(block.version_text for block in self.blocks)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _dir_present(index: int, major: int, minor: int, offset: int, size: int) -> bool:
    """Whether directory ``index`` exists in a block of this version (SPEC §4.2 parsing advice)."""
    if index in (DIR_PATCH, DIR_LAYOUT):
        return True
    if index == DIR_ELRANGE:
        return major > 10 and size == ELRANGE_SIZE
    base = major - 10 if major > 10 else major
    with_extend = (base == 1 and minor >= 5) or (base == 3 and minor >= 2) or base > 3
    return with_extend and offset != 0 and size != 0


def _table_range(block: bytes, offset: int, size: int, entry: int, what: str, where: str) -> None:
    if size % entry:
        raise SdkError(f"{where}: {what} is {size} bytes, not a multiple of {entry}")
    if offset < METADATA_HEADER_SIZE and size:
        raise SdkError(f"{where}: {what} at {offset:#x} overlaps the metadata header")
    if offset + size > len(block):
        raise SdkError(f"{where}: {what} at {offset:#x}+{size:#x} lies past the block end ({len(block):#x})")


def _parse_layout(block: bytes, offset: int, size: int, where: str, legacy: bool) -> tuple[LayoutEntry | LayoutGroup, ...]:
    count = size // LAYOUT_ENTRY_SIZE
    if count > MAX_LAYOUT_ENTRIES:
        raise SdkError(f"{where}: {count} layout entries is absurd (the SDK writes at most 43)")
    items: list[LayoutEntry | LayoutGroup] = []
    for index in range(count):
        position = offset + index * LAYOUT_ENTRY_SIZE
        layout_id = struct.unpack_from("<H", block, position)[0]
        if layout_id & GROUP_ID_FLAG:
            values = LAYOUT_GROUP_TABLE.unpack(block, position)
            entry_count = values["entry_count"]
            if entry_count == 0 or entry_count > index:
                raise SdkError(
                    f"{where}: layout group {index} repeats {entry_count} entries, but "
                    f"{index} precede it: it points outside the layout table"
                )
            for previous in items[index - entry_count :]:
                if isinstance(previous, LayoutGroup):
                    raise SdkError(f"{where}: layout group {index} repeats group {previous.index} (nested groups)")
            items.append(
                LayoutGroup(
                    index=index,
                    id=layout_id,
                    entry_count=entry_count,
                    load_times=values["load_times"],
                    load_step=values["load_step"],
                    name=layout_id_name(layout_id, legacy=legacy or layout_id == 0x1006),
                )
            )
        else:
            values = LAYOUT_ENTRY_TABLE.unpack(block, position)
            items.append(
                LayoutEntry(
                    index=index,
                    id=layout_id,
                    attributes=values["attributes"],
                    page_count=values["page_count"],
                    rva=values["rva"],
                    content_size=values["content_size"],
                    content_offset=values["content_offset"],
                    si_flags=values["si_flags"],
                    name=layout_id_name(layout_id, legacy=legacy),
                )
            )
    if legacy is False and any(isinstance(item, LayoutGroup) and item.id == 0x1006 for item in items):
        # An older table than its version says: rename with the old numbering.
        return _parse_layout(block, offset, size, where, True)
    return tuple(items)


def _parse_block(block: bytes, position: int, desc_offset: int, file_offset: int) -> MetadataBlock:
    where = f"metadata block {position} (at file offset {file_offset:#x})"
    header = METADATA_TABLE.unpack(block, 0) if len(block) >= METADATA_TABLE.size else None
    if header is None:
        raise SdkError(f"{where}: {len(block)} bytes, too short for a metadata header")
    version = header["version"]
    major, minor = version >> 32, version & 0xFFFFFFFF
    if not 1 <= major <= 0xFF:
        raise SdkError(f"{where}: version {major}.{minor} is not an SGX SDK metadata version")
    raw_dirs = struct.unpack_from("<8I", header["dirs"])
    dirs = tuple((raw_dirs[2 * i], raw_dirs[2 * i + 1]) for i in range(MAX_DIRS))
    patch_offset, patch_size = dirs[DIR_PATCH]
    layout_offset, layout_size = dirs[DIR_LAYOUT]
    _table_range(block, patch_offset, patch_size, PATCH_ENTRY_SIZE, "the patch table", where)
    _table_range(block, layout_offset, layout_size, LAYOUT_ENTRY_SIZE, "the layout table", where)
    patch_count = patch_size // PATCH_ENTRY_SIZE
    if patch_count > MAX_PATCHES:
        raise SdkError(f"{where}: {patch_count} patches is absurd")
    patches = []
    for index in range(patch_count):
        values = PATCH_TABLE.unpack(block, patch_offset + index * PATCH_ENTRY_SIZE)
        if values["src"] + values["size"] > len(block):
            raise SdkError(
                f"{where}: patch {index} copies {values['size']} bytes from {values['src']:#x}, past the block end"
            )
        patches.append(PatchEntry(dst=values["dst"], src=values["src"], size=values["size"]))

    legacy = (major, minor) <= (1, 3)
    layout = _parse_layout(block, layout_offset, layout_size, where, legacy)
    # Data is allocated right after the dirs, so the lowest offset anything points to tells how
    # many dirs there are (the TCS template sits at 0x760 with 2 dirs, at 0x770 with 4).
    pointers = [offset for offset, size in dirs[:2] if size]
    pointers += [patch.src for patch in patches if patch.size]
    pointers += [item.content_offset for item in layout if isinstance(item, LayoutEntry) and item.content_offset]
    dir_count = 4 if min(pointers, default=METADATA_TABLE.size) >= METADATA_TABLE.size else 2
    for item in layout:
        if isinstance(item, LayoutEntry) and item.content_offset:
            if item.content_offset + item.content_size > len(block):
                raise SdkError(
                    f"{where}: layout entry {item.index} ({item.name}) has content at "
                    f"{item.content_offset:#x}+{item.content_size:#x}, past the block end"
                )

    elrange = None
    elrange_offset, elrange_size = dirs[DIR_ELRANGE]
    if _dir_present(DIR_ELRANGE, major, minor, elrange_offset, elrange_size):
        if elrange_offset + ELRANGE_SIZE > len(block) or elrange_offset < METADATA_HEADER_SIZE:
            raise SdkError(f"{where}: ELRANGE entry at {elrange_offset:#x} lies outside the block")
        values = ELRANGE_TABLE.unpack(block, elrange_offset)
        elrange = ElrangeConfig(**values)

    extends: list[ExtendEntry] = []
    extend_offset, extend_size = dirs[DIR_EXTEND]
    if _dir_present(DIR_EXTEND, major, minor, extend_offset, extend_size):
        _table_range(block, extend_offset, extend_size, EXTEND_ENTRY_SIZE, "the EXTEND table", where)
        for index in range(min(extend_size // EXTEND_ENTRY_SIZE, 64)):
            values = EXTEND_ENTRY_TABLE.unpack(block, extend_offset + index * EXTEND_ENTRY_SIZE)
            if values["offset"] + values["size"] > len(block):
                raise SdkError(f"{where}: EXTEND entry {index} content lies past the block end")
            content = block[values["offset"] : values["offset"] + values["size"]]
            extends.append(ExtendEntry(values["entry_id"], values["size"], values["offset"], bytes(content)))

    try:
        sigstruct = Sigstruct.from_bytes(header["enclave_css"])
    except SigstructFormatError as error:  # cannot happen for 1808 bytes; kept for safety
        raise SdkError(f"{where}: {error}") from error
    return MetadataBlock(
        position=position,
        desc_offset=desc_offset,
        file_offset=file_offset,
        version=version,
        size=header["size"],
        tcs_policy=header["tcs_policy"],
        ssa_frame_size=header["ssa_frame_size"],
        max_save_buffer_size=header["max_save_buffer_size"],
        desired_misc_select=header["desired_misc_select"],
        tcs_min_pool=header["tcs_min_pool"],
        enclave_size=header["enclave_size"],
        attributes_flags=header["attributes_flags"],
        attributes_xfrm=header["attributes_xfrm"],
        sigstruct=sigstruct,
        dirs=dirs,
        dir_count=dir_count,
        patches=tuple(patches),
        layout=layout,
        elrange=elrange,
        extends=tuple(extends),
        raw=bytes(block),
    )


def parse_sgxmeta(
    section: bytes | bytearray | memoryview, *, section_offset: int = 0, origin: str = NOTE_SECTION
) -> SgxMetadata:
    """Decode the bytes of a ``.note.sgxmeta`` section.

    Args:
        section: the section's bytes (the whole ELF note).
        section_offset: the section's file offset, so block offsets can be reported as file offsets.
        origin: names the file in error messages.

    Returns:
        The note with every metadata block; no blocks when the desc is all zero (unsigned enclave).

    Raises:
        SdkError: not an ``sgx_metadata`` note, sizes past the note, bad magic, or any corrupt table.
    """
    data = bytes(section)
    if len(data) < NOTE_HEADER_SIZE:
        raise SdkError(f"{origin}: {NOTE_SECTION} is {len(data)} bytes, too short for an ELF note")
    note = _NOTE_HEADER.unpack(data, 0)
    namesz, descsz = note["namesz"], note["descsz"]
    if namesz != len(NOTE_NAME) or data[NOTE_HEADER_SIZE : NOTE_HEADER_SIZE + namesz] != NOTE_NAME:
        shown = data[NOTE_HEADER_SIZE : NOTE_HEADER_SIZE + min(namesz, 32)]
        raise SdkError(f"{origin}: {NOTE_SECTION} is not an sgx_metadata note (name {shown!r})")
    # The SDK loader reads the desc right after the 13-byte name, without the usual 4-byte padding.
    desc_start = NOTE_HEADER_SIZE + namesz
    if desc_start + descsz > len(data):
        raise SdkError(
            f"{origin}: the metadata note says {descsz:#x} bytes of desc, but the section holds only "
            f"{len(data) - desc_start:#x}"
        )
    desc = data[desc_start : desc_start + descsz]
    blocks: list[MetadataBlock] = []
    position = 0
    while position + 8 <= len(desc):
        magic = struct.unpack_from("<Q", desc, position)[0]
        if magic != METADATA_MAGIC:
            if not blocks and any(desc):
                raise SdkError(
                    f"{origin}: metadata magic is {magic:#018x}, expected {METADATA_MAGIC:#018x} "
                    "(corrupt or not SDK metadata)"
                )
            break
        if position + METADATA_TABLE.size > len(desc):
            raise SdkError(f"{origin}: metadata block {len(blocks)} header runs past the end of the note")
        size = struct.unpack_from("<I", desc, position + 16)[0]
        if size < METADATA_HEADER_SIZE + 2 * DIR_ENTRY_SIZE:
            raise SdkError(f"{origin}: metadata block {len(blocks)} claims {size} bytes, less than its header")
        if position + size > len(desc):
            raise SdkError(
                f"{origin}: metadata block {len(blocks)} claims {size:#x} bytes at desc offset "
                f"{position:#x}, past the end of the {len(desc):#x}-byte note"
            )
        blocks.append(
            _parse_block(
                desc[position : position + size],
                len(blocks),
                position,
                section_offset + desc_start + position,
            )
        )
        position += size
    return SgxMetadata(
        section_offset=section_offset,
        section_size=len(data),
        descsz=descsz,
        desc_offset=section_offset + desc_start,
        blocks=tuple(blocks),
    )


def note_bytes(metadata: SgxMetadata, blocks: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Rebuild a note's desc from block bytes (used by re-signing and tests).

    Args:
        metadata: the note whose desc size is kept.
        blocks: the blocks' bytes in order.

    Returns:
        The desc bytes (blocks then zero padding up to ``descsz``).

    Raises:
        SdkError: the blocks do not fit the desc.
    """
    joined = b"".join(blocks)
    if len(joined) > metadata.descsz:
        raise SdkError(f"metadata blocks ({len(joined)} bytes) do not fit the {metadata.descsz}-byte note")
    return joined + bytes(metadata.descsz - len(joined))


# --------------------------------------------------------------------------------------------
# Building (tests, benchmarks, what-if tools)
# --------------------------------------------------------------------------------------------


def pack_layout_table(items: Sequence[LayoutEntry | LayoutGroup]) -> bytes:
    """The layout table as stored (32 bytes per entry or group, in order).

    Raises:
        SdkError: a value does not fit its field.
    """
    out = bytearray()
    for item in items:
        if isinstance(item, LayoutGroup):
            out += LAYOUT_GROUP_TABLE.pack({"id": item.id, "entry_count": item.entry_count,
                                            "load_times": item.load_times, "load_step": item.load_step,
                                            "reserved": bytes(16)})
        else:
            out += LAYOUT_ENTRY_TABLE.pack({"id": item.id, "attributes": item.attributes,
                                            "page_count": item.page_count, "rva": item.rva,
                                            "content_size": item.content_size,
                                            "content_offset": item.content_offset, "si_flags": item.si_flags})
    return bytes(out)


def build_block(
    *,
    version: tuple[int, int],
    enclave_size: int,
    layout: list[LayoutEntry | LayoutGroup] | tuple[LayoutEntry | LayoutGroup, ...],
    sigstruct: bytes = bytes(SIGSTRUCT_SIZE),
    ssa_frame_size: int = 1,
    tcs_policy: int = 1,
    max_save_buffer_size: int = 2688,
    desired_misc_select: int = 0,
    tcs_min_pool: int = 1,
    attributes: tuple[int, int] = (0x4, 0xE7),
    tcs_template: bytes = b"",
    patches: list[tuple[int, bytes]] | tuple[tuple[int, bytes], ...] = (),
    dir_count: int = 4,
    layout_first: bool = False,
) -> bytes:
    """Serialise one metadata_t the way sgx_sign lays it out: header, dirs, TCS template, patch blobs,
    one shared zero buffer for zero-filling patches, patch table, layout table.

    Layout entries that reference the TCS template should use ``content_offset`` =
    :func:`tcs_template_offset` (``dir_count``). Patch sources are placed after the template.

    Args:
        version: (major, minor).
        enclave_size: SECS.SIZE (bytes).
        layout: entries and groups in table order (their ``index`` and ``name`` are ignored).
        sigstruct: the 1808-byte enclave_css.
        ssa_frame_size: pages.
        tcs_policy: 0 BIND, 1 UNBIND.
        max_save_buffer_size: XSAVE bytes.
        desired_misc_select: MiscSelect.
        tcs_min_pool: TCSMinPool.
        attributes: (FLAGS, XFRM) maximum attributes.
        tcs_template: the TCS template bytes (usually 72).
        patches: (file offset, bytes) pairs.
        dir_count: 2 (SDK < 2.24) or 4.
        layout_first: put the layout table right after the TCS template (SDK 1.x order).

    Returns:
        The block's bytes (``size`` = their length).

    Raises:
        SdkError: a value does not fit its field.
    """
    if dir_count not in (2, 4) or len(sigstruct) != SIGSTRUCT_SIZE:
        raise SdkError("build_block: dir_count must be 2 or 4 and the SIGSTRUCT 1808 bytes")
    data_start = METADATA_HEADER_SIZE + dir_count * DIR_ENTRY_SIZE
    body = bytearray(tcs_template)
    layout_bytes = pack_layout_table(layout)
    layout_offset = -1
    if layout_first:
        layout_offset = data_start + len(body)
        body += layout_bytes
    patch_rows = []
    for dst, content in patches:
        if any(content):
            patch_rows.append((dst, data_start + len(body), len(content)))
            body += content
        else:
            patch_rows.append((dst, -1, len(content)))
    # Zero-filling patches share one zero buffer of the largest such size, as in sgx_sign.
    zero_size = max((size for _dst, src, size in patch_rows if src < 0), default=0)
    zero_offset = data_start + len(body)
    body += bytes(zero_size)
    patch_rows = [(dst, zero_offset if src < 0 else src, size) for dst, src, size in patch_rows]
    patch_offset = data_start + len(body)
    for dst, src, size in patch_rows:
        body += PATCH_TABLE.pack({"dst": dst, "src": src, "size": size, "reserved": bytes(16)})
    if not layout_first:
        layout_offset = data_start + len(body)
        body += layout_bytes
    dirs = [(patch_offset, len(patch_rows) * PATCH_ENTRY_SIZE), (layout_offset, len(layout) * LAYOUT_ENTRY_SIZE)]
    dirs += [(0, 0)] * (MAX_DIRS - 2)
    header_dirs = struct.pack("<8I", *(value for pair in dirs for value in pair))
    size = data_start + len(body)
    header = METADATA_TABLE.pack({
        "magic_num": METADATA_MAGIC,
        "version": version[0] << 32 | version[1],
        "size": size,
        "tcs_policy": tcs_policy,
        "ssa_frame_size": ssa_frame_size,
        "max_save_buffer_size": max_save_buffer_size,
        "desired_misc_select": desired_misc_select,
        "tcs_min_pool": tcs_min_pool,
        "enclave_size": enclave_size,
        "attributes_flags": attributes[0],
        "attributes_xfrm": attributes[1],
        "enclave_css": sigstruct,
        "dirs": header_dirs,
    })
    # With 2 dirs the data starts where dirs[2..3] would be.
    return header[:data_start] + bytes(body)


def tcs_template_offset(dir_count: int = 4) -> int:
    """Where :func:`build_block` (and sgx_sign) puts the TCS template: right after the dirs."""
    return METADATA_HEADER_SIZE + dir_count * DIR_ENTRY_SIZE


def build_note(blocks: list[bytes] | tuple[bytes, ...], descsz: int) -> bytes:
    """A whole ``.note.sgxmeta`` section: note header, unpadded name, desc (blocks + zeros), 4-byte aligned.

    Raises:
        SdkError: the blocks do not fit ``descsz``.
    """
    joined = b"".join(blocks)
    if len(joined) > descsz:
        raise SdkError(f"metadata blocks ({len(joined)} bytes) do not fit a {descsz}-byte note")
    raw = _NOTE_HEADER.pack({"namesz": len(NOTE_NAME), "descsz": descsz, "type": 1}) + NOTE_NAME
    raw += joined + bytes(descsz - len(joined))
    return raw + bytes(-len(raw) % 4)
