"""Parameter search: which parameters reproduce a target MRENCLAVE?

A :class:`SearchSpace` declares the values tried for every MRENCLAVE parameter (heap,
minheap, stack over powers of two and common MiB steps, tcs 1..64, mprotect, dlopen, XFRM
choices) and how far a candidate may stray from the baseline parameters (at most
``max_changed`` parameters differ). :func:`search_parameters` derives each candidate's
layout with the core (``core.layout``) and hashes it with a :class:`PrefixHasher`.

Speed comes from the order. Records are hashed in address order (ECREATE, image, heap,
thread contexts, signed-parameters page), so candidates are sorted by ECREATE (SIZE,
SSAFRAMESIZE), then heap flags, heap size ascending, stack, tcs ascending, and last the
values that only reach the parameters page (mprotect/dlopen within one heap-flag class,
minheap under SGX1, XFRM within one SSAFRAMESIZE). Each candidate then shares most of its
record stream with the one before: the image is hashed once per ECREATE group, a larger
heap extends the previous heap's SHA-256 state, ``tcs=k+1`` adds one thread context to
``tcs=k``, and a dlopen change re-hashes only the last page.

This module never prints, never reads the environment and never imports a UI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import LayoutError, MeasurementCancelled, ParamError
from core.layout import (
    GUARD_PAGES,
    VARIANT_SGX1,
    VARIANTS,
    derive_layout,
    max_permitted_xfrm,
    ssa_frame_pages,
    thread_shape,
)
from core.measure import PAGES_PER_BATCH
from core.params import GIB, MIB, SPECS, Params, check_xfrm, format_size, parse_int, parse_size
from core.records import (
    CHUNK_SIZE,
    CHUNKS_PER_PAGE,
    MEASURED_PAGE_STREAM,
    PAGE_SIZE,
    MeasurementPlan,
    PageRun,
    batches_from,
    build_records,
    eadd_record,
    eextend_header,
)

ProgressCallback = Callable[[int, int], None]
"""``on_progress(candidates_done, candidates_total)``."""

# The parameters the search varies, in the order candidates are described.
SEARCH_PARAMETERS: tuple[str, ...] = ("heap", "minheap", "stack", "tcs", "mprotect", "dlopen", "xfrm")

# Sizes people actually configure: powers of two, 1..8 MiB, multiples of 64 MiB and of 100 MiB.
_POWERS_OF_TWO = tuple(1 << bit for bit in range(12, 41))
COMMON_SIZES: tuple[int, ...] = tuple(sorted(set(
    _POWERS_OF_TWO
    + tuple(k * MIB for k in range(1, 9))
    + tuple(k * 64 * MIB for k in range(1, 17))
    + tuple(k * 100 * MIB for k in range(1, 11))
    + (1536 * MIB, 3 * GIB, 6 * GIB, 12 * GIB)
)))
# XFRM values worth trying: legacy, AVX, MPX, AVX-512, PKRU and AMX combinations (valid per SPEC §2.6).
COMMON_XFRM: tuple[int, ...] = (0x3, 0x7, 0x1F, 0xE7, 0xFF, 0x207, 0x2E7, 0x60003, 0x60007, 0x600E7, 0x602E7)

DEFAULT_RANGES: dict[str, str] = {
    "heap": "1M-8G",
    "minheap": "0,1M-1G",
    "stack": "64K-64M",
    "tcs": "1-64",
    "mprotect": "0,1",
    "dlopen": "0,1,2",
    "xfrm": ",".join(f"{value:#x}" for value in COMMON_XFRM),
}
DEFAULT_MAX_CHANGED = 2
DEFAULT_MAX_CANDIDATES = 200_000
SMALL_RUN_PAGES = 4  # measured runs up to this long are built without numpy


# ---------------------------------------------------------------------------------------------
# the declared space
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """The values tried per parameter and the bounds of the search.

    A candidate takes, for every parameter, a baseline's value or one of the listed
    values; at most ``max_changed`` parameters differ from that baseline.
    """

    heap: tuple[int, ...]  # bytes
    minheap: tuple[int, ...]  # bytes
    stack: tuple[int, ...]  # bytes
    tcs: tuple[int, ...]  # thread count
    mprotect: tuple[int, ...]  # 0 | 1
    dlopen: tuple[int, ...]  # 0 | 1 | 2
    xfrm: tuple[int, ...]  # required XFRM bits
    variants: tuple[str, ...] = VARIANTS  # measurements tried: 'sgx1', 'edmm'
    max_changed: int = DEFAULT_MAX_CHANGED  # parameters that may differ from a baseline
    max_candidates: int = DEFAULT_MAX_CANDIDATES  # hard cap; nearest candidates are kept

    def values(self, name: str) -> tuple[int, ...]:
        """The declared values of parameter ``name``."""
        return getattr(self, name)  # type: ignore[no-any-return]

    def describe(self) -> dict[str, str]:
        """Short text per parameter (for reports): ``{"heap": "1M … 8G (49 values)"}``."""
        out = {}
        for name in SEARCH_PARAMETERS:
            values = self.values(name)
            shown = [_value_text(name, v) for v in values]
            out[name] = ", ".join(shown) if len(shown) <= 6 else f"{shown[0]} … {shown[-1]} ({len(shown)} values)"
        return out


def _value_text(name: str, value: int) -> str:
    if SPECS[name].kind == "size":
        return format_size(value)
    if name == "xfrm":
        return f"{value:#x}"
    return str(value)


def parse_choices(name: str, text: str) -> tuple[int, ...]:
    """Parse a search-space list for parameter ``name``.

    Items are separated by commas. A size item is one size (``2G``) or a range ``A-B``
    (every power of two and common MiB step in [A, B], plus A and B) or ``A-B/STEP`` (every
    multiple of STEP in [A, B]). An integer item is a number or a range ``A-B`` (every
    integer). XFRM items are values (hex allowed), each checked.

    Raises:
        ParamError: an unparseable item, naming the flag.
    """
    spec = SPECS.get(name)
    if spec is None or name not in SEARCH_PARAMETERS:
        raise ParamError(f"--search-{name}: '{name}' is not a searched parameter")
    what = f"--search-{name}"
    values: set[int] = set()
    for raw in str(text).split(","):
        item = raw.strip()
        if not item:
            continue
        low_text, dash, high_text = item.partition("-")
        if spec.kind == "size":
            if not dash:
                values.add(parse_size(item, what=what))
                continue
            high_text, slash, step_text = high_text.partition("/")
            low, high = parse_size(low_text, what=what), parse_size(high_text, what=what)
            if high < low:
                raise ParamError(f"{what}: range '{item}' ends below its start")
            if slash:
                step = parse_size(step_text, what=what)
                if step < PAGE_SIZE:
                    raise ParamError(f"{what}: step '{step_text}' is below 4K")
                values.update(range(-(-low // step) * step, high + 1, step))
            else:
                values.update(size for size in COMMON_SIZES if low <= size <= high)
                values.update((low, high))
        elif name == "xfrm":
            if dash:
                raise ParamError(f"{what}: give XFRM values, not a range ('{item}')")
            values.add(check_xfrm(parse_int(item, what=what), what=what))
        else:
            if dash:
                low, high = parse_int(low_text, what=what), parse_int(high_text, what=what)
                if high < low:
                    raise ParamError(f"{what}: range '{item}' ends below its start")
                if high - low > 100_000:
                    raise ParamError(f"{what}: range '{item}' has more than 100000 values")
                values.update(range(low, high + 1))
            else:
                values.add(parse_int(item, what=what))
    if spec.kind == "size":
        bad = sorted(v for v in values if v % PAGE_SIZE)
        if bad:
            raise ParamError(f"{what}: {bad[0]} bytes is not a multiple of 4K")
    if spec.choices:
        bad = sorted(v for v in values if v not in spec.choices)
        if bad:
            raise ParamError(f"{what}: {bad[0]} is not one of {'|'.join(map(str, spec.choices))}")
    if spec.maximum is not None and values and max(values) > spec.maximum:
        raise ParamError(f"{what}: {max(values)} is above the maximum {spec.maximum}")
    if name == "tcs" and 0 in values:
        raise ParamError(f"{what}: tcs must be at least 1")
    return tuple(sorted(values))


def build_space(ranges: dict[str, str | None] | None = None, *, fixed: Iterable[str] = (),
                variants: Sequence[str] = VARIANTS, max_changed: int = DEFAULT_MAX_CHANGED,
                max_candidates: int = DEFAULT_MAX_CANDIDATES) -> SearchSpace:
    """A search space from the defaults, narrowed or widened per parameter.

    Args:
        ranges: per parameter, a list as :func:`parse_choices` reads it (None = default).
        fixed: parameters not varied at all (only the baselines' values are tried).
        variants: measurements to try.
        max_changed: at most this many parameters differ from a baseline.
        max_candidates: stop after this many candidates (nearest first).

    Raises:
        ParamError: a bad list, unknown parameter or variant, or bound below 1.
    """
    ranges = dict(ranges or {})
    fixed = set(fixed)
    unknown = (set(ranges) | fixed) - set(SEARCH_PARAMETERS)
    if unknown:
        raise ParamError(f"cannot search '{sorted(unknown)[0]}' (searchable: {', '.join(SEARCH_PARAMETERS)})")
    for variant in variants:
        if variant not in VARIANTS:
            raise ParamError(f"unknown measurement variant '{variant}' (sgx1 or edmm)")
    if max_changed < 0:
        raise ParamError("--max-changed must be at least 0")
    if max_candidates < 1:
        raise ParamError("--max-candidates must be at least 1")
    chosen: dict[str, tuple[int, ...]] = {}
    for name in SEARCH_PARAMETERS:
        if name in fixed:
            chosen[name] = ()
        else:
            text = ranges.get(name)
            chosen[name] = parse_choices(name, text if text is not None else DEFAULT_RANGES[name])
    return SearchSpace(**chosen, variants=tuple(variants), max_changed=max_changed,
                       max_candidates=max_candidates)


DEFAULT_SPACE = build_space()


# ---------------------------------------------------------------------------------------------
# candidates
# ---------------------------------------------------------------------------------------------

Values = tuple[int, int, int, int, int, int, int]  # in SEARCH_PARAMETERS order


def _values_of(params: Params) -> Values:
    return tuple(getattr(params, name) for name in SEARCH_PARAMETERS)  # type: ignore[return-value]


def enumerate_candidates(space: SearchSpace, baselines: Sequence[Params]) -> tuple[list[Values], int]:
    """Candidate values within ``space.max_changed`` of any baseline, nearest first.

    Returns:
        ``(candidates, total)``: at most ``space.max_candidates`` distinct valid value
        tuples (every baseline first, then one changed parameter, then two, …) and how many
        the bounded space holds in all.
    """
    seen: set[Values] = set()
    ordered: list[Values] = []
    total = 0
    dims = len(SEARCH_PARAMETERS)
    for distance in range(0, min(space.max_changed, dims) + 1):
        for baseline in baselines:
            base = _values_of(baseline)
            alternatives = [tuple(v for v in space.values(name) if v != base[i])
                            for i, name in enumerate(SEARCH_PARAMETERS)]
            for positions in itertools.combinations(range(dims), distance):
                if any(not alternatives[p] for p in positions):
                    continue
                for picked in itertools.product(*(alternatives[p] for p in positions)):
                    values = list(base)
                    for position, value in zip(positions, picked, strict=True):
                        values[position] = value
                    candidate: Values = tuple(values)  # type: ignore[assignment]
                    if candidate in seen or candidate[1] > candidate[0]:  # minheap ≤ heap
                        continue
                    seen.add(candidate)
                    total += 1
                    if len(ordered) < space.max_candidates:
                        ordered.append(candidate)
    return ordered, total


@dataclass(frozen=True, slots=True)
class _Geometry:
    """What a candidate needs for sorting: SIZE and SSAFRAMESIZE without deriving a layout."""

    image_end: int  # bytes
    tls_size: int  # bytes

    def ecreate(self, values: Values, ssa_by_xfrm: dict[int, int], stride_cache: dict) -> tuple[int, int]:
        heap, _minheap, stack, tcs, _mprotect, _dlopen, xfrm = values
        ssa = ssa_by_xfrm[xfrm]
        stride = stride_cache.get((stack, ssa))
        if stride is None:
            shape = thread_shape(Params(stack=stack), ssa, self.tls_size)
            stride = stride_cache[(stack, ssa)] = shape.stride
        needed = self.image_end + heap + tcs * stride + GUARD_PAGES * PAGE_SIZE + PAGE_SIZE
        return max(2 * PAGE_SIZE, 1 << (needed - 1).bit_length()), ssa


def order_for_prefix_sharing(candidates: Sequence[tuple[str, Values]], image_end: int,
                             tls_size: int) -> list[tuple[str, Values]]:
    """Sort (variant, values) pairs so that neighbours share the longest record prefix.

    ECREATE first (SIZE, SSAFRAMESIZE), then in measurement order: heap flags, the heap
    added before EINIT, the heap size (thread offsets), stack, tcs; values that reach only
    the parameters page come last.
    """
    geometry = _Geometry(image_end, tls_size)
    ssa_by_xfrm = {xfrm: ssa_frame_pages(max_permitted_xfrm(Params(xfrm=xfrm)))
                   for xfrm in {values[6] for _, values in candidates}}
    strides: dict = {}

    def key(item: tuple[str, Values]) -> tuple:
        variant, values = item
        heap, minheap, stack, tcs, mprotect, dlopen, xfrm = values
        size, ssa = geometry.ecreate(values, ssa_by_xfrm, strides)
        executable = bool(mprotect) or dlopen >= 1
        committed = heap if variant == VARIANT_SGX1 else minheap
        return (size, ssa, variant, executable, committed, heap, stack, tcs, mprotect, dlopen, minheap, xfrm)

    return sorted(candidates, key=key)


# ---------------------------------------------------------------------------------------------
# the prefix hasher
# ---------------------------------------------------------------------------------------------


class PrefixHasher:
    """SHA-256 of a sequence of plans, resuming from the longest run prefix shared with the previous plan.

    It keeps the SHA-256 state after ECREATE and after every run of the last plan hashed.
    The next plan resumes after the longest common prefix of runs (same object or equal
    :meth:`~core.records.PageRun.cache_key`); when the first differing run only extends the
    previous one (same offset, flags and fill, more pages, content-free), it resumes after
    the previous run and hashes only the extra pages. Unlike :class:`~core.measure.Measurer`
    it computes no per-run chain keys, so a candidate costs little more than the records
    it actually adds; it is meant for long sequences of related plans (the search).
    """

    def __init__(self) -> None:
        self._ecreate: bytes | None = None
        self._runs: tuple[PageRun, ...] = ()
        self._states: list = []  # _states[i]: state after ECREATE and _runs[:i]
        self._buffer = np.empty(PAGES_PER_BATCH * MEASURED_PAGE_STREAM, dtype=np.uint8)
        self.hashed_bytes = 0  # bytes hashed over the hasher's lifetime
        self.resets = 0  # plans that had to start from ECREATE (a new SIZE/SSAFRAMESIZE)

    def digest(self, plan: MeasurementPlan, cancel: threading.Event | None = None) -> bytes:
        """MRENCLAVE of ``plan`` (exactly what :class:`~core.measure.Measurer` computes).

        Raises:
            MeasurementCancelled: ``cancel`` was set.
        """
        ecreate = plan.ecreate
        runs = plan.runs
        if ecreate != self._ecreate:
            self._ecreate = ecreate
            self._runs = ()
            self._states = [hashlib.sha256(ecreate)]
            self.resets += 1
        previous = self._runs
        limit = min(len(runs), len(previous))
        # Runs shared with the previous plan are mostly the very same objects (the image plan and
        # core.layout's thread-context memo), so find the first non-identical run at C speed and
        # compare descriptions only there.
        same = list(map(operator.is_, runs[:limit], previous[:limit]))
        common = 0
        while common < limit:
            try:
                common = same.index(False, common)
            except ValueError:
                common = limit
                break
            if runs[common].cache_key() != previous[common].cache_key():
                break
            common += 1
        states = self._states
        start_page = 0
        if common < limit and _extends(runs[common], previous[common]):
            start_page = previous[common].pages
            sha = states[common + 1].copy()
        else:
            sha = states[common].copy()
        del states[common + 1:]
        buffer = self._buffer
        hashed = 0
        for index in range(common, len(runs)):
            if cancel is not None and cancel.is_set():
                self._runs = runs[:index]
                raise MeasurementCancelled("search cancelled")
            run = runs[index]
            first_allowed = start_page if index == common else 0
            if run.measured and run.pages <= SMALL_RUN_PAGES and first_allowed == 0:
                small = _small_run_records(run)
                sha.update(small)
                hashed += len(small)
            else:
                for first, count in batches_from(run, first_allowed, PAGES_PER_BATCH):
                    data = build_records(run, first, count, buffer)
                    sha.update(data)
                    hashed += len(data)
            states.append(sha.copy())
        self._runs = runs
        self.hashed_bytes += hashed
        return sha.digest()  # type: ignore[no-any-return]


_EEXTEND_HEADERS: dict[int, tuple[bytes, ...]] = {}  # page offset -> its 16 EEXTEND headers


def _eextend_headers(offset: int) -> tuple[bytes, ...]:
    """The 16 EEXTEND headers of the page at ``offset`` (cached: parameters pages and thread
    contexts recur at the same offsets across candidates)."""
    headers = _EEXTEND_HEADERS.get(offset)
    if headers is None:
        if len(_EEXTEND_HEADERS) >= 1 << 16:
            _EEXTEND_HEADERS.clear()
        headers = _EEXTEND_HEADERS[offset] = tuple(eextend_header(offset + chunk * CHUNK_SIZE)
                                                   for chunk in range(CHUNKS_PER_PAGE))
    return headers


def _small_run_records(run: PageRun) -> bytes:
    """Records of a short measured run (TCS, SSA, thread data, parameters page) without numpy.

    numpy's per-call overhead dominates for a page or two; a search hashes several such runs
    per candidate. Same bytes as :func:`~core.records.build_records` (checked by the tests).
    """
    parts: list[bytes] = []
    for page in range(run.pages):
        offset = run.offset + page * PAGE_SIZE
        content = run.page_bytes(page)
        parts.append(eadd_record(offset, run.flags))
        for chunk, header in enumerate(_eextend_headers(offset)):
            parts.append(header)
            parts.append(content[chunk * CHUNK_SIZE:(chunk + 1) * CHUNK_SIZE])
    return b"".join(parts)


def _extends(new: PageRun, old: PageRun) -> bool:
    """True when ``new``'s records start with all of ``old``'s (content-free runs only)."""
    if new.offset != old.offset or new.flags != old.flags or new.measured != old.measured:
        return False
    if new.pages <= old.pages:
        return False
    if new.measured and (new.data is not None or old.data is not None or new.fill != old.fill):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the search
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Outcome of :func:`search_parameters`."""

    tried: int  # candidates hashed
    candidates: int  # candidates selected (≤ max_candidates)
    space_size: int  # distinct valid candidates within max_changed of a baseline
    match: Params | None  # parameters that reproduce a target
    variant: str | None  # the measurement that matched
    mrenclave: bytes | None  # the matching MRENCLAVE
    elapsed: float  # seconds
    groups: int  # ECREATE groups entered (each re-hashes the image)
    hashed_bytes: int  # record bytes hashed
    skipped: int  # candidates whose layout cannot exist (e.g. SIZE beyond 2^47)

    @property
    def capped(self) -> bool:
        """True when the space held more candidates than were tried."""
        return self.candidates < self.space_size

    @property
    def rate(self) -> float:
        """Candidates per second."""
        return self.tried / self.elapsed if self.elapsed > 0 else 0.0


def search_parameters(
    binary,
    targets: dict[bytes, str | None],
    baselines: Sequence[Params],
    space: SearchSpace = DEFAULT_SPACE,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    hasher: PrefixHasher | None = None,
) -> SearchResult:
    """Try candidates of ``space`` around ``baselines`` until one measures to a target.

    Candidates are tried in stages of growing distance (the baselines, then one changed
    parameter, then two, …) so that a single drifted value is found within a fraction of a
    second; inside a stage they are ordered for prefix sharing.

    Args:
        binary: the :class:`~core.enclave.EnclaveBinary` (its image and image plan are used).
        targets: MRENCLAVE → the variant it is known to belong to ('sgx1'/'edmm') or None.
        baselines: parameters to search around (effective, signed); SIGSTRUCT-only values
            are kept from the first.
        space: the declared space.
        on_progress: ``(done, total)`` candidates, at most every 50 ms.
        cancel: stops the search at the next candidate.
        hasher: a :class:`PrefixHasher` to reuse (a fresh one by default).

    Returns:
        The :class:`SearchResult` (``match`` None when no candidate reproduces a target).

    Raises:
        ParamError: no baseline.
        MeasurementCancelled: ``cancel`` was set.
    """
    if not baselines:
        raise ParamError("the search needs at least one baseline parameter set")
    variants = _variants_to_search(targets, space.variants)
    values, space_size = enumerate_candidates(space, baselines)
    reference = binary.layout(baselines[0], VARIANT_SGX1)
    stages: list[list[tuple[str, Values]]] = []
    budget = space.max_candidates
    base_values = [_values_of(baseline) for baseline in baselines]
    by_distance: dict[int, list[tuple[str, Values]]] = {}
    for candidate in values:
        distance = min(sum(a != b for a, b in zip(candidate, base, strict=True)) for base in base_values)
        for variant in variants:
            if budget == 0:
                break
            by_distance.setdefault(distance, []).append((variant, candidate))
            budget -= 1
    for distance in sorted(by_distance):
        stages.append(order_for_prefix_sharing(by_distance[distance], reference.image.end,
                                               reference.thread.tls_size))
    return run_candidates(binary, targets, stages, template=baselines[0], space_size=space_size * len(variants),
                          on_progress=on_progress, cancel=cancel, hasher=hasher)


def _variants_to_search(targets: dict[bytes, str | None], allowed: Sequence[str]) -> tuple[str, ...]:
    """Measurements worth trying: one known variant suffices (the same parameters give both)."""
    if None in targets.values():
        return tuple(allowed)
    known = [v for v in VARIANTS if v in targets.values() and v in allowed]
    return tuple(known[:1]) or tuple(allowed)


def run_candidates(
    binary,
    targets: dict[bytes, str | None],
    stages: Sequence[Sequence[tuple[str, Values]]],
    *,
    template: Params,
    space_size: int | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    hasher: PrefixHasher | None = None,
) -> SearchResult:
    """Hash (variant, values) candidates in the given order and stop at the first that hits a target.

    Args:
        binary: the :class:`~core.enclave.EnclaveBinary`.
        targets: MRENCLAVE → known variant or None.
        stages: lists of candidates, tried one list after the other, each in its order.
        template: SIGSTRUCT-only values (and anything not searched) come from here.
        space_size: reported as :attr:`SearchResult.space_size` (default: the candidates given).

    Returns:
        The :class:`SearchResult`.

    Raises:
        MeasurementCancelled: ``cancel`` was set.
    """
    started = time.perf_counter()
    hasher = hasher or PrefixHasher()
    resets_before, hashed_before = hasher.resets, hasher.hashed_bytes
    base = dataclasses.replace(template, sources={})
    image, image_plan = binary.image, binary.image_plan
    total = sum(len(stage) for stage in stages)
    last_report = 0.0
    tried = skipped = 0
    match = matched_variant = digest = None
    for variant, candidate in itertools.chain.from_iterable(stages):
        if cancel is not None and cancel.is_set():
            raise MeasurementCancelled("search cancelled")
        heap, minheap, stack, tcs, mprotect, dlopen, xfrm = candidate
        params = dataclasses.replace(base, heap=heap, minheap=minheap, stack=stack, tcs=tcs,
                                     mprotect=mprotect, dlopen=dlopen, xfrm=xfrm)
        try:
            layout = derive_layout(image, params, variant, image_plan)
        except LayoutError:
            skipped += 1
            continue
        value = hasher.digest(layout.plan, cancel)
        tried += 1
        if value in targets and targets[value] in (None, variant):
            match = dataclasses.replace(params, sources={name: "search" for name in SEARCH_PARAMETERS})
            matched_variant, digest = variant, value
            break
        if on_progress is not None:
            now = time.monotonic()
            if now - last_report >= 0.05:
                last_report = now
                on_progress(tried + skipped, total)
    if on_progress is not None:
        on_progress(total, total)
    return SearchResult(
        tried=tried, candidates=total, space_size=total if space_size is None else space_size, match=match,
        variant=matched_variant, mrenclave=digest, elapsed=time.perf_counter() - started,
        groups=hasher.resets - resets_before, hashed_bytes=hasher.hashed_bytes - hashed_before,
        skipped=skipped,
    )


__all__ = [
    "COMMON_SIZES", "COMMON_XFRM", "DEFAULT_MAX_CANDIDATES", "DEFAULT_MAX_CHANGED", "DEFAULT_RANGES",
    "DEFAULT_SPACE", "PrefixHasher", "SEARCH_PARAMETERS", "SearchResult", "SearchSpace", "build_space",
    "enumerate_candidates", "order_for_prefix_sharing", "parse_choices", "run_candidates", "search_parameters",
]
