"""The measurement engine: MRENCLAVE of a :class:`~core.records.MeasurementPlan`, fast and incremental.

SHA-256 over the record stream (SPEC §1.1), computed so that:

* record bytes are built by numpy in a producer thread while the calling thread hashes
  the previous batch (hashlib releases the GIL for large updates), so a full measurement
  costs little more than hashing the stream itself;
* SHA-256 states are checkpointed (``hashlib`` ``.copy()``) at run boundaries, keyed by a
  chain hash of every record description before them, and inside runs whose records do
  not depend on page content (EADD-only or fill pages), so a re-measure after an edit
  hashes only from the first changed record;
* progress is reported through a plain callable and a ``threading.Event`` cancels.

This module never prints, never reads files by itself (page content comes from the plan,
usually as mmap-backed memoryviews) and never imports a UI toolkit.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from core.errors import MeasurementCancelled
from core.records import (
    MEASURED_PAGE_STREAM,
    RECORD_SIZE,
    MeasurementPlan,
    PageRun,
    batches_from,
    build_records,
)

ProgressCallback = Callable[[int, int], None]
"""``on_progress(done_bytes, total_bytes)`` of the hashed stream."""

PAGES_PER_BATCH = 256  # 1.3 MB of records per measured batch
THREAD_THRESHOLD = 8 << 20  # below this many stream bytes, hash inline (thread start costs more)
PROGRESS_INTERVAL = 0.05  # seconds between progress callbacks
CHECKPOINT_SPACING = 256 << 10  # stream bytes between checkpoints inside a batch of packed runs


@dataclass(frozen=True, slots=True)
class Measurement:
    """Result of measuring one plan."""

    mrenclave: bytes  # 32-byte SHA-256 digest (SIGSTRUCT.ENCLAVEHASH byte order)
    size: int  # SECS.SIZE, bytes
    ssaframesize: int  # SECS.SSAFRAMESIZE, pages
    stream_size: int  # bytes of the whole record stream
    hashed_bytes: int  # bytes actually hashed by this call (the rest came from a checkpoint)
    resumed_at: int  # stream offset the hash resumed from (0 = measured from scratch)
    elapsed: float  # seconds spent in measure()
    counts: dict[str, int] = field(default_factory=dict)  # records per kind

    @property
    def hex(self) -> str:
        """MRENCLAVE as lowercase hex."""
        return self.mrenclave.hex()

    @property
    def incremental(self) -> bool:
        """True when the measurement resumed from a checkpoint."""
        return self.resumed_at > 0


def _chain(previous: bytes, run: PageRun) -> bytes:
    return hashlib.blake2b(previous + repr(run.cache_key()).encode(), digest_size=20).digest()


def _partial_key(prefix: bytes, run: PageRun) -> tuple | None:
    """Key for checkpoints inside ``run``; None when its records depend on page data."""
    if run.measured and run.data is not None:
        return None
    return (prefix, run.offset, run.flags, run.measured, run.fill if run.measured else b"")


class Measurer:
    """Measures plans and keeps SHA-256 checkpoints between calls.

    One instance per open binary (the TUI keeps one; the search reuses one for all
    candidates). Thread-safe for one measurement at a time per instance; concurrent calls
    are serialised by an internal lock.

    Args:
        max_checkpoints: bound on stored SHA-256 states (least recently used are dropped).
    """

    def __init__(self, max_checkpoints: int = 100_000) -> None:
        self._runs: OrderedDict[bytes, tuple[object, int]] = OrderedDict()  # chain key -> (sha, offset)
        self._partial: dict[tuple, dict[int, tuple[object, int]]] = {}  # partial key -> pages -> state
        self._max = max_checkpoints
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every checkpoint (e.g. after the file changed on disk)."""
        with self._lock:
            self._runs.clear()
            self._partial.clear()

    @property
    def checkpoint_count(self) -> int:
        """Number of stored SHA-256 states."""
        return len(self._runs) + sum(len(v) for v in self._partial.values())

    def _remember(self, key: bytes, sha: object, offset: int) -> None:
        self._runs[key] = (sha.copy(), offset)  # type: ignore[attr-defined]
        self._runs.move_to_end(key)
        while len(self._runs) > self._max:
            self._runs.popitem(last=False)

    def measure(
        self,
        plan: MeasurementPlan,
        *,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        sgxs_out: BinaryIO | None = None,
        use_checkpoints: bool = True,
    ) -> Measurement:
        """Compute MRENCLAVE of ``plan``.

        Args:
            plan: what to measure.
            on_progress: called with (done, total) stream bytes, at most every 50 ms.
            cancel: when set, the measurement stops at the next batch.
            sgxs_out: if given, the whole record stream is also written there (no resume).
            use_checkpoints: False forces a measurement from scratch (still stores checkpoints).

        Returns:
            The :class:`Measurement`.

        Raises:
            MeasurementCancelled: ``cancel`` was set.
        """
        with self._lock:
            return self._measure(plan, on_progress, cancel, sgxs_out, use_checkpoints and sgxs_out is None)

    # -----------------------------------------------------------------------------------------

    def _measure(
        self,
        plan: MeasurementPlan,
        on_progress: ProgressCallback | None,
        cancel: threading.Event | None,
        sgxs_out: BinaryIO | None,
        resume: bool,
    ) -> Measurement:
        started = time.perf_counter()
        ecreate = plan.ecreate
        keys = [hashlib.blake2b(ecreate, digest_size=20).digest()]
        for run in plan.runs:
            keys.append(_chain(keys[-1], run))
        total = plan.stream_size

        start_run, start_page, sha, offset = 0, 0, None, 0
        if resume:
            for index in range(len(plan.runs), -1, -1):
                found = self._runs.get(keys[index])
                if found is not None:
                    sha, offset = found[0].copy(), found[1]  # type: ignore[attr-defined]
                    start_run = index
                    break
            if start_run < len(plan.runs):
                run = plan.runs[start_run]
                partial_key = _partial_key(keys[start_run], run)
                states = self._partial.get(partial_key) if partial_key is not None else None
                if states and (sha is not None or start_run == 0):
                    usable = [pages for pages in states if pages < run.pages]
                    if usable:
                        best = max(usable)
                        sha, offset = states[best][0].copy(), states[best][1]  # type: ignore[attr-defined]
                        start_page = best
        if sha is None:
            sha = hashlib.sha256(ecreate)
            offset = len(ecreate)
            start_run, start_page = 0, 0
            if sgxs_out is not None:
                sgxs_out.write(ecreate)
            self._remember(keys[0], sha, offset)
        resumed_at = offset if offset > RECORD_SIZE else 0

        progress = _Progress(on_progress, total, offset)
        remaining = total - offset
        hasher = _Hasher(self, plan, keys, sha, offset, progress, cancel, sgxs_out)
        if remaining >= THREAD_THRESHOLD:
            hasher.run_threaded(start_run, start_page)
        else:
            hasher.run_inline(start_run, start_page)
        progress.finish()
        digest = hasher.sha.digest()  # type: ignore[attr-defined]
        return Measurement(
            mrenclave=digest,
            size=plan.size,
            ssaframesize=plan.ssaframesize,
            stream_size=total,
            hashed_bytes=total - resumed_at,
            resumed_at=resumed_at,
            elapsed=time.perf_counter() - started,
            counts=plan.counts(),
        )


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int, done: int) -> None:
        self.callback = callback
        self.total = total
        self.done = done
        self.last = 0.0

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.callback is None:
            return
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            self.callback(self.done, self.total)

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(self.total, self.total)


