"""Record-by-record comparison of two measurements: where and why two MRENCLAVEs differ.

:func:`diff_sides` compares two :class:`DiffSide` (a :class:`~core.records.MeasurementPlan`
plus a way to name its pages), so anything that yields a plan plugs in: an ensign program
under given or signed parameters, a ``.sgxs`` stream, an Intel SGX SDK enclave
(:func:`open_side` recognises each through :func:`core.containers.open_any`).

The result names the ECREATE differences (SIZE, SSAFRAMESIZE), the first diverging record in
stream order, and every divergent stretch of pages, classified as present in one only, SECINFO
flags differ, measured in one only, or content differs (with the differing 256-byte chunks).
Stretches break at section, segment and region boundaries so that thousands of differing
pages still read as a handful of lines, and each is mapped back to region, ELF segment,
section and nearest symbol.

It is fast because it never hashes: page contents are compared directly, as 64-bit words in
numpy batches over both plans' (mmap-backed) data, and runs whose content keys are equal are
skipped without reading them. This module never prints and never imports a UI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.enclave import EnclaveBinary, PageLocation
from core.errors import ContainerError, MeasurementCancelled
from core.layout import VARIANT_SGX1, Layout
from core.params import Params
from core.records import (
    CHUNK_SIZE,
    CHUNKS_PER_PAGE,
    PAGE_SIZE,
    MeasurementPlan,
    PageRun,
    Record,
    page_content_array,
    secinfo_text,
)

ProgressCallback = Callable[[int, int], None]
"""``on_progress(done_pages, total_pages)`` of the comparison."""

KIND_ONLY_A = "only-a"  # page EADDed by A only
KIND_ONLY_B = "only-b"  # page EADDed by B only
KIND_FLAGS = "flags"  # both add the page, with different SECINFO flags
KIND_MEASURED = "measured"  # same flags, but EEXTENDed by one side only
KIND_CONTENT = "content"  # both measure the page; some 256-byte chunks differ
KINDS = (KIND_ONLY_A, KIND_ONLY_B, KIND_FLAGS, KIND_MEASURED, KIND_CONTENT)
KIND_TEXT = {
    KIND_ONLY_A: "only in A",
    KIND_ONLY_B: "only in B",
    KIND_FLAGS: "flags differ",
    KIND_MEASURED: "measured in one only",
    KIND_CONTENT: "content differs",
}

COMPARE_PAGES = 1024  # pages per numpy comparison batch (4 MiB per side)
DETAIL_PAGES = 64  # pages per content stretch described one by one


# ---------------------------------------------------------------------------------------------
# sides
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffSide:
    """One measurement to compare: a plan and what its pages are."""

    label: str  # short name for reports, e.g. "app (SGX1, signed parameters)"
    plan: MeasurementPlan
    locate: Callable[[int], PageLocation] | None = field(default=None, repr=False, compare=False)
    boundaries: tuple[int, ...] = ()  # offsets where a stretch must break (sections, segments, regions)
    info: dict = field(default_factory=dict, compare=False)  # JSON: path, kind, variant, params

    def where(self, offset: int) -> PageLocation:
        """Describe the byte at ``offset`` (region, segment, section, symbol)."""
        if self.locate is not None:
            return self.locate(offset)
        run = self.plan.run_for_offset(offset)
        return PageLocation(offset, run.region if run else "not added", None, None, None, None)


def side_for_binary(binary: EnclaveBinary, params: Params, variant: str = VARIANT_SGX1, *,
                    label: str | None = None, info: dict | None = None) -> DiffSide:
    """The side of an ensign program measured with ``params`` (``variant`` 'sgx1' or 'edmm')."""
    layout = binary.layout(params, variant)
    return DiffSide(
        label=label or f"{binary.path} ({variant.upper()})",
        plan=layout.plan,
        locate=_binary_locator(binary, layout),
        boundaries=_binary_boundaries(binary, layout),
        info={"path": binary.path, "kind": "ensign-program", "variant": variant, "params": params.to_dict(),
              **(info or {})},
    )


def side_for_plan(plan: MeasurementPlan, label: str, *, locate: Callable[[int], PageLocation] | None = None,
                  boundaries: Sequence[int] = (), info: dict | None = None) -> DiffSide:
    """The side of any plan (``.sgxs`` streams, SDK enclaves, tests)."""
    edges = set(boundaries)
    for run in plan.runs:
        edges.update((run.offset, run.end))
    return DiffSide(label=label, plan=plan, locate=locate, boundaries=tuple(sorted(edges)), info=dict(info or {}))


def _binary_locator(binary: EnclaveBinary, layout: Layout) -> Callable[[int], PageLocation]:
    def locate(offset: int) -> PageLocation:
        return binary.locate(offset, layout)

    return locate


def _binary_boundaries(binary: EnclaveBinary, layout: Layout) -> tuple[int, ...]:
    base = binary.image_plan.base_vaddr
    edges: set[int] = set()
    for region in layout.regions:
        edges.update((region.offset, region.end))
    for section in binary.image.sections:
        if section.is_alloc and section.size:
            edges.add((section.addr - base) & ~(PAGE_SIZE - 1))
            edges.add(-(-(section.addr + section.size - base) // PAGE_SIZE) * PAGE_SIZE)
    for run in layout.plan.runs:
        edges.update((run.offset, run.end))
    return tuple(sorted(edge for edge in edges if edge >= 0))


def open_side(path: str, *, params: Params | None = None, signed: bool = False,
              overrides: dict[str, str] | None = None, variant: str | None = None) -> DiffSide:
    """Open one side of a diff from a file.

    * an ensign program (ELF): measured with ``params``, or with its signed parameters when
      ``signed``; ``overrides`` (parameter name → text) apply on top, and ``variant``
      picks SGX1 or EDMM;
    * a ``.sgxs`` stream (also ``.sgxs.gz``) or an Intel SGX SDK enclave: the plan the file
      determines (parameters do not apply).

    Raises:
        ContainerError: a file with no measurement (a SIGSTRUCT, a token), ``signed`` on an
            unsigned program, or a stream that cannot be expressed as a plan.
        ParamError: a bad override.
        ElfFormatError: a broken ELF.
    """
    from core.containers import open_any
    from core.elf import ELF_MAGIC, load_elf
    from core.sdk_metadata import NOTE_SECTION

    overrides = dict(overrides or {})
    variant_override = overrides.pop("variant", None)
    variant = (variant_override or variant or VARIANT_SGX1).lower()
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise ContainerError(f"{path}: {error.strerror or error}") from None
    if head == ELF_MAGIC:
        image = load_elf(path)
        is_sdk = image.section_by_name(NOTE_SECTION) is not None
        image.close()
        if not is_sdk:
            binary = EnclaveBinary.open(path)
            if signed:
                if binary.signature is None:
                    raise ContainerError(f"{path}: not signed by ensign, so it has no signed parameters")
                base = binary.signature.params
                how = "signed parameters"
            else:
                base = params or Params()
                how = "given parameters"
            for name, text in overrides.items():
                base = base.with_value(name, text)
            if overrides:
                how += " + " + ", ".join(f"{name}={text}" for name, text in overrides.items())
            return side_for_binary(binary, base, variant, label=f"{path} ({variant.upper()}, {how})",
                                   info={"parameters": how})
    if overrides:
        raise ContainerError(f"{path}: parameters apply only to ELF programs, not to this file")
    container = open_any(path)
    if container.sdk is not None:
        sdk = container.sdk
        plan = container.plan()
        if plan is None:
            raise ContainerError(f"{path}: an unsigned SDK enclave has no layout to compare (sign it first)")

        def locate_sdk(offset: int) -> PageLocation:
            found = sdk.describe_offset(offset)
            segment = found.region if found.region.startswith("LOAD[") else None
            return PageLocation(offset, found.region, segment, found.section, found.symbol, None)

        regions = container.regions()
        return side_for_plan(plan, f"{path} (SDK enclave)", locate=locate_sdk,
                             boundaries=[edge for r in regions for edge in (r.offset, r.end)],
                             info={"path": path, "kind": container.kind})
    if container.sgxs is not None:
        stream = container.sgxs
        if stream.plan is None:
            raise ContainerError(f"{path}: {stream.plan_problem}")
        return side_for_plan(stream.plan, f"{path} (.sgxs stream)", info={"path": path, "kind": container.kind})
    raise ContainerError(f"{path}: {container.title} holds no measurement to compare; "
                         "use 'ensign explain APP --sig FILE' to compare against its hash")


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EcreateDifference:
    """An ECREATE field that differs."""

    name: str  # 'SIZE' (bytes) or 'SSAFRAMESIZE' (pages)
    a: int
    b: int


@dataclass(frozen=True, slots=True)
class PageDifference:
    """One page whose content differs."""

    offset: int  # page offset from enclave base
    chunk_mask: int  # bit i set: chunk i (bytes offset + 256·i …) differs
    first_byte: int  # offset of the first differing byte (enclave offset)
    location: PageLocation  # of the first differing byte

    @property
    def chunks(self) -> list[int]:
        """Indices (0–15) of the differing chunks."""
        return [i for i in range(CHUNKS_PER_PAGE) if self.chunk_mask >> i & 1]


@dataclass(frozen=True, slots=True)
class DiffStretch:
    """Consecutive pages that differ in the same way, inside one section/region."""

    kind: str  # one of KINDS
    offset: int  # first page (bytes from enclave base)
    pages: int  # number of pages
    flags_a: int | None  # SECINFO flags in A (None: not added by A)
    flags_b: int | None
    where_a: PageLocation | None  # first (differing) byte, located in A
    where_b: PageLocation | None
    record_a: int | None  # stream index of the stretch's first differing record in A
    record_b: int | None
    chunks: int = 0  # differing 256-byte chunks (content stretches)
    details: tuple[PageDifference, ...] = ()  # content stretches: the first DETAIL_PAGES pages
    measured_by: str | None = None  # 'measured' stretches: the side that EEXTENDs the pages ('A'/'B')

    @property
    def end(self) -> int:
        """Offset after the last page."""
        return self.offset + self.pages * PAGE_SIZE

    def describe(self) -> str:
        """One line: kind, pages, where, and what differs."""
        count = f"{self.pages} page" + ("s" if self.pages != 1 else "")
        span = f"{self.offset:#x}" if self.pages == 1 else f"{self.offset:#x}-{self.end - 1:#x}"
        where = self.where_a or self.where_b
        text = f"{KIND_TEXT[self.kind]}: {count} at {span}"
        if self.where_a is not None and self.where_b is not None and self.where_a.region != self.where_b.region:
            text += f" — A {_where_text(self.where_a)}; B {_where_text(self.where_b)}"
        elif where is not None:
            text += f" — {_where_text(where)}"
        if self.kind == KIND_FLAGS:
            text += f"; A {_flags(self.flags_a)}, B {_flags(self.flags_b)}"
        elif self.kind == KIND_CONTENT:
            total = self.pages * CHUNKS_PER_PAGE
            text += f"; {self.chunks} of {total} chunks differ"
            if self.pages == 1 and self.details:
                text += " (chunk " + ", ".join(str(c) for c in self.details[0].chunks) + ")"
        elif self.kind in (KIND_ONLY_A, KIND_ONLY_B):
            flags = self.flags_a if self.kind == KIND_ONLY_A else self.flags_b
            text += f"; {_flags(flags)}"
        elif self.kind == KIND_MEASURED and self.measured_by:
            text += f"; EEXTENDed in {self.measured_by} only"
        return text


def _flags(flags: int | None) -> str:
    return "-" if flags is None else f"{secinfo_text(flags)} ({flags:#x})"


def _where_text(location: PageLocation) -> str:
    parts = [f"image {location.segment}" if location.segment else location.region]
    if location.vaddr is not None:
        parts.append(f"vaddr {location.vaddr:#x}")
    if location.section:
        parts.append(f"section {location.section}")
    if location.symbol:
        parts.append(f"symbol {location.symbol}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class FirstDivergence:
    """The first record (in stream order) where the two streams differ; all before it are equal."""

    index: int  # stream position (ECREATE = 0), the same in both streams
    record_a: Record | None  # None: A's stream ended
    record_b: Record | None
    reason: str  # what differs, one line
    where: PageLocation | None  # the page concerned


@dataclass(frozen=True, slots=True)
class DiffReport:
    """Everything :func:`diff_sides` found."""

    a: DiffSide
    b: DiffSide
    ecreate: tuple[EcreateDifference, ...]
    first: FirstDivergence | None  # None: the streams are identical (same MRENCLAVE)
    stretches: tuple[DiffStretch, ...]  # in offset order
    pages: dict[str, int]  # differing pages per kind
    compared_pages: int  # pages present in both and compared
    elapsed: float  # seconds

    @property
    def identical(self) -> bool:
        """True when both streams are byte-identical (hence the same MRENCLAVE)."""
        return self.first is None

    def groups(self) -> list[tuple[str, str, int, int]]:
        """Stretches rolled up by (kind, where): ``(kind, where, pages, stretches)``, largest first."""
        totals: dict[tuple[str, str], list[int]] = {}
        for stretch in self.stretches:
            where = stretch.where_a or stretch.where_b
            label = _group_label(where) if where is not None else "?"
            entry = totals.setdefault((stretch.kind, label), [0, 0])
            entry[0] += stretch.pages
            entry[1] += 1
        rows = [(kind, label, pages, count) for (kind, label), (pages, count) in totals.items()]
        rows.sort(key=lambda row: (-row[2], KINDS.index(row[0]), row[1]))
        return rows


def _group_label(location: PageLocation) -> str:
    region = f"image {location.segment}" if location.segment else location.region
    words = region.split(" ", 2)
    if len(words) == 3 and words[0] == "thread" and words[1].isdigit():
        region = f"thread * {words[2]}"  # one group for the same region of every thread
    if location.section:
        return f"{region}, section {location.section}"
    return region


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------


def diff_sides(a: DiffSide, b: DiffSide, *, on_progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None, detail_pages: int = DETAIL_PAGES) -> DiffReport:
    """Compare two measurements record by record.

    Args:
        a: the first side (e.g. the signed configuration).
        b: the second side.
        on_progress: ``(done, total)`` pages compared, at most every 50 ms.
        cancel: stops the comparison at the next batch.
        detail_pages: content stretches describe at most this many pages one by one.

    Returns:
        The :class:`DiffReport`.

    Raises:
        MeasurementCancelled: ``cancel`` was set.
    """
    started = time.perf_counter()
    plan_a, plan_b = a.plan, b.plan
    ecreate = []
    if plan_a.size != plan_b.size:
        ecreate.append(EcreateDifference("SIZE", plan_a.size, plan_b.size))
    if plan_a.ssaframesize != plan_b.ssaframesize:
        ecreate.append(EcreateDifference("SSAFRAMESIZE", plan_a.ssaframesize, plan_b.ssaframesize))

    pieces = list(_pieces(plan_a, plan_b))
    total = sum(piece.pages for piece in pieces if piece.run_a is not None and piece.run_b is not None)
    progress = _Progress(on_progress, total)
    raw: list[tuple[str, int, int, _Piece]] = []  # kind, offset, pages, piece
    content_offsets: list[np.ndarray] = []
    content_masks: list[np.ndarray] = []
    for piece in pieces:
        if cancel is not None and cancel.is_set():
            raise MeasurementCancelled("diff cancelled")
        run_a, run_b = piece.run_a, piece.run_b
        if run_a is None or run_b is None:
            raw.append((KIND_ONLY_A if run_b is None else KIND_ONLY_B, piece.offset, piece.pages, piece))
            continue
        if run_a.flags != run_b.flags:
            raw.append((KIND_FLAGS, piece.offset, piece.pages, piece))
        elif run_a.measured != run_b.measured:
            raw.append((KIND_MEASURED, piece.offset, piece.pages, piece))
        elif run_a.measured:
            offsets, masks = _compare_content(piece, progress, cancel)  # advances the progress itself
            if len(offsets):
                content_offsets.append(offsets)
                content_masks.append(masks)
            continue
        progress.advance(piece.pages)
    progress.finish()

    all_offsets = np.concatenate(content_offsets) if content_offsets else np.empty(0, dtype=np.int64)
    all_masks = np.concatenate(content_masks) if content_masks else np.empty(0, dtype=np.int64)
    edges = np.array(sorted(set(a.boundaries) | set(b.boundaries)), dtype=np.int64)
    stretches = _layout_stretches(raw, a, b, edges)
    stretches += _content_stretches(all_offsets, all_masks, a, b, edges, detail_pages)
    stretches.sort(key=lambda stretch: (stretch.offset, KINDS.index(stretch.kind)))
    pages = {kind: 0 for kind in KINDS}
    for stretch in stretches:
        pages[stretch.kind] += stretch.pages
    first = _first_divergence(a, b, ecreate, all_offsets, all_masks)
    return DiffReport(a=a, b=b, ecreate=tuple(ecreate), first=first, stretches=tuple(stretches), pages=pages,
                      compared_pages=total, elapsed=time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class _Piece:
    """An address interval where each plan has at most one run and nothing changes."""

    offset: int
    pages: int
    run_a: PageRun | None
    run_b: PageRun | None
    index_a: int  # index of run_a in plan_a.runs (-1 when None)
    index_b: int


def _sorted_runs(plan: MeasurementPlan) -> list[tuple[int, PageRun]]:
    return sorted(((index, run) for index, run in enumerate(plan.runs) if run.pages), key=lambda item: item[1].offset)


def _pieces(plan_a: MeasurementPlan, plan_b: MeasurementPlan) -> Iterator[_Piece]:
    """Sweep both plans' runs in address order, cutting at every run boundary of either."""
    runs_a, runs_b = _sorted_runs(plan_a), _sorted_runs(plan_b)
    edges = sorted({edge for _, run in runs_a + runs_b for edge in (run.offset, run.end)})
    pa = pb = 0
    for start, end in zip(edges, edges[1:], strict=False):
        while pa < len(runs_a) and runs_a[pa][1].end <= start:
            pa += 1
        while pb < len(runs_b) and runs_b[pb][1].end <= start:
            pb += 1
        in_a = pa < len(runs_a) and runs_a[pa][1].offset <= start
        in_b = pb < len(runs_b) and runs_b[pb][1].offset <= start
        if not in_a and not in_b:
            continue
        yield _Piece(start, (end - start) // PAGE_SIZE,
                     runs_a[pa][1] if in_a else None, runs_b[pb][1] if in_b else None,
                     runs_a[pa][0] if in_a else -1, runs_b[pb][0] if in_b else -1)


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback, self.total, self.done, self.last = callback, total, 0, 0.0

    def advance(self, pages: int) -> None:
        self.done += pages
        if self.callback is not None and time.monotonic() - self.last >= 0.05:
            self.last = time.monotonic()
            self.callback(min(self.done, self.total), self.total)

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self.total, self.total)


