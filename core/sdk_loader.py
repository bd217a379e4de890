"""The Intel SGX SDK loader's measurement, as a :class:`~core.records.MeasurementPlan` (SPEC §4.6).

Given a signed SDK enclave (its ELF image and one metadata block), :func:`build_sdk_plan`
reproduces the exact EADD/EEXTEND sequence of the SDK's ``loader.cpp``/``sgx_sign``:

1. ECREATE with the block's SSA frame size and enclave size (ELRANGE: the ELRANGE size, and
   every offset shifted by ``image address − ELRANGE start``);
2. the relocation bitmap (only with ``DT_TEXTREL``): pages made writable for the loader;
3. the patch table applied to a copy of the file bytes (g_global_data template, zeroed
   ``e_shoff``/``e_shnum``/``e_shstrndx``);
4. every PT_LOAD in program-header order: file pages (zeros before a non-aligned start),
   then BSS pages, all EADD + EEXTEND; metadata 1.3 adds its legacy extra page;
5. the layout table in table order, groups repeated in place: TCS pages from the template
   plus their rva, fill-pattern pages (0xCC stacks), EADD-only heap pages.

The result also carries the layout "rows" (groups expanded) and address-ordered regions for
display. Nothing is hashed here: the plan goes to :class:`core.measure.Measurer`, so SDK
enclaves get the same speed, progress, cancellation, checkpoints and ``.sgxs`` export as
everything else. Corrupt metadata raises :class:`~core.errors.SdkError` after bounded work.
This module never prints and never imports a UI.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from core.elf import PF_R, PF_W, PF_X, PT_LOAD, ElfImage, Segment
from core.errors import EnsignError, SdkError
from core.layout import Region
from core.records import (
    FLAGS_TCS,
    PAGE_SIZE,
    PT_REG,
    SECINFO_R,
    SECINFO_W,
    SECINFO_X,
    MeasurementPlan,
    PageRun,
    content_key_for_bytes,
)
from core.sdk_metadata import (
    EXTEND_ID_OSSL_FIPS_DSO,
    OSSL_FIPS_TABLE,
    PAGE_ATTR_EADD,
    PAGE_ATTR_EEXTEND,
    PAGE_ATTR_EREMOVE,
    PAGE_ATTR_POST_ADD,
    LayoutEntry,
    LayoutGroup,
    MetadataBlock,
    page_attr_names,
)

__all__ = [
    "LayoutRow",
    "SdkLoad",
    "build_sdk_plan",
    "expand_layout",
    "relocation_pages",
    "row_kind",
]

MAX_ENCLAVE_SIZE: Final = 1 << 40  # 1 TiB: larger is corrupt metadata, not an enclave
MAX_SSA_FRAME_SIZE: Final = 64  # pages; real values are 1..4
MAX_LAYOUT_ROWS: Final = 1_000_000  # expanded entries (entries x repetitions)
TCS_OSSA: Final = 16
TCS_OFS_BASE: Final = 48
TCS_OGS_BASE: Final = 56
_MASK64: Final = (1 << 64) - 1

DT_NULL: Final = 0
DT_PLTRELSZ: Final = 2
DT_RELA: Final = 7
DT_RELASZ: Final = 8
DT_TEXTREL: Final = 22
DT_JMPREL: Final = 23
PT_DYNAMIC: Final = 2


@dataclass(frozen=True, slots=True)
class LayoutRow:
    """One layout entry as the loader processes it: a table entry or one repetition by a group."""

    entry_index: int  # index of the entry in the metadata layout table
    repetition: int  # 0 for the entry itself; j for the j-th repetition by a group
    group_index: int | None  # table index of the group that produced this repetition
    id: int  # LAYOUT_ID_*
    name: str  # LAYOUT_ID name ("HEAP_MIN", "TCS", ...)
    kind: str  # heap | heap-reserved | stack | tcs | ssa | td | guard | reserved-memory | user-region | other
    rva: int  # entry.rva + repetition * load_step (before any ELRANGE shift), bytes
    pages: int  # 4 KiB pages
    attributes: int  # PAGE_ATTR_* bits
    si_flags: int  # SECINFO.FLAGS
    content_size: int  # content bytes, or the u32 fill pattern
    content_offset: int  # offset of the content in the metadata block (0 = none)
    treatment: str  # measured (EADD+EEXTEND) | added (EADD) | post-added (EAUG later) | reserved (never added)
    thread: int | None  # thread context number (0 = first) for stack/TCS/SSA/TD rows

    @property
    def end(self) -> int:
        """First rva after the row."""
        return self.rva + self.pages * PAGE_SIZE

    @property
    def attribute_names(self) -> list[str]:
        """PAGE_ATTR names of ``attributes``."""
        return page_attr_names(self.attributes)

    @property
    def removed_after_init(self) -> bool:
        """True when the pages are EREMOVEd after initialisation (extra static threads)."""
        return bool(self.attributes & PAGE_ATTR_EREMOVE)


@dataclass(frozen=True, slots=True)
class SdkLoad:
    """Everything the SDK loader does for one metadata block."""

    block: MetadataBlock  # the metadata block measured
    plan: MeasurementPlan  # ECREATE + runs in loader order
    rows: tuple[LayoutRow, ...]  # the layout table with groups expanded, in loader order
    regions: tuple[Region, ...]  # address-ordered regions (image, layout, unused) for views
    image_end: int  # offset just after the last page of the image (bytes)
    elrange_shift: int  # bytes added to every offset in ELRANGE mode (0 otherwise)
    relocation_pages: tuple[int, ...]  # page numbers (vaddr >> 12) made writable by the relocation bitmap
    legacy_extra_pages: tuple[int, ...]  # offsets of metadata-1.3 extra pages (bytes)
    notes: tuple[str, ...]  # remarks worth showing (overlaps, unvalidated features)


def row_kind(name: str) -> str:
    """Region kind of a layout entry name (for the Layout views)."""
    if name in ("HEAP_MAX", "HEAP_DYN_MAX"):
        return "heap-reserved"
    for prefix, kind in (
        ("HEAP", "heap"),
        ("STACK", "stack"),
        ("TCS", "tcs"),
        ("SSA", "ssa"),
        ("TD", "td"),
        ("GUARD", "guard"),
        ("RSRV", "reserved-memory"),
        ("USER_REGION", "user-region"),
    ):
        if name.startswith(prefix):
            return kind
    return "other"


def _treatment(entry: LayoutEntry) -> str:
    if entry.attributes & PAGE_ATTR_EADD:
        if entry.content_offset == 0 and entry.si_flags == 0:
            return "reserved"
        if entry.attributes & PAGE_ATTR_EEXTEND or (entry.content_offset and entry.si_flags != FLAGS_TCS):
            return "measured"
        return "added"
    if entry.attributes & PAGE_ATTR_POST_ADD:
        return "post-added"
    return "reserved"


def expand_layout(block: MetadataBlock) -> tuple[LayoutRow, ...]:
    """The layout table with every group expanded in place, in the order the loader walks it.

    Args:
        block: a metadata block.

    Returns:
        One row per entry and per repetition.

    Raises:
        SdkError: a group's load_step is smaller than the entries it repeats, or the expansion
            would exceed :data:`MAX_LAYOUT_ROWS` rows.
    """
    rows: list[LayoutRow] = []
    entries = block.layout
    thread = 0

    def add(entry: LayoutEntry, repetition: int, group: LayoutGroup | None, delta: int) -> None:
        nonlocal thread
        kind = row_kind(entry.name)
        rows.append(
            LayoutRow(
                entry_index=entry.index,
                repetition=repetition,
                group_index=group.index if group else None,
                id=entry.id,
                name=entry.name,
                kind=kind,
                rva=entry.rva + delta,
                pages=entry.page_count,
                attributes=entry.attributes,
                si_flags=entry.si_flags,
                content_size=entry.content_size,
                content_offset=entry.content_offset,
                treatment=_treatment(entry),
                thread=thread if kind in ("stack", "tcs", "ssa", "td") else None,
            )
        )
        if kind == "td":
            thread += 1

    for item in entries:
        if isinstance(item, LayoutEntry):
            add(item, 0, None, 0)
            continue
        repeated = [entry for entry in entries[item.index - item.entry_count : item.index]]
        span = sum(entry.page_count * PAGE_SIZE for entry in repeated if isinstance(entry, LayoutEntry))
        if item.load_times and item.load_step < span:
            raise SdkError(
                f"metadata {block.version_text}: layout group {item.index} steps {item.load_step:#x} bytes "
                f"but its {item.entry_count} entries span {span:#x}: repetitions would overlap"
            )
        if len(rows) + item.load_times * item.entry_count > MAX_LAYOUT_ROWS:
            raise SdkError(
                f"metadata {block.version_text}: layout group {item.index} repeats {item.entry_count} entries "
                f"{item.load_times} times: absurd"
            )
        for repetition in range(1, item.load_times + 1):
            for entry in repeated:
                assert isinstance(entry, LayoutEntry)  # nested groups are rejected by the parser
                add(entry, repetition, item, repetition * item.load_step)
    return tuple(rows)


def segment_flags(segment: Segment, where: str) -> int:
    """SECINFO flags of a PT_LOAD as the SDK sets them: REG + exactly the R/W/X of p_flags.

    Raises:
        SdkError: the segment has none of R, W, X.
    """
    flags = PT_REG
    if segment.flags & PF_R:
        flags |= SECINFO_R
    if segment.flags & PF_W:
        flags |= SECINFO_W
    if segment.flags & PF_X:
        flags |= SECINFO_X
    if flags == PT_REG:
        raise SdkError(f"{where}: PT_LOAD segment {segment.index} has no R, W or X permission")
    return flags


def _vaddr_to_offset(image: ElfImage, vaddr: int) -> int | None:
    for segment in image.load_segments:
        if segment.vaddr <= vaddr < segment.vaddr + segment.filesz:
            return segment.offset + vaddr - segment.vaddr
    return None


def relocation_pages(image: ElfImage) -> frozenset[int]:
    """Pages the SDK loader makes writable for text relocations (SPEC §4.6 step 2).

    Empty unless the dynamic section has ``DT_TEXTREL``. Otherwise every page (``r_offset >> 12``)
    touched by a non-NONE ``R_X86_64_*`` entry of DT_RELA and DT_JMPREL, plus the next page
    when the 8-byte target crosses into it.

    Args:
        image: the (unpatched) ELF image.

    Returns:
        Page numbers (vaddr >> 12).

    Raises:
        ElfFormatError: the dynamic section or a relocation table lies past the end of the file.
    """
    dynamic = next((s for s in image.segments if s.type == PT_DYNAMIC), None)
    if dynamic is None or dynamic.filesz < 16:
        return frozenset()
    raw = image.read(dynamic.offset, dynamic.filesz - dynamic.filesz % 16)
    tags: dict[int, int] = {}
    for tag, value in struct.iter_unpack("<qQ", raw):
        if tag == DT_NULL:
            break
        tags.setdefault(tag, value)
    if DT_TEXTREL not in tags:
        return frozenset()
    pages: set[int] = set()
    for address_tag, size_tag in ((DT_RELA, DT_RELASZ), (DT_JMPREL, DT_PLTRELSZ)):
        if address_tag not in tags or size_tag not in tags:
            continue
        offset = _vaddr_to_offset(image, tags[address_tag])
        if offset is None:
            continue
        size = min(tags[size_tag], image.file_size - offset)
        table = image.read(offset, size - size % 24)
        for r_offset, r_info, _addend in struct.iter_unpack("<QQq", table):
            if r_info & 0xFFFFFFFF == 0:  # R_X86_64_NONE
                continue
            pages.add(r_offset >> 12)
            if r_offset & 0xFFF > 0xFF8:
                pages.add((r_offset >> 12) + 1)
    return frozenset(pages)


def _round_up(value: int, unit: int = PAGE_SIZE) -> int:
    return -(-value // unit) * unit


class _PlanBuilder:
    """Collects runs in loader order, with the bounds every offset must respect."""

    def __init__(self, size: int, shift: int, where: str) -> None:
        self.size = size
        self.shift = shift
        self.where = where
        self.runs: list[PageRun] = []
        self.added_pages = 0

    def add(self, run: PageRun) -> None:
        if run.pages == 0:
            return
        if run.offset < 0 or run.end > self.size:
            raise SdkError(
                f"{self.where}: {run.region} adds pages {run.offset:#x}-{run.end:#x} outside the enclave "
                f"(SIZE {self.size:#x})"
            )
        self.added_pages += run.pages
        if self.added_pages > self.size // PAGE_SIZE:
            raise SdkError(
                f"{self.where}: more pages are added ({self.added_pages}) than the enclave holds "
                f"({self.size // PAGE_SIZE}): absurd page counts"
            )
        previous = self.runs[-1] if self.runs else None
        if (
            previous is not None
            and previous.data is None
            and run.data is None
            and previous.end == run.offset
            and (previous.flags, previous.measured, previous.fill) == (run.flags, run.measured, run.fill)
        ):
            # Fewer, longer runs measure faster (e.g. STACK_MAX + STACK_MIN of one thread).
            region = previous.region if previous.region == run.region else f"{previous.region} + {run.region}"
            self.runs[-1] = PageRun(previous.offset, previous.pages + run.pages, run.flags, run.measured, region,
                                    fill=run.fill)
            return
        self.runs.append(run)


def _segment_pages(
    raw: bytes | bytearray | memoryview, rva: int, filesz: int, memsz: int
) -> tuple[int, bytearray, int, int]:
    """Page-aligned content of one segment: (first page rva, file-backed page bytes, bss start, bss pages)."""
    first = rva & ~(PAGE_SIZE - 1)
    lead = rva - first
    file_pages = _round_up(lead + filesz) // PAGE_SIZE if filesz else 0
    content = bytearray(file_pages * PAGE_SIZE)
    content[lead : lead + filesz] = raw[:filesz]
    # The loader's BSS loop (SPEC §4.6): starts after the last file page.
    offset = file_pages * PAGE_SIZE - lead if filesz else 0
    bss_start = (rva + offset) & ~(PAGE_SIZE - 1)
    bss_pages = 0
    if memsz > offset:
        bss_pages = _round_up(memsz - offset + ((rva + offset) & (PAGE_SIZE - 1))) // PAGE_SIZE
    return first, content, bss_start, bss_pages


def _split_by_flags(
    builder: _PlanBuilder,
    first: int,
    content: bytearray,
    flags: int,
    writable_pages: frozenset[int],
    region: str,
    key: tuple,
) -> None:
    """Add file-backed pages as runs, splitting where the relocation bitmap adds W."""
    pages = len(content) // PAGE_SIZE
    data = bytes(content)
    start = 0
    while start < pages:
        page_flags = _page_flags(flags, first + start * PAGE_SIZE, writable_pages)
        end = start + 1
        while end < pages and _page_flags(flags, first + end * PAGE_SIZE, writable_pages) == page_flags:
            end += 1
        builder.add(
            PageRun(
                offset=first + start * PAGE_SIZE + builder.shift,
                pages=end - start,
                flags=page_flags,
                measured=True,
                region=region,
                data=data[start * PAGE_SIZE : end * PAGE_SIZE],
                key=(*key, start),
            )
        )
        start = end


def _add_bss(
    builder: _PlanBuilder, start: int, pages: int, flags: int, writable_pages: frozenset[int], region: str
) -> None:
    """Add zero-filled measured pages, splitting where the relocation bitmap adds W."""
    page = 0
    while page < pages:
        page_flags = _page_flags(flags, start + page * PAGE_SIZE, writable_pages)
        end = page + 1
        if writable_pages:
            while end < pages and _page_flags(flags, start + end * PAGE_SIZE, writable_pages) == page_flags:
                end += 1
        else:
            end = pages
        builder.add(PageRun(start + page * PAGE_SIZE + builder.shift, end - page, page_flags, True, region))
        page = end


def _page_flags(flags: int, page_rva: int, writable_pages: frozenset[int]) -> int:
    if writable_pages and not flags & SECINFO_W and (page_rva >> 12) in writable_pages:
        return flags | SECINFO_W
    return flags


def _patched_segment(image: ElfImage, segment: Segment, patches: list[tuple[int, bytes]]) -> bytearray:
    """The segment's file bytes with every patch that overlaps them applied (in table order)."""
    raw = bytearray(image.read(segment.offset, segment.filesz))
    start, end = segment.offset, segment.offset + segment.filesz
    for dst, content in patches:
        low, high = max(dst, start), min(dst + len(content), end)
        if low < high:
            raw[low - start : high - start] = content[low - dst : high - dst]
    return raw


