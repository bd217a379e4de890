"""The measurement plan: what gets EADDed/EEXTENDed, in order, and the exact record bytes.

A :class:`MeasurementPlan` is the ECREATE parameters plus an ordered tuple of
:class:`PageRun` (consecutive pages treated alike). It is the single input of the
measurement engine (``core.measure``), of ``.sgxs`` export and of the Records views, so
every producer of enclaves (ensign's own layout, the Intel SDK loader, ``.sgxs`` files)
describes itself this way.

Record formats follow SPEC §1.1: ECREATE ``<8sIQ44s``, EADD ``<8sQQ40s`` and EEXTEND
``<8sQ48s`` + 256 data bytes. This module builds record bytes in numpy batches so that
no Python code runs per page. It never hashes, never prints and never imports a UI.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from core.errors import LayoutError

PAGE_SIZE = 4096
CHUNK_SIZE = 256
CHUNKS_PER_PAGE = PAGE_SIZE // CHUNK_SIZE
RECORD_SIZE = 64
EEXTEND_RECORD_SIZE = RECORD_SIZE + CHUNK_SIZE  # header + data
MEASURED_PAGE_STREAM = RECORD_SIZE + CHUNKS_PER_PAGE * EEXTEND_RECORD_SIZE  # 5184

TAG_ECREATE = b"ECREATE\x00"
TAG_EADD = b"EADD\x00\x00\x00\x00"
TAG_EEXTEND = b"EEXTEND\x00"
TAG_UNMEASURED = b"UNMEASRD"  # Fortanix .sgxs: page data that is loaded but not hashed

# SECINFO.FLAGS (SPEC §1.2)
SECINFO_R = 0x1
SECINFO_W = 0x2
SECINFO_X = 0x4
PT_TCS = 0x1 << 8
PT_REG = 0x2 << 8
FLAGS_TCS = PT_TCS


def secinfo_text(flags: int) -> str:
    """Human form of SECINFO flags, e.g. ``REG R-X`` or ``TCS``."""
    page_type = (flags >> 8) & 0xFF
    kind = {0: "SECS", 1: "TCS", 2: "REG", 3: "VA", 4: "TRIM"}.get(page_type, f"type{page_type}")
    if page_type == 1:
        return kind
    perms = ("R" if flags & 1 else "-") + ("W" if flags & 2 else "-") + ("X" if flags & 4 else "-")
    return f"{kind} {perms}"


def ecreate_record(ssaframesize: int, size: int) -> bytes:
    """The 64-byte ECREATE record (SSAFRAMESIZE in pages, SIZE in bytes)."""
    return struct.pack("<8sIQ44s", TAG_ECREATE, ssaframesize, size, b"")


def eadd_record(offset: int, flags: int) -> bytes:
    """The 64-byte EADD record for a page at ``offset`` with SECINFO ``flags``."""
    return struct.pack("<8sQQ40s", TAG_EADD, offset, flags, b"")


def eextend_header(offset: int) -> bytes:
    """The 64-byte EEXTEND header for the 256-byte chunk at ``offset``."""
    return struct.pack("<8sQ48s", TAG_EEXTEND, offset, b"")


def content_key_for_bytes(data: bytes | memoryview) -> tuple[str, str]:
    """A cache key for explicit page content: its SHA-256 (use only for small data)."""
    return ("sha256", hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, slots=True)
class PageRun:
    """Consecutive pages with one treatment.

    ``measured`` pages get EADD + 16 EEXTEND; unmeasured ones only EADD. Content of a
    measured run is ``data`` (exactly ``pages * 4096`` bytes, may be an mmap-backed
    memoryview) or, when ``data`` is None, every page filled with the 4-byte ``fill``.
    ``key`` identifies the content for checkpoint caching: equal keys must mean equal
    bytes (use :func:`content_key_for_bytes` or a file identity + range). ``checkpoint``
    asks the engine to keep the hash state right after this run, where re-measurements
    after an edit are expected to start (it does not change any record).
    """

    offset: int  # bytes from enclave base (page-aligned); EADD offset of the first page
    pages: int  # number of 4 KiB pages
    flags: int  # SECINFO.FLAGS of every page (SPEC §1.2)
    measured: bool  # True: EADD + EEXTEND of every chunk; False: EADD only
    region: str  # name of the layout region this run belongs to (for display/diff)
    data: bytes | memoryview | None = field(default=None, compare=False, repr=False)
    fill: bytes = b"\x00\x00\x00\x00"  # 4-byte pattern when data is None
    key: tuple = ()  # content identity for caching (only meaningful when measured)
    checkpoint: bool = field(default=False, compare=False)  # keep a SHA-256 checkpoint right after this run

    def __post_init__(self) -> None:
        if self.offset % PAGE_SIZE:
            raise LayoutError(f"region {self.region}: offset {self.offset:#x} is not page-aligned")
        if self.pages < 0:
            raise LayoutError(f"region {self.region}: negative page count")
        if self.data is not None and len(self.data) != self.pages * PAGE_SIZE:
            raise LayoutError(
                f"region {self.region}: {len(self.data)} content bytes for {self.pages} pages"
            )
        if len(self.fill) != 4:
            raise LayoutError(f"region {self.region}: fill pattern must be 4 bytes")

    @property
    def end(self) -> int:
        """First byte offset after the run."""
        return self.offset + self.pages * PAGE_SIZE

    @property
    def record_count(self) -> int:
        """Number of records (EADD + EEXTEND) this run contributes."""
        return self.pages * (1 + CHUNKS_PER_PAGE if self.measured else 1)

    @property
    def stream_size(self) -> int:
        """Bytes this run contributes to the hashed stream."""
        return self.pages * (MEASURED_PAGE_STREAM if self.measured else RECORD_SIZE)

    def cache_key(self) -> tuple:
        """Everything that decides this run's record bytes."""
        content = (self.key or ("fill", self.fill)) if self.measured else ()
        return (self.offset, self.pages, self.flags, self.measured, content)

    def page_bytes(self, index: int) -> bytes:
        """Content of page ``index`` of this run (fill pattern or data)."""
        if self.data is not None:
            return bytes(self.data[index * PAGE_SIZE : (index + 1) * PAGE_SIZE])
        return self.fill * (PAGE_SIZE // 4)


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the stream, for display and diffing."""

    index: int  # position in the stream (ECREATE = 0)
    kind: str  # 'ECREATE' | 'EADD' | 'EEXTEND'
    offset: int  # EADD page offset / EEXTEND chunk offset / 0 for ECREATE
    flags: int  # SECINFO.FLAGS for EADD, the page's flags for EEXTEND
    run_index: int  # index into plan.runs (-1 for ECREATE)
    region: str


@dataclass(frozen=True, slots=True)
class MeasurementPlan:
    """ECREATE parameters and the ordered page runs: the whole measured stream."""

    ssaframesize: int  # SECS.SSAFRAMESIZE, pages
    size: int  # SECS.SIZE, bytes (power of two)
    runs: tuple[PageRun, ...]
    _record_starts: tuple[int, ...] | None = field(default=None, compare=False, repr=False)

    def _starts(self) -> tuple[int, ...]:
        """Stream position of each run's first record, computed on first use (plans are built often)."""
        if self._record_starts is None:
            starts = []
            position = 1
            for run in self.runs:
                starts.append(position)
                position += run.record_count
            object.__setattr__(self, "_record_starts", tuple(starts))
        return self._record_starts  # type: ignore[return-value]

    @property
    def ecreate(self) -> bytes:
        """The ECREATE record."""
        return ecreate_record(self.ssaframesize, self.size)

    @property
    def record_count(self) -> int:
        """Total records including ECREATE."""
        return 1 + sum(run.record_count for run in self.runs)

    @property
    def stream_size(self) -> int:
        """Total bytes of the hashed stream."""
        return RECORD_SIZE + sum(run.stream_size for run in self.runs)

    def counts(self) -> dict[str, int]:
        """Records per kind: ``{'ECREATE': 1, 'EADD': n, 'EEXTEND': m}``."""
        eadd = sum(run.pages for run in self.runs)
        eextend = sum(run.pages * CHUNKS_PER_PAGE for run in self.runs if run.measured)
        return {"ECREATE": 1, "EADD": eadd, "EEXTEND": eextend}

    def record_at(self, index: int) -> Record:
        """The record at stream position ``index`` (random access, no hashing)."""
        if index < 0 or index >= self.record_count:
            raise IndexError(index)
        if index == 0:
            return Record(0, "ECREATE", 0, 0, -1, "ECREATE")
        starts = self._starts()
        run_index = bisect.bisect_right(starts, index) - 1
        run = self.runs[run_index]
        within = index - starts[run_index]
        per_page = 1 + CHUNKS_PER_PAGE if run.measured else 1
        page, sub = divmod(within, per_page)
        page_offset = run.offset + page * PAGE_SIZE
        if sub == 0:
            return Record(index, "EADD", page_offset, run.flags, run_index, run.region)
        return Record(
            index, "EEXTEND", page_offset + (sub - 1) * CHUNK_SIZE, run.flags, run_index, run.region
        )

    def first_record_of_run(self, run_index: int) -> int:
        """Stream position of the first record of ``runs[run_index]``."""
        return self._starts()[run_index]

    def run_for_offset(self, offset: int) -> PageRun | None:
        """The run that EADDs the page containing ``offset``, if any."""
        for run in self.runs:
            if run.offset <= offset < run.end:
                return run
        return None

    def check(self) -> None:
        """Validate SPEC §1.3 rules: SIZE power of two ≥ 2 pages, pages inside SIZE, no page twice.

        Raises:
            LayoutError: naming the first violated rule.
        """
        if self.size < 2 * PAGE_SIZE or self.size & (self.size - 1):
            raise LayoutError(f"SIZE {self.size:#x} must be a power of two of at least 2 pages")
        if self.ssaframesize < 1:
            raise LayoutError("SSAFRAMESIZE must be at least 1 page")
        spans = sorted((run.offset, run.end, run.region) for run in self.runs if run.pages)
        for (_start, end, region), (next_start, _, next_region) in zip(spans, spans[1:], strict=False):
            if next_start < end:
                raise LayoutError(f"regions {region} and {next_region} both add the page at {next_start:#x}")
        if spans and spans[-1][1] > self.size:
            raise LayoutError(f"region {spans[-1][2]} ends at {spans[-1][1]:#x}, beyond SIZE {self.size:#x}")


# ---------------------------------------------------------------------------------------------
# numpy record builders
# ---------------------------------------------------------------------------------------------

_EADD_TEMPLATE = np.frombuffer(eadd_record(0, 0), dtype=np.uint8)
_EEXTEND_TEMPLATE = np.frombuffer(eextend_header(0), dtype=np.uint8)
_CHUNK_OFFSETS = (np.arange(CHUNKS_PER_PAGE, dtype=np.uint64) * CHUNK_SIZE).reshape(1, CHUNKS_PER_PAGE, 1)


def page_content_array(run: PageRun, first_page: int, count: int) -> np.ndarray:
    """Content of pages ``[first_page, first_page+count)`` of a measured run, shape (count, 4096)."""
    if run.data is not None:
        flat = np.frombuffer(run.data, dtype=np.uint8, count=count * PAGE_SIZE, offset=first_page * PAGE_SIZE)
        return flat.reshape(count, PAGE_SIZE)
    page = np.frombuffer(run.fill * (PAGE_SIZE // 4), dtype=np.uint8)
    return np.broadcast_to(page, (count, PAGE_SIZE))


def build_records(run: PageRun, first_page: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
    """Record bytes for ``count`` pages of ``run`` starting at ``first_page``.

    Args:
        run: the page run.
        first_page: index of the first page within the run.
        count: number of pages.
        out: optional uint8 buffer, reused between batches; must hold the records when given.

    Returns:
        A contiguous uint8 array holding exactly the records' bytes.
    """
    per_page = MEASURED_PAGE_STREAM if run.measured else RECORD_SIZE
    needed = count * per_page
    if out is None:
        out = np.empty(needed, dtype=np.uint8)
    view = out[:needed].reshape(count, per_page)
    page_offsets = (
        np.arange(first_page, first_page + count, dtype=np.uint64) * PAGE_SIZE + np.uint64(run.offset)
    )
    if run.data is None:
        # Every page's records are the same template but for the offsets: one broadcast copy.
        view[:] = _page_template(run.flags, run.measured, run.fill)
    else:
        view[:, :RECORD_SIZE] = _page_template(run.flags, False, b"")
    view[:, 8:16].view("<u8")[:, 0] = page_offsets
    if run.measured:
        extends = view[:, RECORD_SIZE:].reshape(count, CHUNKS_PER_PAGE, EEXTEND_RECORD_SIZE)
        if run.data is not None:
            extends[:, :, :RECORD_SIZE] = _EEXTEND_TEMPLATE
            extends[:, :, RECORD_SIZE:] = page_content_array(run, first_page, count).reshape(
                count, CHUNKS_PER_PAGE, CHUNK_SIZE
            )
        extends[:, :, 8:16].view("<u8")[:] = page_offsets.reshape(count, 1, 1) + _CHUNK_OFFSETS
    return out[:needed]


_TEMPLATES: dict[tuple[int, bool, bytes], np.ndarray] = {}


def _page_template(flags: int, measured: bool, fill: bytes) -> np.ndarray:
    """Records of one page at offset 0: EADD (with ``flags``) and, if measured, 16 EEXTEND of ``fill``."""
    key = (flags, measured, fill if measured else b"")
    template = _TEMPLATES.get(key)
    if template is None:
        record = bytearray(eadd_record(0, flags))
        if measured:
            page = fill * (PAGE_SIZE // 4)
            for chunk in range(CHUNKS_PER_PAGE):
                record += eextend_header(chunk * CHUNK_SIZE) + page[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE]
        template = np.frombuffer(bytes(record), dtype=np.uint8)
        if len(_TEMPLATES) > 256:
            _TEMPLATES.clear()
        _TEMPLATES[key] = template
    return template


def iter_stream_chunks(plan: MeasurementPlan, pages_per_batch: int = 256) -> Iterator[memoryview]:
    """The whole record stream as a sequence of byte chunks (ECREATE first).

    Used for ``.sgxs`` export and tests; the measurement engine has its own faster loop.
    """
    yield memoryview(plan.ecreate)
    buffer = np.empty(pages_per_batch * MEASURED_PAGE_STREAM, dtype=np.uint8)
    for run in plan.runs:
        for first, count in batches(run, pages_per_batch):
            yield memoryview(build_records(run, first, count, buffer))  # type: ignore[arg-type]


def batches(run: PageRun, pages_per_batch: int = 256) -> Iterator[tuple[int, int]]:
    """(first_page, count) slices of a run so that each batch's records fit one buffer.

    A buffer of ``pages_per_batch * 5184`` bytes holds a batch of measured pages, or
    81 times as many EADD-only pages (64 bytes each).
    """
    batch = pages_per_batch if run.measured else pages_per_batch * (MEASURED_PAGE_STREAM // RECORD_SIZE)
    for first in range(0, run.pages, batch):
        yield first, min(batch, run.pages - first)


def batches_from(run: PageRun, first_page: int, pages_per_batch: int = 256) -> Iterator[tuple[int, int]]:
    """Like :func:`batches`, but starting at page ``first_page`` of the run (resuming mid-run)."""
    for first, count in batches(run, pages_per_batch):
        if first + count <= first_page:
            continue
        if first < first_page:
            count -= first_page - first
            first = first_page
        yield first, count