_BUFFER_POOL: list[np.ndarray] = []
_BUFFER_POOL_LOCK = threading.Lock()
_BUFFER_POOL_MAX = 8


def _take_buffers(count: int) -> list[np.ndarray]:
    """Batch buffers from a small process-wide pool (fresh ones page-fault on every measurement)."""
    with _BUFFER_POOL_LOCK:
        taken = [_BUFFER_POOL.pop() for _ in range(min(count, len(_BUFFER_POOL)))]
    while len(taken) < count:
        taken.append(np.empty(_Hasher.CAPACITY, dtype=np.uint8))
    return taken


def _give_buffers(buffers: list[np.ndarray]) -> None:
    with _BUFFER_POOL_LOCK:
        room = _BUFFER_POOL_MAX - len(_BUFFER_POOL)
        _BUFFER_POOL.extend(buffers[:max(room, 0)])


class _Hasher:
    """One pass over the runs from a start point, storing checkpoints as it goes.

    Small runs are packed into one batch buffer (a thread context is several tiny runs), and
    the hash is updated up to every run boundary inside a batch so each boundary still gets
    its checkpoint.
    """

    CAPACITY = PAGES_PER_BATCH * MEASURED_PAGE_STREAM

    def __init__(
        self,
        owner: Measurer,
        plan: MeasurementPlan,
        keys: list[bytes],
        sha: object,
        offset: int,
        progress: _Progress,
        cancel: threading.Event | None,
        sgxs_out: BinaryIO | None,
    ) -> None:
        self.owner = owner
        self.plan = plan
        self.keys = keys
        self.sha = sha
        self.offset = offset
        self.progress = progress
        self.cancel = cancel
        self.sgxs_out = sgxs_out

    def _pieces(self, start_run: int, start_page: int):
        """Yield (run_index, run, first_page, count) slices from the start point; empty runs once."""
        for index in range(start_run, len(self.plan.runs)):
            run = self.plan.runs[index]
            first_allowed = start_page if index == start_run else 0
            if run.pages == 0:
                yield index, run, 0, 0
                continue
            for first, count in batches_from(run, first_allowed, PAGES_PER_BATCH):
                yield index, run, first, count

    def _produce(self, start_run: int, start_page: int, acquire, emit) -> None:
        """Fill buffers from ``acquire()`` with packed records; hand each to ``emit``."""
        slot, buffer = acquire()
        if buffer is None:
            return
        position = 0
        marks: list[tuple[int, int, int]] = []  # (end byte in buffer, run index, pages done in run)
        for index, run, first, count in self._pieces(start_run, start_page):
            size = count * (MEASURED_PAGE_STREAM if run.measured else RECORD_SIZE)
            if position and position + size > self.CAPACITY:
                emit(slot, buffer, position, marks)
                slot, buffer = acquire()
                if buffer is None:
                    return
                position, marks = 0, []
            if count:
                build_records(run, first, count, buffer[position:position + size])
            position += size
            marks.append((position, index, first + count))
        emit(slot, buffer, position, marks)

    def _consume(self, buffer: np.ndarray, used: int, marks: list[tuple[int, int, int]]) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise MeasurementCancelled("measurement cancelled")
        view = memoryview(buffer)[:used]  # type: ignore[arg-type]
        previous = 0
        last = len(marks) - 1
        for position, (end, index, done) in enumerate(marks):
            run = self.plan.runs[index]
            # Checkpoint only where it pays: runs marked ``checkpoint``, every CHECKPOINT_SPACING
            # stream bytes, and the end of each batch. Fewer hash calls between checkpoints mean
            # fewer GIL hand-overs with the producer thread.
            if position != last and end - previous < CHECKPOINT_SPACING and not (
                run.checkpoint and done >= run.pages
            ):
                continue
            if end > previous:
                piece = view[previous:end]
                self.sha.update(piece)  # type: ignore[attr-defined]
                if self.sgxs_out is not None:
                    self.sgxs_out.write(piece)
                self.offset += end - previous
                previous = end
            if done >= run.pages:
                self.owner._remember(self.keys[index + 1], self.sha, self.offset)
            else:
                partial_key = _partial_key(self.keys[index], run)
                if partial_key is not None:
                    self.owner._partial.setdefault(partial_key, {})[done] = (
                        self.sha.copy(),  # type: ignore[attr-defined]
                        self.offset,
                    )
        self.progress.advance(used)

    def run_inline(self, start_run: int, start_page: int) -> None:
        buffers = _take_buffers(1)
        try:
            self._produce(start_run, start_page, lambda: (0, buffers[0]),
                          lambda _slot, buf, used, marks: self._consume(buf, used, marks))
        finally:
            _give_buffers(buffers)

    def run_threaded(self, start_run: int, start_page: int) -> None:
        slots = 4
        buffers = _take_buffers(slots)
        free: queue.Queue[int] = queue.Queue()
        for slot in range(slots):
            free.put(slot)
        full: queue.Queue = queue.Queue()
        stop = threading.Event()
        failure: list[BaseException] = []

        def acquire():
            slot = free.get()
            if stop.is_set():
                return slot, None
            return slot, buffers[slot]

        def produce() -> None:
            try:
                self._produce(start_run, start_page, acquire,
                              lambda slot, buf, used, marks: full.put((slot, used, marks)))
            except BaseException as error:  # handed to the consumer thread
                failure.append(error)
            finally:
                full.put(None)

        producer = threading.Thread(target=produce, name="ensign-records", daemon=True)
        producer.start()
        try:
            while True:
                item = full.get()
                if item is None:
                    break
                slot, used, marks = item
                self._consume(buffers[slot], used, marks)
                free.put(slot)
        finally:
            stop.set()
            free.put(0)
            producer.join()
            _give_buffers(buffers)
        if failure:
            raise failure[0]


def measure(
    plan: MeasurementPlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    sgxs_out: BinaryIO | None = None,
) -> Measurement:
    """Measure ``plan`` from scratch with a throwaway :class:`Measurer`."""
    return Measurer().measure(plan, on_progress=on_progress, cancel=cancel, sgxs_out=sgxs_out)