def build_sdk_plan(image: ElfImage, block: MetadataBlock) -> SdkLoad:
    """Reproduce the SDK loader's measurement of ``image`` with metadata ``block`` (SPEC §4.6).

    Args:
        image: the signed enclave's ELF image.
        block: the metadata block to measure (normally the first, ``SgxMetadata.primary``).

    Returns:
        The plan, the expanded layout and address-ordered regions.

    Raises:
        SdkError: corrupt or absurd metadata (enclave size, SSA frame size, patches past the file,
            pages outside the enclave, more pages than the enclave holds, ...), or a segment without
            permissions.
        ElfFormatError: the ELF's dynamic section or relocation tables are truncated.
    """
    where = f"{image.path}: metadata {block.version_text}"
    size = block.enclave_size
    shift = 0
    if block.elrange is not None:
        size = block.elrange.elrange_size
        shift = (block.elrange.enclave_image_address - block.elrange.elrange_start_address) & _MASK64
        if shift % PAGE_SIZE or shift >= size:
            raise SdkError(f"{where}: ELRANGE image address does not lie page-aligned inside the ELRANGE")
    if size < 2 * PAGE_SIZE or size & (size - 1) or size > MAX_ENCLAVE_SIZE:
        raise SdkError(f"{where}: enclave size {size:#x} is not a power of two between 8 KiB and 1 TiB")
    if not 1 <= block.ssa_frame_size <= MAX_SSA_FRAME_SIZE:
        raise SdkError(f"{where}: SSA frame size {block.ssa_frame_size} pages is out of range")

    notes: list[str] = []
    builder = _PlanBuilder(size, shift, where)
    writable_pages = relocation_pages(image)
    if writable_pages:
        notes.append(f"text relocations: {len(writable_pages)} pages made writable by the loader")

    patches: list[tuple[int, bytes]] = []
    for number, patch in enumerate(block.patches):
        if patch.dst + patch.size > image.file_size:
            raise SdkError(
                f"{where}: patch {number} writes {patch.size} bytes at file offset {patch.dst:#x}, past the "
                f"end of the file ({image.file_size} bytes)"
            )
        patches.append((patch.dst, block.blob(patch.src, patch.size, what=f"patch {number}")))

    image_key = ("sdk-image", image.identity, block.digest)
    image_end = 0
    legacy = (block.major, block.minor) <= (1, 3)
    legacy_pages: list[int] = []
    highest: Segment | None = None

    def legacy_page(before: Segment | None) -> None:
        """Metadata 1.3 adds one zero page after the highest segment when its memsz rounding leaves a hole."""
        if highest is None:
            return
        end = _round_up(highest.vaddr + highest.memsz)
        if not end < _round_up(_round_up(highest.memsz) + highest.vaddr):
            return
        if before is not None and not (before.vaddr & ~(PAGE_SIZE - 1)) > end:
            return
        if end in legacy_pages:
            return
        legacy_pages.append(end)
        builder.add(
            PageRun(end + shift, 1, segment_flags(highest, where), True, f"LOAD[{highest.index}] legacy page")
        )

    for segment in image.load_segments:
        if segment.align % PAGE_SIZE:
            raise SdkError(f"{where}: PT_LOAD segment {segment.index} has p_align {segment.align:#x}, not a page multiple")
        flags = segment_flags(segment, where)
        if legacy:
            legacy_page(segment)
        region = f"LOAD[{segment.index}] {segment.flags_text}"
        raw = _patched_segment(image, segment, patches) if segment.filesz else b""
        first, content, bss_start, bss_pages = _segment_pages(raw, segment.vaddr, segment.filesz, segment.memsz)
        _split_by_flags(builder, first, content, flags, writable_pages, region, (*image_key, segment.index))
        _add_bss(builder, bss_start, bss_pages, flags, writable_pages, region + " bss")
        image_end = max(image_end, _round_up(segment.vaddr + segment.memsz))
        if highest is None or segment.vaddr > highest.vaddr:
            highest = segment
    if legacy:
        legacy_page(None)
        if legacy_pages:
            image_end = max(image_end, max(legacy_pages) + PAGE_SIZE)

    for extend in block.extends:
        if extend.entry_id == EXTEND_ID_OSSL_FIPS_DSO:
            image_end = max(image_end, _fips_dso_runs(image, block, extend.content, builder, where))
            notes.append("OpenSSL FIPS shared object measured per SPEC §4.3 (not validated against sgx_sign)")

    rows = expand_layout(block)
    _layout_runs(block, rows, builder, where)

    plan = MeasurementPlan(ssaframesize=block.ssa_frame_size, size=size, runs=tuple(builder.runs))
    notes.extend(_overlaps(plan))
    regions = _regions(image, rows, size, shift, legacy_pages)
    return SdkLoad(
        block=block,
        plan=plan,
        rows=rows,
        regions=regions,
        image_end=image_end,
        elrange_shift=shift,
        relocation_pages=tuple(sorted(writable_pages)),
        legacy_extra_pages=tuple(legacy_pages),
        notes=tuple(notes),
    )


