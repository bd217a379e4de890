"""Fortanix ``.sgxs`` measurement streams: read them into pages and a :class:`~core.records.MeasurementPlan`.

An SGXS file is the exact byte stream MRENCLAVE hashes: a 64-byte ECREATE record, then EADD
records and EEXTEND records each followed by its 256 data bytes (SPEC §1.1). The enhanced form
(ESGXS) adds ``UNMEASRD`` records (an EEXTEND-shaped record whose data is loaded but not hashed)
and ``UNSIZED`` (an ECREATE whose SIZE is not final; such a stream cannot be measured). A ``.gz``
file is decompressed first (bounded).

:func:`read_sgxs` returns an :class:`SgxsStream`: ECREATE values, record counts, every added page
with which of its 16 chunks are measured, and, when every page is measured whole and in order (the
canonical form every real loader writes), a plan the :class:`~core.measure.Measurer` measures like
any other, so ``.sgxs`` files get the same speed, progress, cancellation and export. Streams that
measure only parts of pages cannot be expressed as a plan; their MRENCLAVE is the SHA-256 of their
measured records (:meth:`SgxsStream.stream_digest`), which is the format's definition.

Corrupt input raises :class:`~core.errors.ContainerError`. Never prints, never imports a UI.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from core.errors import ContainerError, MeasurementCancelled
from core.fieldtable import FieldTable
from core.records import (
    CHUNK_SIZE,
    CHUNKS_PER_PAGE,
    PAGE_SIZE,
    RECORD_SIZE,
    TAG_EADD,
    TAG_ECREATE,
    TAG_EEXTEND,
    TAG_UNMEASURED,
    MeasurementPlan,
    PageRun,
    secinfo_text,
)

__all__ = ["SgxsPage", "SgxsRange", "SgxsStream", "looks_like_sgxs", "parse_sgxs", "read_sgxs"]

TAG_UNSIZED: Final = b"UNSIZED\x00"
MAX_STREAM_BYTES: Final = 1 << 32  # 4 GiB decompressed: larger is not a stream we hold in memory
FULL_PAGE: Final = (1 << CHUNKS_PER_PAGE) - 1

ECREATE_TABLE = FieldTable(
    "ECREATE record",
    RECORD_SIZE,
    (("tag", 0, "8s"), ("ssaframesize", 8, "<I"), ("size", 12, "<Q"), ("reserved", 20, "44s")),
)
EADD_TABLE = FieldTable(
    "EADD record",
    RECORD_SIZE,
    (("tag", 0, "8s"), ("offset", 8, "<Q"), ("flags", 16, "<Q"), ("reserved", 24, "40s")),
)
EEXTEND_TABLE = FieldTable(
    "EEXTEND record",
    RECORD_SIZE,
    (("tag", 0, "8s"), ("offset", 8, "<Q"), ("reserved", 16, "48s")),
)
_EADD_STRUCT = struct.Struct("<QQ")  # offset, flags at record byte 8


@dataclass(frozen=True, slots=True)
class SgxsPage:
    """One EADDed page of a stream."""

    offset: int  # page offset from the enclave base (bytes)
    flags: int  # SECINFO.FLAGS of the EADD
    measured: int  # bit i set: chunk i (256 bytes) was EEXTENDed
    unmeasured: int  # bit i set: chunk i carries UNMEASRD (loaded, not hashed) data
    record: int  # index of the EADD record in the stream (ECREATE = 0)

    @property
    def status(self) -> str:
        """``measured``, ``added`` (no data), ``unmeasured data``, or ``partial k/16``."""
        if self.measured == FULL_PAGE:
            return "measured"
        if self.measured:
            return f"partial {bin(self.measured).count('1')}/16"
        if self.unmeasured:
            return "unmeasured data"
        return "added"


@dataclass(frozen=True, slots=True)
class SgxsRange:
    """Consecutive pages with the same flags and status, as ``sgxs-info`` lists them."""

    start: int  # first byte offset
    end: int  # offset after the last page
    flags: int  # SECINFO.FLAGS
    status: str  # see SgxsPage.status

    @property
    def pages(self) -> int:
        """Number of pages."""
        return (self.end - self.start) // PAGE_SIZE

    def describe(self) -> str:
        """``0x0000000-0x0000fff   1 page   TCS      measured``."""
        count = f"{self.pages} page" + ("s" if self.pages != 1 else "")
        return f"{self.start:#09x}-{self.end - 1:#09x}  {count:>12}  {secinfo_text(self.flags):<8} {self.status}"


@dataclass(frozen=True, slots=True)
class SgxsStream:
    """A decoded ``.sgxs`` stream."""

    origin: str  # file name for messages
    ssaframesize: int  # SECS.SSAFRAMESIZE from ECREATE (pages)
    size: int  # SECS.SIZE from ECREATE (bytes); for UNSIZED the offset where SIZE is to be written
    unsized: bool  # the stream starts with UNSIZED: it cannot be measured
    pages: tuple[SgxsPage, ...]  # in EADD order
    counts: dict[str, int]  # records per tag: ECREATE, EADD, EEXTEND, UNMEASRD
    stream_bytes: int  # bytes of the (decompressed) stream
    canonical: bool  # Fortanix's canonicality rules hold
    problems: tuple[str, ...]  # why it is not canonical, and other findings
    plan: MeasurementPlan | None  # the equivalent plan, when every page is measured whole or not at all
    plan_problem: str | None  # why there is no plan
    data: bytes = field(repr=False, compare=False, default=b"")  # the stream bytes

    @property
    def record_counts(self) -> dict[str, int]:
        """Hashed records only (``expected.json`` form): ECREATE, EADD, EEXTEND."""
        return {"EADD": self.counts["EADD"], "ECREATE": self.counts["ECREATE"], "EEXTEND": self.counts["EEXTEND"]}

    def ranges(self) -> tuple[SgxsRange, ...]:
        """Pages grouped into address ranges of equal flags and status (sgxs-info style)."""
        result: list[SgxsRange] = []
        for page in sorted(self.pages, key=lambda p: p.offset):
            status = page.status
            if result and result[-1].end == page.offset and result[-1].flags == page.flags and result[-1].status == status:
                last = result[-1]
                result[-1] = SgxsRange(last.start, page.offset + PAGE_SIZE, last.flags, status)
            else:
                result.append(SgxsRange(page.offset, page.offset + PAGE_SIZE, page.flags, status))
        return tuple(result)

    def stream_digest(
        self,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bytes:
        """MRENCLAVE by the format's definition: SHA-256 of the stream minus UNMEASRD records.

        Use the :attr:`plan` with a Measurer when there is one; this is for streams that measure
        parts of pages, which a plan cannot express.

        Raises:
            ContainerError: the stream is UNSIZED.
            MeasurementCancelled: ``cancel`` was set.
        """
        if self.unsized:
            raise ContainerError(f"{self.origin}: UNSIZED stream: its SIZE is not final, so it has no MRENCLAVE")
        sha = hashlib.sha256()
        data = memoryview(self.data)
        position = 0
        total = len(data)
        while position < total:
            if cancel is not None and cancel.is_set():
                raise MeasurementCancelled("measurement cancelled")
            end = min(total, position + (1 << 20))
            # extend to a record boundary, skipping UNMEASRD records
            start = position
            while position < end:
                tag = bytes(data[position : position + 8])
                length = RECORD_SIZE + (CHUNK_SIZE if tag in (TAG_EEXTEND, TAG_UNMEASURED) else 0)
                if tag == TAG_UNMEASURED:
                    sha.update(data[start:position])
                    start = position + length
                position += length
            sha.update(data[start:position])
            if on_progress is not None:
                on_progress(position, total)
        return sha.digest()


def looks_like_sgxs(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) starts like an SGXS stream."""
    return head[:8] in (TAG_ECREATE, TAG_UNSIZED) and len(head) >= 8


