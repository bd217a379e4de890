"""ensign's SCONE-style enclave layout: from an ELF image and parameters to regions and a plan.

Every rule here is written down in ``docs/LAYOUT.md`` (keep the two in step). In short,
in address order: the ELF image (every page covered by a PT_LOAD, measured), the heap
(EADD only; EDMM adds only ``minheap`` of it), ``tcs`` thread contexts (guard, stack,
guard, TCS, SSA frames, thread data), and the signed-parameters page as the very last
page below SIZE. Measurement order is address order, so everything before an edited
parameter's first region is reused from checkpoints.

The image part depends only on the file, so it is computed once per :class:`ImagePlan`
and shared by every layout of that file. This module never reads parameters from the
environment, never prints and never imports a UI.
"""

from __future__ import annotations

import bisect
import dataclasses
import struct
from dataclasses import dataclass

from core.elf import ElfImage
from core.elfedit import MEASUREMENT_ZEROED_HEADER_FIELDS
from core.errors import LayoutError
from core.fieldtable import FieldTable
from core.params import Params
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

VARIANT_SGX1 = "sgx1"
VARIANT_EDMM = "edmm"
VARIANTS = (VARIANT_SGX1, VARIANT_EDMM)

MAX_IMAGE_SPAN = 64 << 30  # bytes from the lowest to the highest PT_LOAD page
MAX_SPECIAL_PAGES = 1 << 18  # pages composed one by one (shared/unaligned), 1 GiB
GUARD_PAGES = 16  # 64 KiB guard around stacks and before the parameters page (never added)
SSA_FRAMES = 2  # NSSA
FLAGS_RW = PT_REG | SECINFO_R | SECINFO_W
FLAGS_RWX = FLAGS_RW | SECINFO_X
FLAGS_R = PT_REG | SECINFO_R
PF_X, PF_W, PF_R = 1, 2, 4

# ELF-header fields that change when a section is added (e_shoff, e_shnum, e_shstrndx) but lie
# in the first PT_LOAD page: measured as zero, like the Intel SDK's patches (SPEC §4.3).
ZEROED_HEADER_FIELDS = MEASUREMENT_ZEROED_HEADER_FIELDS

PARAMS_MAGIC = b"ENSIGNPP"
PARAMS_FORMAT_VERSION = 1
TD_MAGIC = b"ENSIGNTD"

# Standard (non-compacted) XSAVE component ends in bytes, per XFRM bit (SPEC §2.8).
XSAVE_COMPONENT_END = {0: 576, 1: 576, 2: 832, 3: 1024, 4: 1088, 5: 1152, 6: 1664, 7: 2688,
                       9: 2696, 17: 2816, 18: 11008}
GPRSGX_SIZE = 184