def _fips_dso_runs(image: ElfImage, block: MetadataBlock, content: bytes, builder: _PlanBuilder, where: str) -> int:
    """Measure the appended OpenSSL FIPS DSO's PT_LOADs at mem_offset + p_vaddr; returns its end rva."""
    if len(content) < OSSL_FIPS_TABLE.size:
        raise SdkError(f"{where}: OpenSSL FIPS EXTEND entry is {len(content)} bytes, too short")
    info = OSSL_FIPS_TABLE.unpack(content)
    base, mem_offset, dso_size = info["file_offset"], info["mem_offset"], info["size"]
    if base + dso_size > image.file_size or dso_size < 64:
        raise SdkError(f"{where}: OpenSSL FIPS DSO at {base:#x}+{dso_size:#x} lies past the end of the file")
    dso = image.read(base, dso_size)
    if bytes(dso[:4]) != b"\x7fELF":
        raise SdkError(f"{where}: the OpenSSL FIPS DSO at file offset {base:#x} is not an ELF file")
    phoff, phentsize, phnum = struct.unpack_from("<Q", dso, 0x20)[0], *struct.unpack_from("<HH", dso, 0x36)
    if phentsize != 56 or phoff + phnum * 56 > dso_size:
        raise SdkError(f"{where}: the OpenSSL FIPS DSO has a corrupt program header table")
    end = 0
    for index in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_align = struct.unpack_from(
            "<IIQQQQQQ", dso, phoff + index * 56
        )
        if p_type != PT_LOAD:
            continue
        if p_offset + p_filesz > dso_size or p_filesz > p_memsz:
            raise SdkError(f"{where}: OpenSSL FIPS DSO segment {index} lies outside the DSO")
        segment = Segment(index, p_type, "LOAD", p_flags, base + p_offset, p_vaddr, p_vaddr, p_filesz, p_memsz, p_align, ())
        flags = segment_flags(segment, where)
        rva = mem_offset + p_vaddr
        region = f"FIPS-DSO LOAD[{index}]"
        first, content_pages, bss_start, bss_pages = _segment_pages(dso[p_offset : p_offset + p_filesz], rva, p_filesz, p_memsz)
        _split_by_flags(builder, first, content_pages, flags, frozenset(), region, ("sdk-fips", image.identity, block.digest, index))
        _add_bss(builder, bss_start, bss_pages, flags, frozenset(), region + " bss")
        end = max(end, _round_up(rva + p_memsz))
    return end