def _read_file(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
            handle.seek(0)
            if magic == b"\x1f\x8b":
                return _gunzip(handle, str(path))
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_STREAM_BYTES:
                raise ContainerError(f"{path}: {size} bytes is larger than the {MAX_STREAM_BYTES >> 30} GiB ensign reads")
            return handle.read()
    except OSError as error:
        raise ContainerError(f"{path}: cannot read ({error.strerror or error})") from None


def _gunzip(handle, origin: str) -> bytes:  # type: ignore[no-untyped-def]
    parts: list[bytes] = []
    total = 0
    try:
        with gzip.GzipFile(fileobj=handle) as stream:
            while chunk := stream.read(1 << 20):
                total += len(chunk)
                if total > MAX_STREAM_BYTES:
                    raise ContainerError(f"{origin}: decompresses to more than {MAX_STREAM_BYTES >> 30} GiB")
                parts.append(chunk)
    except (OSError, EOFError, zlib.error) as error:
        raise ContainerError(f"{origin}: corrupt gzip data ({error})") from None
    return b"".join(parts)


def read_sgxs(path: str | Path) -> SgxsStream:
    """Read an ``.sgxs`` (or gzip-compressed ``.sgxs.gz``) file.

    Raises:
        ContainerError: unreadable, not an SGXS stream, or corrupt.
    """
    return parse_sgxs(_read_file(path), origin=str(path))


def parse_sgxs(data: bytes, *, origin: str = "<sgxs>") -> SgxsStream:
    """Decode SGXS stream bytes.

    Args:
        data: the (decompressed) stream.
        origin: the file name for messages.

    Returns:
        The decoded stream.

    Raises:
        ContainerError: empty, no leading ECREATE/UNSIZED, an unknown tag, a truncated record,
            or a second ECREATE.
    """
    data = bytes(data)
    if len(data) < RECORD_SIZE:
        raise ContainerError(f"{origin}: {len(data)} bytes, too short for an SGXS stream (ECREATE is 64 bytes)")
    head = ECREATE_TABLE.unpack(data, 0)
    if head["tag"] not in (TAG_ECREATE, TAG_UNSIZED):
        raise ContainerError(f"{origin}: does not start with an ECREATE record (starts {data[:8]!r}): not an SGXS stream")
    unsized = head["tag"] == TAG_UNSIZED
    counts = {"ECREATE": 1, "EADD": 0, "EEXTEND": 0, "UNMEASRD": 0}
    problems: list[str] = []
    pages: dict[int, list[int]] = {}  # offset -> [flags, measured mask, unmeasured mask, record, order ok]
    order: list[int] = []
    last_page: int | None = None
    last_eadd_offset = -1
    next_chunk = 0
    in_order = True
    position = RECORD_SIZE
    record = 1
    length = len(data)
    while position < length:
        if position + RECORD_SIZE > length:
            raise ContainerError(f"{origin}: truncated record {record} at byte {position:#x}")
        tag = data[position : position + 8]
        if tag == TAG_EADD:
            offset, flags = _EADD_STRUCT.unpack_from(data, position + 8)
            counts["EADD"] += 1
            if offset % PAGE_SIZE:
                problems.append(f"record {record}: EADD offset {offset:#x} is not page-aligned")
                offset -= offset % PAGE_SIZE
            if offset in pages:
                problems.append(f"record {record}: page {offset:#x} is added twice")
            elif offset < last_eadd_offset:
                problems.append(f"record {record}: page {offset:#x} is added after a higher page")
            if flags >> 8 & 0xFF == 1 and flags & 0x7:
                problems.append(f"record {record}: TCS page {offset:#x} has R/W/X permission bits")
            last_eadd_offset = max(last_eadd_offset, offset)
            if last_page is not None and 0 < next_chunk < CHUNKS_PER_PAGE:
                in_order = False
            pages[offset] = [flags, 0, 0, record]
            order.append(offset)
            last_page = offset
            next_chunk = 0
            position += RECORD_SIZE
        elif tag in (TAG_EEXTEND, TAG_UNMEASURED):
            if position + RECORD_SIZE + CHUNK_SIZE > length:
                name = "EEXTEND" if tag == TAG_EEXTEND else "UNMEASRD"
                raise ContainerError(f"{origin}: truncated {name} record {record} at byte {position:#x}")
            offset = struct.unpack_from("<Q", data, position + 8)[0]
            measured = tag == TAG_EEXTEND
            counts["EEXTEND" if measured else "UNMEASRD"] += 1
            page_offset = offset & ~(PAGE_SIZE - 1)
            chunk = (offset % PAGE_SIZE) // CHUNK_SIZE
            if offset % CHUNK_SIZE:
                problems.append(f"record {record}: chunk offset {offset:#x} is not 256-aligned")
            entry = pages.get(page_offset)
            if entry is None:
                problems.append(f"record {record}: data for page {page_offset:#x}, which was never added")
                in_order = False
            else:
                bit = 1 << chunk
                if (entry[1] | entry[2]) & bit:
                    problems.append(f"record {record}: chunk {offset:#x} appears twice")
                    in_order = False
                entry[1 if measured else 2] |= bit
                if page_offset != last_page or chunk != next_chunk:
                    in_order = False
                next_chunk = chunk + 1
            position += RECORD_SIZE + CHUNK_SIZE
        elif tag in (TAG_ECREATE, TAG_UNSIZED):
            raise ContainerError(f"{origin}: a second ECREATE record ({record}) at byte {position:#x}")
        else:
            raise ContainerError(f"{origin}: unknown record tag {bytes(tag)!r} (record {record}, byte {position:#x})")
        record += 1
    if last_page is not None and 0 < next_chunk < CHUNKS_PER_PAGE:
        in_order = False

    page_list = tuple(SgxsPage(offset, *pages[offset]) for offset in order)
    plan, plan_problem = _plan(data, page_list, head, unsized, in_order, origin)
    if plan_problem and not unsized:
        problems.append(plan_problem)
    canonical = not any("added" in p or "aligned" in p or "TCS page" in p or "twice" in p or "never added" in p for p in problems)
    return SgxsStream(
        origin=origin,
        ssaframesize=head["ssaframesize"],
        size=head["size"],
        unsized=unsized,
        pages=page_list,
        counts=counts,
        stream_bytes=len(data),
        canonical=canonical,
        problems=tuple(problems),
        plan=plan,
        plan_problem=plan_problem,
        data=data,
    )


def _plan(
    data: bytes, pages: tuple[SgxsPage, ...], head: dict, unsized: bool, in_order: bool, origin: str
) -> tuple[MeasurementPlan | None, str | None]:
    """The equivalent plan, or the reason there is none."""
    if unsized:
        return None, "UNSIZED stream: SIZE is not final, so it cannot be measured"
    for page in pages:
        if page.measured not in (0, FULL_PAGE):
            return None, f"page {page.offset:#x} is only partly measured ({page.status}); no page-based plan"
        if page.measured and page.unmeasured:
            return None, f"page {page.offset:#x} mixes measured and unmeasured chunks"
    if not in_order:
        return None, "EEXTEND records are not in page order; no page-based plan"
    runs: list[PageRun] = []
    position = RECORD_SIZE
    # Walk the records again to collect each measured page's 4096 data bytes in order.
    contents: dict[int, bytes] = {}
    length = len(data)
    while position < length:
        tag = data[position : position + 8]
        if tag == TAG_EADD:
            position += RECORD_SIZE
            continue
        offset = struct.unpack_from("<Q", data, position + 8)[0]
        if tag == TAG_EEXTEND and offset % PAGE_SIZE == 0:
            page_offset = offset
            start = position
            chunks = []
            for index in range(CHUNKS_PER_PAGE):
                record_start = start + index * (RECORD_SIZE + CHUNK_SIZE)
                chunks.append(data[record_start + RECORD_SIZE : record_start + RECORD_SIZE + CHUNK_SIZE])
            contents[page_offset] = b"".join(chunks)
            position = start + CHUNKS_PER_PAGE * (RECORD_SIZE + CHUNK_SIZE)
            continue
        position += RECORD_SIZE + CHUNK_SIZE
    current: list[SgxsPage] = []

    def flush() -> None:
        if not current:
            return
        first = current[0]
        measured = first.measured == FULL_PAGE
        payload = b"".join(contents[page.offset] for page in current) if measured else None
        region = f"sgxs {secinfo_text(first.flags)}"
        key = ("sgxs", hashlib.blake2b(payload, digest_size=20).hexdigest()) if payload is not None else ()
        runs.append(PageRun(first.offset, len(current), first.flags, measured, region, data=payload, key=key))
        current.clear()

    for page in pages:
        if current:
            last = current[-1]
            if (
                page.offset == last.offset + PAGE_SIZE
                and page.flags == last.flags
                and (page.measured == FULL_PAGE) == (last.measured == FULL_PAGE)
            ):
                current.append(page)
                continue
            flush()
        current.append(page)
    flush()
    try:
        return MeasurementPlan(ssaframesize=head["ssaframesize"], size=head["size"], runs=tuple(runs)), None
    except Exception as error:  # LayoutError from PageRun: cannot happen for aligned pages
        raise ContainerError(f"{origin}: {error}") from error