def ssa_frame_pages(max_xfrm: int) -> int:
    """SSAFRAMESIZE in pages for the largest XFRM a SIGSTRUCT permits (SPEC §2.8)."""
    end = max(size for bit, size in XSAVE_COMPONENT_END.items() if max_xfrm >> bit & 1)
    return max(1, -(-(end + GPRSGX_SIZE) // PAGE_SIZE))


def max_permitted_xfrm(params: Params) -> int:
    """``~mask | (xfrm & mask)`` over the known XFRM bits: what a loader may enable."""
    from core.params import XFRM_KNOWN

    mask = params.xfrm_mask
    return ((~mask) & XFRM_KNOWN) | (params.xfrm & mask)


def _round_up(value: int, unit: int = PAGE_SIZE) -> int:
    return -(-value // unit) * unit


def _next_power_of_two(value: int) -> int:
    size = 2 * PAGE_SIZE
    while size < value:
        size <<= 1
    return size


def segment_secinfo(p_flags: int) -> int:
    """SECINFO flags for a PT_LOAD's pages: REG + R/W/X from p_flags (W implies R)."""
    flags = PT_REG
    if p_flags & PF_R or p_flags & PF_W:
        flags |= SECINFO_R
    if p_flags & PF_W:
        flags |= SECINFO_W
    if p_flags & PF_X:
        flags |= SECINFO_X
    return flags


@dataclass(frozen=True, slots=True)
class Region:
    """One region of the enclave address space, for display and mapping offsets back."""

    name: str  # e.g. "image", "heap", "thread 3 stack", "guard", "parameters"
    kind: str  # image | heap | heap-reserved | stack | tcs | ssa | td | guard | params | unused
    offset: int  # bytes from enclave base
    pages: int  # 4 KiB pages
    flags: int  # SECINFO.FLAGS (0 for regions that are not added)
    treatment: str  # measured (EADD+EEXTEND) | added (EADD only) | reserved (inside SIZE, not added)
    thread: int | None = None  # thread index for per-thread regions

    @property
    def end(self) -> int:
        """First offset after the region."""
        return self.offset + self.pages * PAGE_SIZE

    @property
    def size(self) -> int:
        """Bytes."""
        return self.pages * PAGE_SIZE


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """The measured image of one ELF file: page runs in address order, independent of parameters."""

    base_vaddr: int  # vaddr of the lowest PT_LOAD page (enclave offset 0)
    pages: int  # pages from offset 0 to the end of the highest PT_LOAD page
    runs: tuple[PageRun, ...]  # only pages covered by some PT_LOAD
    entry_offset: int  # e_entry - base_vaddr

    @property
    def end(self) -> int:
        """Offset just past the image."""
        return self.pages * PAGE_SIZE


def build_image_plan(image: ElfImage) -> ImagePlan:
    """Page runs of every page covered by a PT_LOAD (file bytes, zeros past p_filesz).

    Pages touched by more than one segment, by a segment boundary, or by the zeroed
    ELF-header fields are composed explicitly; all other pages are read straight from
    the file's mmap, so building the plan costs no per-page Python work.

    Raises:
        LayoutError: no loadable bytes, or an entry point outside the image.
    """
    loads = [seg for seg in image.load_segments if seg.memsz > 0]
    if not loads:
        raise LayoutError(f"{image.path}: no PT_LOAD with memory to measure")
    base = min(seg.vaddr for seg in loads) & ~(PAGE_SIZE - 1)
    top = max(_round_up(seg.vaddr + seg.memsz) for seg in loads)
    if top - base > MAX_IMAGE_SPAN:
        raise LayoutError(f"{image.path}: the PT_LOAD segments span {top - base:#x} bytes; "
                          f"ensign measures images up to {MAX_IMAGE_SPAN >> 30} GiB")
    data = image.data

    # Page indices (relative to base) that need explicit composition.
    special: set[int] = set()
    spans = []
    for seg in loads:
        first = (seg.vaddr - base) // PAGE_SIZE
        last = (_round_up(seg.vaddr + seg.memsz) - base) // PAGE_SIZE  # exclusive
        spans.append((first, last, seg))
        special.add(first)
        special.add(last - 1)
        file_end = seg.vaddr + seg.filesz - base
        special.add(file_end // PAGE_SIZE)
        if (seg.offset - seg.vaddr) % PAGE_SIZE:
            # File offset and address not congruent: every file page is composed explicitly.
            if file_end // PAGE_SIZE - first > MAX_SPECIAL_PAGES:
                raise LayoutError(f"{image.path}: PT_LOAD {seg.index} has p_offset and p_vaddr that differ "
                                  "modulo the page size over more than 1 GiB")
            special.update(range(first, (_round_up(file_end)) // PAGE_SIZE))
        for field_offset, field_size in ZEROED_HEADER_FIELDS:
            if seg.offset <= field_offset and field_offset + field_size <= seg.offset + seg.filesz:
                special.add((seg.vaddr + field_offset - seg.offset - base) // PAGE_SIZE)
    spans.sort(key=lambda item: item[0])
    for index, (first, last, seg) in enumerate(spans):
        for other_first, other_last, other in spans[index + 1:]:
            if other_first >= last:
                break
            shared = range(max(first, other_first), min(last, other_last))
            if len(shared) > MAX_SPECIAL_PAGES:
                raise LayoutError(f"{image.path}: PT_LOAD {seg.index} and {other.index} share more than "
                                  "1 GiB of pages")
            special.update(shared)

    runs: list[PageRun] = []
    identity = image.identity
    special_sorted = sorted(special)
    for first, last, seg in spans:
        flags = segment_secinfo(seg.flags)
        file_end_page = (seg.vaddr + seg.filesz - base) // PAGE_SIZE  # first page not fully file-backed
        page = first
        while page < last:
            position = bisect.bisect_left(special_sorted, page)
            if position < len(special_sorted) and special_sorted[position] == page:
                page += 1
                continue
            next_special = special_sorted[position] if position < len(special_sorted) else last
            in_file = page < file_end_page
            run_end = min(next_special, file_end_page if in_file else last)
            count = run_end - page
            offset = page * PAGE_SIZE
            if in_file:
                file_offset = seg.offset + (base + offset - seg.vaddr)
                runs.append(PageRun(offset, count, flags, True, "image",
                                    data=data[file_offset:file_offset + count * PAGE_SIZE],
                                    key=("file", identity, file_offset, count)))
            else:
                runs.append(PageRun(offset, count, flags, True, "image"))
            page = run_end

    for page in sorted(special):
        content = bytearray(PAGE_SIZE)
        flags = 0
        page_vaddr = base + page * PAGE_SIZE
        for first, last, seg in spans:
            if not first <= page < last:
                continue
            flags |= segment_secinfo(seg.flags)
            start = max(page_vaddr, seg.vaddr)
            end = min(page_vaddr + PAGE_SIZE, seg.vaddr + seg.filesz)
            if end > start:
                file_offset = seg.offset + (start - seg.vaddr)
                content[start - page_vaddr:end - page_vaddr] = data[file_offset:file_offset + end - start]
            for field_offset, field_size in ZEROED_HEADER_FIELDS:
                field_vaddr = seg.vaddr + field_offset - seg.offset
                if (seg.offset <= field_offset < seg.offset + seg.filesz
                        and page_vaddr <= field_vaddr < page_vaddr + PAGE_SIZE):
                    at = field_vaddr - page_vaddr
                    content[at:at + field_size] = bytes(field_size)
        if flags == 0:
            continue
        page_bytes = bytes(content)
        runs.append(PageRun(page * PAGE_SIZE, 1, flags, True, "image", data=page_bytes,
                            key=content_key_for_bytes(page_bytes)))
    runs.sort(key=lambda run: run.offset)
    if runs:  # every parameter edit re-hashes from the end of the image at the latest
        runs[-1] = dataclasses.replace(runs[-1], checkpoint=True)
    entry_offset = image.entry - base
    if not 0 <= entry_offset < top - base:
        raise LayoutError(f"{image.path}: entry point {image.entry:#x} lies outside the loaded image")
    return ImagePlan(base_vaddr=base, pages=(top - base) // PAGE_SIZE, runs=tuple(runs),
                     entry_offset=entry_offset)


@dataclass(frozen=True, slots=True)
class ThreadShape:
    """Offsets inside one thread context (relative to the context's start), in bytes."""

    stack_offset: int  # after the first guard
    tcs_offset: int
    ssa_offset: int
    td_offset: int  # thread data: TLS pages, then the thread control block page
    td_pages: int
    stride: int  # size of a whole thread context
    tls_size: int  # PT_TLS p_memsz rounded up to p_align (0 without PT_TLS)


def thread_shape(params: Params, ssaframesize: int, tls_size: int) -> ThreadShape:
    """Per-thread offsets: guard | stack | guard | TCS | SSA × 2 | thread data."""
    guard = GUARD_PAGES * PAGE_SIZE
    stack_offset = guard
    tcs_offset = stack_offset + params.stack + guard
    ssa_offset = tcs_offset + PAGE_SIZE
    td_offset = ssa_offset + SSA_FRAMES * ssaframesize * PAGE_SIZE
    td_pages = 1 + _round_up(tls_size) // PAGE_SIZE
    return ThreadShape(stack_offset, tcs_offset, ssa_offset, td_offset, td_pages,
                       td_offset + td_pages * PAGE_SIZE, tls_size)


@dataclass(frozen=True, slots=True)
class Layout:
    """The derived enclave: regions, SECS values and the measurement plan of one variant."""

    variant: str  # 'sgx1' | 'edmm'
    params: Params
    size: int  # SECS.SIZE, bytes
    ssaframesize: int  # SECS.SSAFRAMESIZE, pages
    regions: tuple[Region, ...]  # address order, covering [0, size)
    plan: MeasurementPlan
    image: ImagePlan
    heap_offset: int
    threads_offset: int
    thread: ThreadShape
    params_offset: int  # offset of the signed-parameters page (size - 4096)
    params_page: bytes  # its 4096 bytes

    def region_for_offset(self, offset: int) -> Region | None:
        """The region containing ``offset``."""
        for region in self.regions:
            if region.offset <= offset < region.end:
                return region
        return None


def _tls_size(image: ElfImage) -> tuple[int, int, int]:
    tls = image.tls
    if tls is None:
        return 0, 0, 0
    align = max(tls.align, 1)
    if align > PAGE_SIZE:
        raise LayoutError(f"{image.path}: PT_TLS alignment {align:#x} is larger than a page")
    return _round_up(tls.memsz, align), tls.filesz, tls.offset


# The signed-parameters page (docs/LAYOUT.md); bytes 176..4095 are zero.
PARAMS_PAGE_USED = 176
PARAMS_PAGE_TABLE = FieldTable("signed-parameters page", PARAMS_PAGE_USED, (
    ("magic", 0, "8s"),  # b"ENSIGNPP"
    ("format_version", 8, "<I"),  # 1
    ("variant", 12, "<I"),  # 0 SGX1, 1 EDMM
    ("size", 16, "<Q"),  # SECS.SIZE, bytes
    ("ssaframesize", 24, "<I"),  # pages
    ("tcs", 28, "<I"),  # number of threads
    ("stack", 32, "<Q"),  # bytes per thread
    ("minheap", 40, "<Q"),  # bytes
    ("heap", 48, "<Q"),  # bytes
    ("mprotect", 56, "<I"),
    ("dlopen", 60, "<I"),
    ("xfrm", 64, "<Q"),  # required XFRM bits
    ("image_size", 72, "<Q"),  # bytes from offset 0 to the end of the highest PT_LOAD page
    ("entry_offset", 80, "<Q"),  # e_entry - base_vaddr
    ("heap_offset", 88, "<Q"),
    ("heap_committed", 96, "<Q"),  # heap bytes added before EINIT (heap for SGX1, minheap for EDMM)
    ("threads_offset", 104, "<Q"),  # offset of thread context 0
    ("thread_stride", 112, "<Q"),  # bytes per thread context
    ("stack_offset", 120, "<Q"),  # inside a thread context
    ("tcs_offset", 128, "<Q"),  # inside a thread context
    ("ssa_offset", 136, "<Q"),  # inside a thread context
    ("td_offset", 144, "<Q"),  # inside a thread context
    ("td_pages", 152, "<Q"),  # TLS pages + 1 control-block page
    ("tls_size", 160, "<Q"),  # PT_TLS p_memsz rounded up to p_align
    ("base_vaddr", 168, "<Q"),  # ELF vaddr of enclave offset 0
), LayoutError)


def params_page_bytes(values: dict[str, int]) -> bytes:
    """The signed-parameters page: PARAMS_PAGE_TABLE filled from ``values``, rest zero."""
    fields: dict[str, int | bytes] = {"magic": PARAMS_MAGIC, "format_version": PARAMS_FORMAT_VERSION, **values}
    packed = PARAMS_PAGE_TABLE.pack(fields)
    return packed + bytes(PAGE_SIZE - len(packed))


def parse_params_page(page: bytes) -> dict[str, int | bytes]:
    """Decode a signed-parameters page (for display and tests)."""
    return PARAMS_PAGE_TABLE.unpack(page)


def tcs_page(*, ossa: int, oentry: int, ofsbase: int) -> bytes:
    """A TCS page (SPEC §3): NSSA 2, FS/GS limits 0xFFFFFFFF, everything else zero."""
    page = bytearray(PAGE_SIZE)
    struct.pack_into("<QQQIIQQQQII", page, 0, 0, 0, ossa, 0, SSA_FRAMES, oentry, 0, ofsbase, ofsbase,
                     0xFFFFFFFF, 0xFFFFFFFF)
    return bytes(page)


def thread_data_pages(image: ElfImage, *, thread_index: int, td_offset: int, shape: ThreadShape,
                      context_offset: int, stack: int, size: int) -> bytes:
    """TLS initial image followed by the thread control block page (docs/LAYOUT.md)."""
    td = bytearray(shape.td_pages * PAGE_SIZE)
    tcb = (shape.td_pages - 1) * PAGE_SIZE
    if image.tls is not None and shape.tls_size:
        tls_start = tcb - shape.tls_size
        template = image.read(image.tls.offset, image.tls.filesz)
        td[tls_start:tls_start + len(template)] = template
    struct.pack_into(
        "<QQQQQQQQ8s", td, tcb,
        td_offset + tcb,  # self pointer (offset; the runtime adds the base)
        thread_index,
        context_offset + shape.stack_offset,  # lowest stack byte
        context_offset + shape.stack_offset + stack,  # stack top (exclusive)
        context_offset + shape.ssa_offset,
        td_offset + tcb - shape.tls_size,
        shape.tls_size,
        size,
        TD_MAGIC,
    )
    return bytes(td)


# Thread contexts are memoised: a parameter search (core/search.py) derives thousands of layouts
# whose thread contexts repeat (same offset, shape, stack and SIZE), and building one costs two
# page composes and two SHA-256 content keys. Keyed by the file identity, so equal keys mean equal
# bytes; cleared wholesale when full (dict operations stay atomic for worker threads).
_THREAD_CACHE: dict[tuple, dict[tuple[int, int], tuple[tuple[Region, ...], tuple[PageRun, ...]]]] = {}
_THREAD_CACHE_MAX = 1024  # thread contexts kept (about 12 KiB each)
_thread_cache_size = [0]
_IMAGE_REGIONS_CACHE: dict[tuple, tuple[Region, ...]] = {}


def _thread_contexts(image: ElfImage, image_plan: ImagePlan, shape: ThreadShape, stack: int,
                     size: int) -> dict[tuple[int, int], tuple[tuple[Region, ...], tuple[PageRun, ...]]]:
    """The memo of thread contexts for one file, shape, stack and SIZE: ``(index, offset) -> parts``."""
    key = (image.identity, image_plan.base_vaddr, image_plan.entry_offset, shape, stack, size)
    contexts = _THREAD_CACHE.get(key)
    if contexts is None:
        if _thread_cache_size[0] >= _THREAD_CACHE_MAX:
            _THREAD_CACHE.clear()
            _thread_cache_size[0] = 0
        contexts = _THREAD_CACHE[key] = {}
    return contexts


def _thread_context(image: ElfImage, image_plan: ImagePlan, index: int, context: int, shape: ThreadShape,
                    stack: int, size: int) -> tuple[tuple[Region, ...], tuple[PageRun, ...]]:
    """Regions and page runs of thread context ``index`` at offset ``context`` (docs/LAYOUT.md)."""
    prefix = f"thread {index}"
    stack_pages = stack // PAGE_SIZE
    tcs_offset = context + shape.tcs_offset
    ssa_offset = context + shape.ssa_offset
    td_offset = context + shape.td_offset
    tcb_offset = td_offset + (shape.td_pages - 1) * PAGE_SIZE
    tcs_bytes = tcs_page(ossa=ssa_offset, oentry=image_plan.entry_offset, ofsbase=tcb_offset)
    td_bytes = thread_data_pages(image, thread_index=index, td_offset=td_offset, shape=shape,
                                 context_offset=context, stack=stack, size=size)
    ssa_pages = (shape.td_offset - shape.ssa_offset) // PAGE_SIZE  # SSA_FRAMES * SSAFRAMESIZE
    regions = (
        Region(f"{prefix} guard", "guard", context, GUARD_PAGES, 0, "reserved", index),
        Region(f"{prefix} stack", "stack", context + shape.stack_offset, stack_pages, FLAGS_RW, "added", index),
        Region(f"{prefix} guard", "guard", context + shape.stack_offset + stack, GUARD_PAGES, 0,
               "reserved", index),
        Region(f"{prefix} TCS", "tcs", tcs_offset, 1, FLAGS_TCS, "measured", index),
        Region(f"{prefix} SSA", "ssa", ssa_offset, ssa_pages, FLAGS_RW, "measured", index),
        Region(f"{prefix} thread data", "td", td_offset, shape.td_pages, FLAGS_RW, "measured", index),
    )
    runs = (
        PageRun(context + shape.stack_offset, stack_pages, FLAGS_RW, False, f"{prefix} stack"),
        PageRun(tcs_offset, 1, FLAGS_TCS, True, f"{prefix} TCS", data=tcs_bytes,
                key=content_key_for_bytes(tcs_bytes)),
        PageRun(ssa_offset, ssa_pages, FLAGS_RW, True, f"{prefix} SSA"),
        PageRun(td_offset, shape.td_pages, FLAGS_RW, True, f"{prefix} thread data", data=td_bytes,
                key=content_key_for_bytes(td_bytes), checkpoint=True),  # a tcs edit resumes here
    )
    return regions, runs


def derive_layout(image: ElfImage, params: Params, variant: str = VARIANT_SGX1,
                  image_plan: ImagePlan | None = None) -> Layout:
    """Derive the enclave layout and its measurement plan.

    Args:
        image: the loaded ELF.
        params: effective parameters.
        variant: ``"sgx1"`` (whole heap added) or ``"edmm"`` (only minheap added).
        image_plan: the file's image plan if already built (it does not depend on params).

    Returns:
        The :class:`Layout`.

    Raises:
        LayoutError: the layout cannot be built (e.g. SIZE beyond 2^47).
    """
    if variant not in VARIANTS:
        raise LayoutError(f"unknown measurement variant '{variant}' (sgx1 or edmm)")
    image_plan = image_plan or build_image_plan(image)
    ssaframesize = ssa_frame_pages(max_permitted_xfrm(params))
    tls_size, _tls_filesz, _ = _tls_size(image)
    shape = thread_shape(params, ssaframesize, tls_size)

    heap_offset = image_plan.end
    committed = params.heap if variant == VARIANT_SGX1 else params.minheap
    threads_offset = heap_offset + params.heap
    threads_end = threads_offset + params.tcs * shape.stride
    params_needed = threads_end + GUARD_PAGES * PAGE_SIZE + PAGE_SIZE
    size = _next_power_of_two(params_needed)
    if size > 1 << 47:
        raise LayoutError(f"the enclave would need SIZE {size:#x}, beyond the 47-bit address space")
    params_offset = size - PAGE_SIZE

    heap_flags = FLAGS_RWX if params.heap_executable else FLAGS_RW
    regions_key = (image.identity, image_plan.base_vaddr, image_plan.pages)
    image_part = _IMAGE_REGIONS_CACHE.get(regions_key)
    if image_part is None:
        image_part = tuple(image_regions(image, image_plan))
        if len(_IMAGE_REGIONS_CACHE) >= 64:
            _IMAGE_REGIONS_CACHE.clear()
        _IMAGE_REGIONS_CACHE[regions_key] = image_part
    regions: list[Region] = list(image_part)
    runs: list[PageRun] = list(image_plan.runs)

    if committed:
        regions.append(Region("heap", "heap", heap_offset, committed // PAGE_SIZE, heap_flags, "added"))
        runs.append(PageRun(heap_offset, committed // PAGE_SIZE, heap_flags, False, "heap", checkpoint=True))
    if params.heap > committed:
        regions.append(Region("heap (added at run time)", "heap-reserved", heap_offset + committed,
                              (params.heap - committed) // PAGE_SIZE, heap_flags, "reserved"))

    contexts = _thread_contexts(image, image_plan, shape, params.stack, size)
    for index in range(params.tcs):
        context = threads_offset + index * shape.stride
        parts = contexts.get((index, context))
        if parts is None:
            parts = contexts[(index, context)] = _thread_context(image, image_plan, index, context, shape,
                                                                 params.stack, size)
            _thread_cache_size[0] += 1
        regions.extend(parts[0])
        runs.extend(parts[1])

    if params_offset > threads_end:
        regions.append(Region("unused", "unused", threads_end, (params_offset - threads_end) // PAGE_SIZE, 0,
                              "reserved"))
    page = params_page_bytes({
        "variant": 0 if variant == VARIANT_SGX1 else 1, "size": size, "ssaframesize": ssaframesize,
        "tcs": params.tcs, "stack": params.stack, "minheap": params.minheap, "heap": params.heap,
        "mprotect": params.mprotect, "dlopen": params.dlopen, "xfrm": params.xfrm,
        "image_size": image_plan.end, "entry_offset": image_plan.entry_offset, "heap_offset": heap_offset,
        "heap_committed": committed, "threads_offset": threads_offset, "thread_stride": shape.stride,
        "stack_offset": shape.stack_offset, "tcs_offset": shape.tcs_offset, "ssa_offset": shape.ssa_offset,
        "td_offset": shape.td_offset, "td_pages": shape.td_pages, "tls_size": shape.tls_size,
        "base_vaddr": image_plan.base_vaddr,
    })
    regions.append(Region("signed parameters", "params", params_offset, 1, FLAGS_R, "measured"))
    runs.append(PageRun(params_offset, 1, FLAGS_R, True, "signed parameters", data=page,
                        key=content_key_for_bytes(page)))
    plan = MeasurementPlan(ssaframesize=ssaframesize, size=size, runs=tuple(runs))
    return Layout(variant=variant, params=params, size=size, ssaframesize=ssaframesize,
                  regions=tuple(regions), plan=plan, image=image_plan, heap_offset=heap_offset,
                  threads_offset=threads_offset, thread=shape, params_offset=params_offset,
                  params_page=page)


def image_regions(image: ElfImage, image_plan: ImagePlan) -> list[Region]:
    """One region per PT_LOAD (clipped so regions never overlap), gaps as unused regions."""
    regions: list[Region] = []
    cursor = 0
    for seg in sorted(image.load_segments, key=lambda s: s.vaddr):
        if seg.memsz == 0:
            continue
        start = max((seg.vaddr - image_plan.base_vaddr) & ~(PAGE_SIZE - 1), cursor)
        end = _round_up(seg.vaddr + seg.memsz) - image_plan.base_vaddr
        if end <= start:
            continue
        if start > cursor:
            regions.append(Region("image gap", "unused", cursor, (start - cursor) // PAGE_SIZE, 0, "reserved"))
        names = " ".join(seg.sections[:3]) + (" …" if len(seg.sections) > 3 else "")
        regions.append(Region(f"LOAD[{seg.index}] {seg.flags_text} {names}".rstrip(), "image", start,
                              (end - start) // PAGE_SIZE, segment_secinfo(seg.flags), "measured"))
        cursor = end
    return regions