def _tcs_page(block: MetadataBlock, entry_rva: int, row: LayoutRow, shift: int) -> bytes:
    template = block.blob(row.content_offset, min(row.content_size, PAGE_SIZE), what="TCS template")
    page = bytearray(PAGE_SIZE)
    page[: len(template)] = template
    for field_offset in (TCS_OSSA, TCS_OFS_BASE, TCS_OGS_BASE):
        if field_offset + 8 <= len(template):
            value = struct.unpack_from("<Q", page, field_offset)[0]
            struct.pack_into("<Q", page, field_offset, (value + entry_rva + shift) & _MASK64)
    return bytes(page)


def _layout_runs(block: MetadataBlock, rows: tuple[LayoutRow, ...], builder: _PlanBuilder, where: str) -> None:
    shift = builder.shift
    for row in rows:
        if not row.attributes & PAGE_ATTR_EADD or row.pages == 0:
            continue
        name = row.name if row.thread is None else f"thread {row.thread} {row.name}"
        if row.content_offset and row.si_flags == FLAGS_TCS:
            measured = bool(row.attributes & PAGE_ATTR_EEXTEND)
            for page in range(row.pages):
                page_rva = row.rva + page * PAGE_SIZE
                data = _tcs_page(block, page_rva, row, shift)
                builder.add(
                    PageRun(page_rva + shift, 1, FLAGS_TCS, measured, name, data=data, key=content_key_for_bytes(data))
                )
        elif row.content_offset:
            blob = block.blob(row.content_offset, row.content_size, what=f"content of layout entry {row.entry_index}")
            data = (blob + bytes(row.pages * PAGE_SIZE))[: row.pages * PAGE_SIZE]
            builder.add(
                PageRun(row.rva + shift, row.pages, row.si_flags, True, name, data=data, key=content_key_for_bytes(data))
            )
        elif row.si_flags:
            fill = struct.pack("<I", row.content_size)
            builder.add(
                PageRun(row.rva + shift, row.pages, row.si_flags, bool(row.attributes & PAGE_ATTR_EEXTEND), name, fill=fill)
            )