_CHUNK_WEIGHTS = (1 << np.arange(CHUNKS_PER_PAGE, dtype=np.int64))


def _compare_content(piece: _Piece, progress: _Progress,
                     cancel: threading.Event | None) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and chunk masks of the pages of ``piece`` whose contents differ."""
    run_a, run_b = piece.run_a, piece.run_b
    assert run_a is not None and run_b is not None
    first_a = (piece.offset - run_a.offset) // PAGE_SIZE
    first_b = (piece.offset - run_b.offset) // PAGE_SIZE
    whole = first_a == 0 and first_b == 0 and piece.pages == run_a.pages == run_b.pages
    if whole and run_a.cache_key() == run_b.cache_key() and run_a.key:
        progress.advance(piece.pages)
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if run_a.data is None and run_b.data is None:
        progress.advance(piece.pages)
        if run_a.fill == run_b.fill:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        offsets = piece.offset + np.arange(piece.pages, dtype=np.int64) * PAGE_SIZE
        return offsets, np.full(piece.pages, (1 << CHUNKS_PER_PAGE) - 1, dtype=np.int64)
    offsets_out: list[np.ndarray] = []
    masks_out: list[np.ndarray] = []
    for start in range(0, piece.pages, COMPARE_PAGES):
        if cancel is not None and cancel.is_set():
            raise MeasurementCancelled("diff cancelled")
        count = min(COMPARE_PAGES, piece.pages - start)
        left = _words(page_content_array(run_a, first_a + start, count))
        right = _words(page_content_array(run_b, first_b + start, count))
        progress.advance(count)
        if np.array_equal(left, right):
            continue
        differs = (left != right).reshape(count, CHUNKS_PER_PAGE, CHUNK_SIZE // 8).any(axis=2)
        masks = differs.astype(np.int64) @ _CHUNK_WEIGHTS
        pages = np.nonzero(masks)[0]
        offsets_out.append(piece.offset + (start + pages).astype(np.int64) * PAGE_SIZE)
        masks_out.append(masks[pages])
    if not offsets_out:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(offsets_out), np.concatenate(masks_out)


def _words(pages: np.ndarray) -> np.ndarray:
    """(count, 4096) uint8 → (count, 512) uint64 (a view when contiguous; fill pages broadcast)."""
    if pages.strides[0] == 0:  # a fill pattern broadcast over the pages
        return np.broadcast_to(np.ascontiguousarray(pages[0]).view(np.uint64), (pages.shape[0], PAGE_SIZE // 8))
    return np.ascontiguousarray(pages).view(np.uint64)


def _page_bytes(run: PageRun | None, offset: int) -> bytes:
    if run is None:
        return bytes(PAGE_SIZE)
    return run.page_bytes((offset - run.offset) // PAGE_SIZE)


def _record_index(plan: MeasurementPlan, run_index: int, run: PageRun, offset: int, chunk: int | None = None) -> int:
    """Stream position of the EADD (chunk None) or EEXTEND of page ``offset`` in ``run``."""
    per_page = 1 + CHUNKS_PER_PAGE if run.measured else 1
    index = plan.first_record_of_run(run_index) + (offset - run.offset) // PAGE_SIZE * per_page
    return index if chunk is None else index + 1 + chunk


def _layout_stretches(raw: list[tuple[str, int, int, _Piece]], a: DiffSide, b: DiffSide,
                      edges: np.ndarray) -> list[DiffStretch]:
    """Merge adjacent layout differences of one kind (and one flags pair), breaking at edges."""
    merged: list[list] = []  # [kind, offset, pages, piece, flags_a, flags_b]
    edge_set = set(edges.tolist())
    for kind, offset, pages, piece in raw:
        flags_a = piece.run_a.flags if piece.run_a is not None else None
        flags_b = piece.run_b.flags if piece.run_b is not None else None
        if merged:
            last = merged[-1]
            if (last[0] == kind and last[1] + last[2] * PAGE_SIZE == offset and last[4] == flags_a
                    and last[5] == flags_b and offset not in edge_set):
                last[2] += pages
                continue
        merged.append([kind, offset, pages, piece, flags_a, flags_b])
    out = []
    for kind, offset, pages, piece, flags_a, flags_b in merged:
        record_a = (_record_index(a.plan, piece.index_a, piece.run_a, offset)
                    if piece.run_a is not None else None)
        record_b = (_record_index(b.plan, piece.index_b, piece.run_b, offset)
                    if piece.run_b is not None else None)
        out.append(DiffStretch(
            kind=kind, offset=offset, pages=pages, flags_a=flags_a, flags_b=flags_b,
            where_a=a.where(offset) if piece.run_a is not None else None,
            where_b=b.where(offset) if piece.run_b is not None else None,
            record_a=record_a, record_b=record_b,
            measured_by=(("A" if piece.run_a.measured else "B") if kind == KIND_MEASURED and piece.run_a else None),
        ))
    return out


def _content_stretches(offsets: np.ndarray, masks: np.ndarray, a: DiffSide, b: DiffSide, edges: np.ndarray,
                       detail_pages: int) -> list[DiffStretch]:
    """Group content-differing pages into stretches of consecutive pages between two edges."""
    if not len(offsets):
        return []
    buckets = np.searchsorted(edges, offsets, side="right")
    breaks = np.nonzero((np.diff(offsets) != PAGE_SIZE) | (np.diff(buckets) != 0))[0] + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(offsets)]))
    chunk_counts = _popcount16(masks)
    index_a = {id(run): i for i, run in enumerate(a.plan.runs)}
    index_b = {id(run): i for i, run in enumerate(b.plan.runs)}
    out = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        first_offset = int(offsets[start])
        run_a = a.plan.run_for_offset(first_offset)
        run_b = b.plan.run_for_offset(first_offset)
        details = []
        for position in range(start, min(end, start + detail_pages)):
            page_offset = int(offsets[position])
            mask = int(masks[position])
            details.append(_page_difference(page_offset, mask, a, b))
        first_chunk = (int(masks[start]) & -int(masks[start])).bit_length() - 1
        where_byte = details[0].first_byte if details else first_offset
        out.append(DiffStretch(
            kind=KIND_CONTENT, offset=first_offset, pages=end - start,
            flags_a=run_a.flags if run_a else None, flags_b=run_b.flags if run_b else None,
            where_a=a.where(where_byte), where_b=b.where(where_byte),
            record_a=_record_index(a.plan, index_a[id(run_a)], run_a, first_offset, first_chunk) if run_a else None,
            record_b=_record_index(b.plan, index_b[id(run_b)], run_b, first_offset, first_chunk) if run_b else None,
            chunks=int(chunk_counts[start:end].sum()), details=tuple(details),
        ))
    return out


def _popcount16(values: np.ndarray) -> np.ndarray:
    bits = ((values[:, None] >> np.arange(CHUNKS_PER_PAGE, dtype=np.int64)) & 1)
    return bits.sum(axis=1)


def _page_difference(offset: int, mask: int, a: DiffSide, b: DiffSide) -> PageDifference:
    left = np.frombuffer(_page_bytes(a.plan.run_for_offset(offset), offset), dtype=np.uint8)
    right = np.frombuffer(_page_bytes(b.plan.run_for_offset(offset), offset), dtype=np.uint8)
    positions = np.nonzero(left != right)[0]
    first_byte = offset + (int(positions[0]) if len(positions) else 0)
    return PageDifference(offset=offset, chunk_mask=mask, first_byte=first_byte, location=a.where(first_byte))


def _first_divergence(a: DiffSide, b: DiffSide, ecreate: Sequence[EcreateDifference],
                      content_offsets: np.ndarray, content_masks: np.ndarray) -> FirstDivergence | None:
    """Walk both streams in record order to the first record that differs."""
    plan_a, plan_b = a.plan, b.plan
    if ecreate:
        what = "; ".join(f"{d.name} {d.a:#x} vs {d.b:#x}" if d.name == "SIZE" else f"{d.name} {d.a} vs {d.b}"
                         for d in ecreate)
        return FirstDivergence(0, plan_a.record_at(0), plan_b.record_at(0), f"ECREATE differs: {what}", None)
    order = np.argsort(content_offsets, kind="stable") if len(content_offsets) else content_offsets
    offsets = content_offsets[order] if len(order) else content_offsets
    masks = content_masks[order] if len(order) else content_masks
    runs_a = [(i, r) for i, r in enumerate(plan_a.runs) if r.pages]
    runs_b = [(i, r) for i, r in enumerate(plan_b.runs) if r.pages]
    ia = ib = 0
    page_a = page_b = 0
    while ia < len(runs_a) and ib < len(runs_b):
        index_a, run_a = runs_a[ia]
        index_b, run_b = runs_b[ib]
        offset_a = run_a.offset + page_a * PAGE_SIZE
        offset_b = run_b.offset + page_b * PAGE_SIZE
        index = _record_index(plan_a, index_a, run_a, offset_a)
        if offset_a != offset_b or run_a.flags != run_b.flags or run_a.measured != run_b.measured:
            if offset_a != offset_b:
                reason = f"A adds page {offset_a:#x} where B adds page {offset_b:#x}"
            elif run_a.flags != run_b.flags:
                reason = f"page {offset_a:#x}: flags {_flags(run_a.flags)} in A, {_flags(run_b.flags)} in B"
            else:
                reason = f"page {offset_a:#x} is EEXTENDed in {'A' if run_a.measured else 'B'} only"
                if run_a.flags == run_b.flags:
                    index += 1  # the EADDs agree; the next record differs
            where = a.where(offset_a) if offset_a <= offset_b else b.where(offset_b)
            return FirstDivergence(index, _record_or_none(plan_a, index), _record_or_none(plan_b, index), reason,
                                   where)
        count = min(run_a.pages - page_a, run_b.pages - page_b)
        if run_a.measured and len(offsets):
            position = int(np.searchsorted(offsets, offset_a))
            if position < len(offsets) and offsets[position] < offset_a + count * PAGE_SIZE:
                page_offset = int(offsets[position])
                mask = int(masks[position])
                chunk = (mask & -mask).bit_length() - 1
                index = _record_index(plan_a, index_a, run_a, page_offset, chunk)
                chunk_offset = page_offset + chunk * CHUNK_SIZE
                return FirstDivergence(index, _record_or_none(plan_a, index), _record_or_none(plan_b, index),
                                       f"EEXTEND of chunk {chunk_offset:#x}: page content differs",
                                       a.where(_page_difference(page_offset, mask, a, b).first_byte))
        page_a += count
        page_b += count
        if page_a == run_a.pages:
            ia, page_a = ia + 1, 0
        if page_b == run_b.pages:
            ib, page_b = ib + 1, 0
    if ia == len(runs_a) and ib == len(runs_b):
        return None
    if ia < len(runs_a):
        index_a, run_a = runs_a[ia]
        offset = run_a.offset + page_a * PAGE_SIZE
        index = _record_index(plan_a, index_a, run_a, offset)
        return FirstDivergence(index, plan_a.record_at(index), None, f"B's stream ends; A goes on with page {offset:#x}",
                               a.where(offset))
    index_b, run_b = runs_b[ib]
    offset = run_b.offset + page_b * PAGE_SIZE
    index = _record_index(plan_b, index_b, run_b, offset)
    return FirstDivergence(index, None, plan_b.record_at(index), f"A's stream ends; B goes on with page {offset:#x}",
                           b.where(offset))


def _record_or_none(plan: MeasurementPlan, index: int) -> Record | None:
    return plan.record_at(index) if index < plan.record_count else None


__all__ = [
    "DiffReport", "DiffSide", "DiffStretch", "EcreateDifference", "FirstDivergence", "KINDS", "KIND_CONTENT",
    "KIND_FLAGS", "KIND_MEASURED", "KIND_ONLY_A", "KIND_ONLY_B", "KIND_TEXT", "PageDifference", "diff_sides",
    "open_side", "side_for_binary", "side_for_plan",
]
