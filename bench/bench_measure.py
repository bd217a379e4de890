"""Measurement benchmark for the core engine (issue: core engine).

Prints, for a 256 MiB image (override with --mib):
  * full-measure ratio = ensign full measurement / hashlib SHA-256 of the same record stream,
    both timed in this process (target ≤ 1.15);
  * incremental ratios = re-measure after an edit that keeps SIZE / full measurement
    (tcs 8→9, stack, EDMM minheap, mprotect; target ≤ 0.05);
  * peak RSS of a fresh process that measures the image, against image size + 100 MiB.

Run: python bench/bench_measure.py [--mib 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.images import make_elf  # noqa: E402
from core.enclave import EnclaveBinary  # noqa: E402
from core.layout import VARIANT_EDMM, VARIANT_SGX1  # noqa: E402
from core.measure import Measurer  # noqa: E402
from core.params import MIB, Params  # noqa: E402
from core.records import iter_stream_chunks  # noqa: E402


def best(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def rss_child(path: str) -> None:
    binary = EnclaveBinary.open(path)
    layout = binary.layout(Params(), VARIANT_SGX1)
    Measurer().measure(layout.plan)
    # VmHWM is this process's own peak (ru_maxrss would carry the parent's peak across exec).
    status = Path("/proc/self/status").read_text()
    hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"maxrss_kib": hwm}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        path = make_elf(Path(tmp) / "big.elf", args.mib * MIB)
        image_bytes = path.stat().st_size
        binary = EnclaveBinary.open(path)
        params = Params()
        layout = binary.layout(params, VARIANT_SGX1)
        plan = layout.plan
        holder = [b"".join(bytes(chunk) for chunk in iter_stream_chunks(plan))]
        baseline = best(lambda: hashlib.sha256(holder[0]).digest(), args.repeat)
        expected = hashlib.sha256(holder[0]).hexdigest()
        holder.clear()  # free the in-memory stream before measuring
        full = best(lambda: Measurer().measure(plan), args.repeat)
        assert Measurer().measure(plan).hex == expected
        print(f"image: {image_bytes / MIB:.0f} MiB file, record stream {plan.stream_size / MIB:.1f} MiB, "
              f"SIZE {layout.size:#x}")
        print(f"hashlib over the stream:   {baseline * 1000:8.1f} ms")
        print(f"ensign full measurement:   {full * 1000:8.1f} ms")
        print(f"FULL-MEASURE RATIO         {full / baseline:8.3f}   (target <= 1.15)")

        edits = [
            ("tcs 8 -> 9", params, params.with_value("tcs", "9"), VARIANT_SGX1),
            ("stack 2M -> 4M", params, params.with_value("stack", "4M"), VARIANT_SGX1),
            ("minheap 20M -> 24M (EDMM)", params, params.with_value("minheap", "24M"), VARIANT_EDMM),
            ("mprotect 0 -> 1", params, params.with_value("mprotect", "1"), VARIANT_SGX1),
        ]
        for label, before, after, variant in edits:
            ratios = []
            for _ in range(args.repeat):
                measurer = Measurer()
                measurer.measure(binary.layout(before, variant).plan)
                edited_plan = binary.layout(after, variant).plan
                started = time.perf_counter()
                result = measurer.measure(edited_plan)
                elapsed = time.perf_counter() - started
                assert result.resumed_at > 0
                ratios.append(elapsed / full)
            ratio = min(ratios)
            print(f"INCREMENTAL RATIO {label:<28} {ratio:8.4f}   ({ratio * full * 1000:.1f} ms; target <= 0.05)")

        output = subprocess.run([sys.executable, __file__, "--rss-child", str(path)], capture_output=True,
                                text=True, check=True).stdout
        maxrss = json.loads(output)["maxrss_kib"] * 1024
        limit = image_bytes + 100 * MIB
        print(f"PEAK RSS                   {maxrss / MIB:8.1f} MiB   (limit image + 100 MiB = {limit / MIB:.0f} MiB)"
              f" {'OK' if maxrss <= limit else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
