"""Diagnosis benchmark (issue 4): parameter-search throughput and diff time.

Prints:
  * SEARCH RATE: candidates per second for the candidates of the default search space
    (both variants, at most two parameters changed) that keep SIZE and SSAFRAMESIZE, on a
    64 MiB image (override with --mib), hashed by the search's PrefixHasher after the image
    was hashed once (target >= 2000/s); the same candidates through one shared Measurer,
    for comparison;
  * the whole default space without a match (every ECREATE group re-hashes the image), and
    the time to find a single drifted value (heap 2G);
  * DIFF: two 256 MiB images (--diff-mib) that differ in one page, compared by ``diff_sides``,
    against one full measurement of one of them (target: about the same time or less).

Run: python bench/bench_diagnose.py [--mib 64] [--diff-mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.images import make_elf  # noqa: E402
from core.diagnose import explain, target_from_hex  # noqa: E402
from core.diff import diff_sides, side_for_binary  # noqa: E402
from core.enclave import EnclaveBinary  # noqa: E402
from core.layout import VARIANT_SGX1, derive_layout, max_permitted_xfrm, ssa_frame_pages  # noqa: E402
from core.measure import Measurer  # noqa: E402
from core.params import GIB, MIB, Params  # noqa: E402
from core.search import (  # noqa: E402
    DEFAULT_SPACE,
    PrefixHasher,
    _Geometry,
    enumerate_candidates,
    order_for_prefix_sharing,
    run_candidates,
    search_parameters,
)

NO_MATCH = {bytes(32): None}


def size_preserving_candidates(binary: EnclaveBinary, baseline: Params) -> list[tuple[str, tuple]]:
    """Default-space candidates around ``baseline`` whose ECREATE equals the baseline's, ordered."""
    reference = binary.layout(baseline, VARIANT_SGX1)
    values, _total = enumerate_candidates(DEFAULT_SPACE, [baseline])
    geometry = _Geometry(reference.image.end, reference.thread.tls_size)
    ssa = {xfrm: ssa_frame_pages(max_permitted_xfrm(Params(xfrm=xfrm))) for xfrm in DEFAULT_SPACE.xfrm}
    strides: dict = {}
    keep = [(variant, candidate) for candidate in values for variant in ("sgx1", "edmm")
            if geometry.ecreate(candidate, ssa, strides) == (reference.size, reference.ssaframesize)]
    return order_for_prefix_sharing(keep, reference.image.end, reference.thread.tls_size)


def bench_search(mib: int, repeat: int, tmp: Path) -> None:
    path = make_elf(tmp / "search.elf", mib * MIB)
    binary = EnclaveBinary.open(path)
    baseline = Params()
    reference = binary.layout(baseline)
    ordered = size_preserving_candidates(binary, baseline)
    print(f"search image: {mib} MiB data, SIZE {reference.size:#x}; {len(ordered)} SIZE-preserving candidates "
          "of the default space (both variants, <= 2 parameters changed)")

    rates = []
    for _ in range(repeat):
        hasher = PrefixHasher()
        hasher.digest(reference.plan)  # the image, hashed once for the whole group
        result = run_candidates(binary, NO_MATCH, [ordered], template=baseline, hasher=hasher)
        rates.append(result.rate)
    best = max(rates)
    print(f"SEARCH RATE (PrefixHasher)       {best:8.0f} candidates/s   (target >= 2000)"
          f"  [{result.hashed_bytes / MIB:.0f} MiB of records hashed]")

    measurer = Measurer()
    measurer.measure(reference.plan)
    started = time.perf_counter()
    for variant, (heap, minheap, stack, tcs, mprotect, dlopen, xfrm) in ordered:
        params = Params(heap=heap, minheap=minheap, stack=stack, tcs=tcs, mprotect=mprotect, dlopen=dlopen, xfrm=xfrm)
        measurer.measure(derive_layout(binary.image, params, variant, binary.image_plan).plan)
    elapsed = time.perf_counter() - started
    print(f"same candidates, one Measurer    {len(ordered) / elapsed:8.0f} candidates/s   (for comparison)")

    started = time.perf_counter()
    full = search_parameters(binary, NO_MATCH, [baseline])
    print(f"whole default space, no match    {full.tried} candidates in {time.perf_counter() - started:.1f} s "
          f"({full.rate:.0f}/s overall; {full.groups} SIZE/SSAFRAMESIZE groups, each re-hashing the image)")

    target = binary.measure(Params(heap=2 * GIB))[1].mrenclave
    started = time.perf_counter()
    report = explain(binary, baseline, target_from_hex(target.hex()))
    assert report.search is not None and report.search.match is not None and report.search.match.heap == 2 * GIB
    print(f"explain finds heap=2G            {time.perf_counter() - started:8.2f} s "
          f"(after {report.search.tried} candidates)")


def bench_diff(mib: int, repeat: int, tmp: Path) -> None:
    first = make_elf(tmp / "diff-a.elf", mib * MIB)
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte in the middle of the data segment
    second = tmp / "diff-b.elf"
    second.write_bytes(bytes(data))
    del data
    a, b = EnclaveBinary.open(first), EnclaveBinary.open(second)
    params = Params()
    measure_times, diff_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        Measurer().measure(a.layout(params).plan)
        measure_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        report = diff_sides(side_for_binary(a, params), side_for_binary(b, params))
        diff_times.append(time.perf_counter() - started)
        assert [s.pages for s in report.stretches] == [1], report.stretches
    measure_time, diff_time = min(measure_times), min(diff_times)
    print(f"diff images: 2 x {mib} MiB, one differing page ({report.stretches[0].describe()})")
    print(f"one full measurement             {measure_time * 1000:8.1f} ms")
    print(f"DIFF TIME                        {diff_time * 1000:8.1f} ms   "
          f"(ratio {diff_time / measure_time:.2f} of one measurement; target about 1 or less)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64, help="image size for the search benchmark")
    parser.add_argument("--diff-mib", type=int, default=256, help="image size for the diff benchmark")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_search(args.mib, args.repeat, Path(tmp))
        bench_diff(args.diff_mib, args.repeat, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