def _overlaps(plan: MeasurementPlan) -> list[str]:
    """Describe pages added twice (hardware would refuse the second EADD)."""
    spans = sorted((run.offset, run.end, run.region) for run in plan.runs if run.pages)
    found = []
    for (_start, end, region), (next_start, _next_end, next_region) in zip(spans, spans[1:], strict=False):
        if next_start < end:
            found.append(f"{region} and {next_region} both add the page at {next_start:#x}")
            if len(found) >= 5:
                break
    return found


def _regions(
    image: ElfImage, rows: tuple[LayoutRow, ...], size: int, shift: int, legacy_pages: list[int]
) -> tuple[Region, ...]:
    regions: list[Region] = []
    for segment in image.load_segments:
        start = segment.vaddr & ~(PAGE_SIZE - 1)
        end = _round_up(segment.vaddr + segment.memsz)
        sections = ", ".join(segment.sections[:4]) + (", ..." if len(segment.sections) > 4 else "")
        name = f"LOAD[{segment.index}] {segment.flags_text}" + (f" ({sections})" if sections else "")
        try:
            flags = segment_flags(segment, image.path)
        except EnsignError:
            flags = 0
        regions.append(Region(name, "image", start + shift, (end - start) // PAGE_SIZE, flags, "measured"))
    for offset in legacy_pages:
        regions.append(Region("legacy 1.3 extra page", "image", offset + shift, 1, 0, "measured"))
    for row in rows:
        if row.pages == 0:
            continue
        label = row.name if row.repetition == 0 else f"{row.name} (group {row.group_index} #{row.repetition})"
        if row.removed_after_init:
            label += ", removed after init"
        flags = row.si_flags if row.treatment in ("measured", "added") else 0
        regions.append(Region(label, row.kind, row.rva + shift, row.pages, flags, row.treatment, row.thread))
    regions.sort(key=lambda region: (region.offset, region.end))
    filled: list[Region] = []
    cursor = 0
    for region in regions:
        if region.offset > cursor:
            filled.append(Region("unused", "unused", cursor, (region.offset - cursor) // PAGE_SIZE, 0, "reserved"))
        filled.append(region)
        cursor = max(cursor, region.end)
    if cursor < size:
        filled.append(Region("unused", "unused", cursor, (size - cursor) // PAGE_SIZE, 0, "reserved"))
    return tuple(filled)
