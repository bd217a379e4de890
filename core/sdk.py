"""An Intel SGX SDK enclave: ELF image + ``.note.sgxmeta`` metadata, measured like the SDK loader.

:class:`SdkEnclave` is what the CLI, ``core.containers`` and the TUI hold for one SDK-built
``enclave.so``/``enclave.signed.so``: the loaded image, its decoded metadata blocks, the SDK
release the enclave was built with, and a :class:`~core.measure.Measurer` whose checkpoints
make re-measuring another block cheap. Measuring always goes through the plan built by
``core.sdk_loader`` (SPEC §4.6). :func:`compare_sdk_enclaves` names what differs between two
builds: metadata fields, SIGSTRUCT fields, layout entries, and measured pages mapped to
sections and symbols.

This module composes; it never prints, never writes files (``core.sdk_sign`` does) and never
imports a UI.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from core.elf import ElfImage, load_elf
from core.errors import SdkError
from core.measure import Measurement, Measurer, ProgressCallback
from core.records import PAGE_SIZE, MeasurementPlan
from core.sdk_config import compare_layout
from core.sdk_loader import LayoutRow, SdkLoad, build_sdk_plan
from core.sdk_metadata import NOTE_SECTION, MetadataBlock, SgxMetadata, parse_sgxmeta
from core.sigstruct import Sigstruct

__all__ = [
    "SdkComparison",
    "SdkEnclave",
    "compare_sdk_enclaves",
    "find_sdk_release",
    "read_sdk_metadata",
]

_RELEASE_MARK = b"SGX_TSTDC_VERSION_"


def read_sdk_metadata(image: ElfImage) -> SgxMetadata | None:
    """Decode the ``.note.sgxmeta`` section of ``image``.

    Returns:
        The metadata, or None when the ELF has no such section (not an SDK enclave).

    Raises:
        SdkError: the section is corrupt.
        ElfFormatError: the section lies past the end of the file.
    """
    section = image.section_by_name(NOTE_SECTION)
    if section is None:
        return None
    data = image.read(section.offset, section.size)
    return parse_sgxmeta(data, section_offset=section.offset, origin=image.path)


def find_sdk_release(image: ElfImage) -> str | None:
    """The SDK release string the enclave's trusted runtime carries (``SGX_TSTDC_VERSION_2.26.100.0``).

    Returns:
        ``'2.26.100.0'``, or None when the marker is absent.
    """
    finder = getattr(image.data.obj, "find", None)  # the file's mmap: search without copying
    position = finder(_RELEASE_MARK) if finder is not None else bytes(image.data).find(_RELEASE_MARK)
    if position < 0:
        return None
    tail = bytes(image.data[position + len(_RELEASE_MARK) : position + len(_RELEASE_MARK) + 40])
    text = tail.split(b"\0", 1)[0]
    if not text or any(not (48 <= byte <= 57 or byte == 46) for byte in text):
        return None
    return text.decode("ascii")


@dataclass(frozen=True, slots=True)
class PageDescription:
    """What an enclave offset is, for messages and diff output."""

    offset: int  # bytes from enclave base
    region: str  # segment ("LOAD[2] RW-") or layout entry ("thread 0 TCS")
    section: str | None  # ELF section for image pages
    symbol: str | None  # nearest symbol ("g_global_data+0x40")

    def describe(self) -> str:
        """``page 0x29000 in LOAD[3] RW- (.data, g_global_data+0x40)``."""
        details = ", ".join(part for part in (self.section, self.symbol) if part)
        text = f"page {self.offset & ~(PAGE_SIZE - 1):#x} in {self.region}"
        return text + (f" ({details})" if details else "")


@dataclass
class SdkEnclave:
    """One open SDK enclave with its metadata and measurement checkpoints.

    Use :meth:`open`; close it (or use ``with``) to release the file mapping.
    """

    image: ElfImage
    metadata: SgxMetadata
    release: str | None  # SGX_TSTDC_VERSION of the trusted runtime, e.g. "2.26.100.0"
    measurer: Measurer = field(default_factory=Measurer)
    _loads: dict[int, SdkLoad] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> SdkEnclave:
        """Load ``path`` and decode its ``.note.sgxmeta``.

        Raises:
            ElfFormatError: not a loadable ELF64 x86-64 file.
            SdkError: no ``.note.sgxmeta`` section, or corrupt metadata.
        """
        image = load_elf(str(path))
        try:
            return cls.from_image(image)
        except BaseException:
            image.close()
            raise

    @classmethod
    def from_image(cls, image: ElfImage) -> SdkEnclave:
        """Wrap an already loaded image.

        Raises:
            SdkError: no ``.note.sgxmeta`` section, or corrupt metadata.
        """
        metadata = read_sdk_metadata(image)
        if metadata is None:
            raise SdkError(f"{image.path}: no {NOTE_SECTION} section: not an Intel SGX SDK enclave")
        return cls(image=image, metadata=metadata, release=find_sdk_release(image))

    def close(self) -> None:
        """Release the file mapping."""
        self._loads.clear()
        self.image.close()

    def __enter__(self) -> SdkEnclave:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- metadata --------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """File path."""
        return self.image.path

    @property
    def signed(self) -> bool:
        """True when the note holds metadata (``sgx_sign`` has run)."""
        return self.metadata.signed

    @property
    def blocks(self) -> tuple[MetadataBlock, ...]:
        """Every metadata block, in note order."""
        return self.metadata.blocks

    @property
    def primary(self) -> MetadataBlock:
        """The block MRENCLAVE is measured from (the first).

        Raises:
            SdkError: the enclave is not signed.
        """
        return self.metadata.primary

    @property
    def sigstruct(self) -> Sigstruct:
        """The SIGSTRUCT of the first block.

        Raises:
            SdkError: the enclave is not signed.
        """
        return self.primary.sigstruct

    # ---- measurement -----------------------------------------------------------------------

    def load(self, block_index: int = 0) -> SdkLoad:
        """Plan, expanded layout and regions of one block (built once, then cached).

        Raises:
            SdkError: no such block, or corrupt metadata.
        """
        with self._lock:
            cached = self._loads.get(block_index)
            if cached is not None:
                return cached
            if not 0 <= block_index < len(self.blocks):
                if not self.blocks:
                    raise SdkError(f"{self.path}: not signed (the metadata note is empty): nothing to measure")
                raise SdkError(f"{self.path}: no metadata block {block_index} (it has {len(self.blocks)})")
            load = build_sdk_plan(self.image, self.blocks[block_index])
            self._loads[block_index] = load
            return load

    def plan(self, block_index: int = 0) -> MeasurementPlan:
        """The measurement plan of one block (see :meth:`load`)."""
        return self.load(block_index).plan

    def rows(self, block_index: int = 0) -> tuple[LayoutRow, ...]:
        """The expanded layout of one block."""
        return self.load(block_index).rows

    def measure(
        self,
        block_index: int = 0,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        sgxs_out: BinaryIO | None = None,
    ) -> Measurement:
        """MRENCLAVE of one block's plan (checkpoints make other blocks cheap).

        Raises:
            SdkError: corrupt metadata.
            MeasurementCancelled: ``cancel`` was set.
        """
        return self.measurer.measure(self.plan(block_index), on_progress=on_progress, cancel=cancel, sgxs_out=sgxs_out)

    # ---- mapping offsets back --------------------------------------------------------------

    def describe_offset(self, offset: int, block_index: int = 0) -> PageDescription:
        """Name an enclave offset: segment or layout entry, section, symbol."""
        load = self.load(block_index) if self.blocks else None
        shift = load.elrange_shift if load else 0
        vaddr = offset - shift
        segment = self.image.segment_for_vaddr(vaddr)
        if segment is not None:
            section = self.image.section_for_vaddr(vaddr)
            found = self.image.symbol_for_vaddr(vaddr)
            symbol = None
            if found is not None:
                symbol_entry, delta = found
                symbol = symbol_entry.name + (f"+{delta:#x}" if delta else "")
            return PageDescription(offset, f"LOAD[{segment.index}] {segment.flags_text}",
                                   section.name if section else None, symbol)
        if load is not None:
            for row in load.rows:
                if row.rva <= vaddr < row.end:
                    name = row.name if row.thread is None else f"thread {row.thread} {row.name}"
                    return PageDescription(offset, name, None, None)
        return PageDescription(offset, "outside the image and layout", None, None)


# --------------------------------------------------------------------------------------------
# Comparing two builds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageChange:
    """One measured page (or run of EADD-only pages) that differs between two enclaves."""

    offset: int  # bytes from enclave base
    pages: int  # number of pages this change covers
    change: str  # 'content' | 'flags' | 'only in A' | 'only in B' | 'measured vs added'
    where_a: str  # description in enclave A ('' when absent)
    where_b: str  # description in enclave B ('' when absent)


@dataclass(frozen=True, slots=True)
class SdkComparison:
    """Differences between two SDK enclaves (e.g. two builds of one source)."""

    path_a: str
    path_b: str
    metadata: tuple[str, ...]  # metadata header fields that differ, per block position
    sigstruct: tuple[str, ...]  # SIGSTRUCT fields that differ (first blocks)
    layout: tuple[str, ...]  # layout entries that differ (first blocks)
    pages: tuple[PageChange, ...]  # measured pages that differ (at most ``limit``)
    page_count: int  # total number of differing pages (may exceed len(pages))
    sections: tuple[str, ...]  # ELF sections with differing pages
    symbols: tuple[str, ...]  # symbols with differing pages (at most 50)
    mrenclave_a: str  # ENCLAVEHASH of A's first block ('' if unsigned)
    mrenclave_b: str  # ENCLAVEHASH of B's first block

    @property
    def identical(self) -> bool:
        """True when nothing measured, no metadata and no SIGSTRUCT field differs."""
        return not (self.metadata or self.sigstruct or self.layout or self.page_count)


_HEADER_FIELDS = (
    "version",
    "tcs_policy",
    "ssa_frame_size",
    "max_save_buffer_size",
    "desired_misc_select",
    "tcs_min_pool",
    "enclave_size",
    "attributes_flags",
    "attributes_xfrm",
)
_SIGSTRUCT_FIELDS = (
    "enclavehash",
    "date",
    "vendor",
    "swdefined",
    "isvprodid",
    "isvsvn",
    "attributes_flags",
    "attributes_xfrm",
    "attributemask_flags",
    "attributemask_xfrm",
    "miscselect",
    "miscmask",
    "isvfamilyid",
    "isvextprodid",
    "modulus",
)


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int):
        return f"{value:#x}" if value > 9 else str(value)
    return str(value)


def _page_map(plan: MeasurementPlan) -> tuple[dict[int, tuple[int, bool, bytes]], set[tuple]]:
    """Data pages by offset -> (flags, measured, digest); fill runs as a set of run descriptions."""
    pages: dict[int, tuple[int, bool, bytes]] = {}
    fills: set[tuple] = set()
    for run in plan.runs:
        if run.data is None:
            fills.add((run.offset, run.pages, run.flags, run.measured, run.fill if run.measured else b""))
            continue
        for index in range(run.pages):
            chunk = run.data[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]
            pages[run.offset + index * PAGE_SIZE] = (run.flags, run.measured, hashlib.sha256(chunk).digest())
    return pages, fills


def compare_sdk_enclaves(a: SdkEnclave, b: SdkEnclave, *, limit: int = 200) -> SdkComparison:
    """Name what differs between two SDK enclaves.

    Args:
        a: the first enclave (signed).
        b: the second enclave (signed).
        limit: at most this many page changes are listed (all are counted).

    Returns:
        The differences in metadata, SIGSTRUCT, layout and measured pages.

    Raises:
        SdkError: either enclave is unsigned or has corrupt metadata.
    """
    metadata_lines: list[str] = []
    for position in range(max(len(a.blocks), len(b.blocks))):
        if position >= len(a.blocks) or position >= len(b.blocks):
            present = a if position < len(a.blocks) else b
            metadata_lines.append(
                f"block {position}: only in {present.path} (version {present.blocks[position].version_text})"
            )
            continue
        block_a, block_b = a.blocks[position], b.blocks[position]
        for name in _HEADER_FIELDS:
            value_a, value_b = getattr(block_a, name), getattr(block_b, name)
            if value_a != value_b:
                if name == "version":
                    metadata_lines.append(f"block {position}: version {block_a.version_text} vs {block_b.version_text}")
                else:
                    metadata_lines.append(f"block {position}: {name} {_show(value_a)} vs {_show(value_b)}")
    sigstruct_lines: list[str] = []
    layout_lines: list[str] = []
    if a.blocks and b.blocks:
        for name in _SIGSTRUCT_FIELDS:
            value_a, value_b = getattr(a.sigstruct, name), getattr(b.sigstruct, name)
            if value_a != value_b:
                if name == "modulus":
                    sigstruct_lines.append(f"MRSIGNER {a.sigstruct.mrsigner} vs {b.sigstruct.mrsigner}")
                else:
                    sigstruct_lines.append(f"{name.upper()} {_show(value_a)} vs {_show(value_b)}")
        layout_lines = compare_layout(a.primary.layout, b.primary.layout, labels=("A has", "B has"))

    pages_a, fills_a = _page_map(a.plan()) if a.blocks else ({}, set())
    pages_b, fills_b = _page_map(b.plan()) if b.blocks else ({}, set())
    changes: list[PageChange] = []
    sections: dict[str, None] = {}
    symbols: dict[str, None] = {}
    total = 0
    for offset in sorted(set(pages_a) | set(pages_b)):
        left, right = pages_a.get(offset), pages_b.get(offset)
        if left == right:
            continue
        total += 1
        if left is None:
            change = "only in B"
        elif right is None:
            change = "only in A"
        elif left[0] != right[0]:
            change = "flags"
        elif left[1] != right[1]:
            change = "measured vs added"
        else:
            change = "content"
        where_a = a.describe_offset(offset) if left is not None else None
        where_b = b.describe_offset(offset) if right is not None else None
        for where in (where_a, where_b):
            if where is not None:
                if where.section:
                    sections.setdefault(where.section)
                if where.symbol and len(symbols) < 50:
                    symbols.setdefault(where.symbol.split("+", 1)[0])
        if len(changes) < limit:
            changes.append(PageChange(offset, 1, change, where_a.describe() if where_a else "",
                                      where_b.describe() if where_b else ""))
    for run in sorted(fills_a ^ fills_b):
        offset, pages = run[0], run[1]
        total += pages
        side = "only in A" if run in fills_a else "only in B"
        if len(changes) < limit:
            owner = a if run in fills_a else b
            text = owner.describe_offset(offset).describe()
            changes.append(PageChange(offset, pages, f"{side} (run of {pages} pages, flags {run[2]:#x})",
                                      text if owner is a else "", text if owner is b else ""))
    return SdkComparison(
        path_a=a.path,
        path_b=b.path,
        metadata=tuple(metadata_lines),
        sigstruct=tuple(sigstruct_lines),
        layout=tuple(layout_lines),
        pages=tuple(changes),
        page_count=total,
        sections=tuple(sections),
        symbols=tuple(symbols),
        mrenclave_a=a.sigstruct.enclavehash.hex() if a.blocks else "",
        mrenclave_b=b.sigstruct.enclavehash.hex() if b.blocks else "",
    )
