"""SDK what-if latency: how long a TCSNum edit in Enclave.config.xml takes to give its MRENCLAVE (issue 7).

Two cases, each predicted through one :class:`core.sdk_whatif.SdkWhatIf` session (as the TUI
holds it), so every edit resumes from the checkpoint at ``g_global_data``:

  * every SDK fixture in ``../shared/fixtures/sdk`` with its own ``Enclave.config.xml``, the
    largest (longest record stream) marked;
  * the synthetic largest case: h0mur0's unsigned ``enclave.so`` with HeapMaxSize 2 GiB, which
    makes a 4 GiB enclave (``--heap``, ``--tcs``).

For each: the cold prediction (first measurement), then ``--edits`` TCSNum edits (N+1, N+2, ...,
each a value not measured before), printing the median and worst latency of an edit, split into building
(config → layout, templates, plan) and hashing, and how much of the stream was re-hashed.

Run: python bench/bench_sdk_whatif.py [--fixtures DIR] [--edits 8] [--heap 2G] [--tcs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.params import parse_size  # noqa: E402
from core.sdk_config import SdkConfig, load_config  # noqa: E402
from core.sdk_whatif import SdkWhatIf, config_from_settings  # noqa: E402

DEFAULT_FIXTURES = ROOT.parent / "shared" / "fixtures"
SYNTHETIC_ENCLAVE = "h0mur0-IT-MPSI-with-TEE"


def edit_latencies(session: SdkWhatIf, config: SdkConfig, edits: int) -> dict[str, float | int | str]:
    """Cold prediction, then ``edits`` TCSNum edits; times in ms."""
    base = dict(config.values)
    tcs = config.value("TCSNum", session.profile.family)
    started = time.perf_counter()
    cold = session.predict(config)
    cold_ms = (time.perf_counter() - started) * 1000
    assert cold.measurement is not None
    totals, hashing, rehashed = [], [], []
    for step in range(edits):
        value = tcs + 1 + step  # always a value not measured before: no whole-stream cache hit
        started = time.perf_counter()
        result = session.predict(config_from_settings({**base, "TCSNum": value}, origin="<edit>"))
        totals.append((time.perf_counter() - started) * 1000)
        assert result.measurement is not None
        hashing.append(result.measurement.elapsed * 1000)
        rehashed.append(result.measurement.hashed_bytes / max(result.measurement.stream_size, 1))
    return {
        "size": f"{cold.enclave_size:#x}",
        "stream_mib": cold.plan.stream_size / (1 << 20),
        "cold_ms": cold_ms,
        "edit_median_ms": statistics.median(totals),
        "edit_worst_ms": max(totals),
        "hash_median_ms": statistics.median(hashing),
        "build_median_ms": statistics.median(total - hashed for total, hashed in zip(totals, hashing, strict=True)),
        "rehashed": statistics.median(rehashed),
        "mrenclave": cold.mrenclave[:16],
    }


def show(label: str, numbers: dict[str, float | int | str]) -> None:
    print(f"{label}")
    print(f"  SIZE {numbers['size']}, record stream {numbers['stream_mib']:.1f} MiB, MRENCLAVE {numbers['mrenclave']}...")
    print(f"  cold prediction:         {numbers['cold_ms']:8.1f} ms")
    print(f"  TCSNum edit (median):    {numbers['edit_median_ms']:8.1f} ms  "
          f"(build {numbers['build_median_ms']:.1f} ms + hash {numbers['hash_median_ms']:.1f} ms; "
          f"{100 * float(numbers['rehashed']):.0f}% of the stream re-hashed)")
    print(f"  TCSNum edit (worst):     {numbers['edit_worst_ms']:8.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--edits", type=int, default=8)
    parser.add_argument("--heap", default="2G", help="HeapMaxSize of the synthetic case (default 2G)")
    parser.add_argument("--tcs", type=int, default=10, help="TCSNum of the synthetic case (default 10)")
    args = parser.parse_args()
    sdk = args.fixtures / "sdk"
    if not sdk.is_dir():
        print(f"bench_sdk_whatif: {sdk} not found (give --fixtures DIR)")
        return 2
    results = {}
    for folder in sorted(path for path in sdk.iterdir() if (path / "Enclave.config.xml").is_file()):
        with SdkWhatIf.open(folder / "enclave.signed.so") as session:
            results[folder.name] = edit_latencies(session, load_config(folder / "Enclave.config.xml"), args.edits)
    largest = max(results, key=lambda name: float(results[name]["stream_mib"]))
    for name, numbers in results.items():
        show(f"{name}{'  <- largest SDK fixture' if name == largest else ''}", numbers)
    heap = parse_size(args.heap, what="--heap")
    synthetic = config_from_settings({"TCSNum": args.tcs, "HeapMaxSize": heap}, origin="<synthetic>")
    with SdkWhatIf.open(sdk / SYNTHETIC_ENCLAVE / "enclave.so") as session:
        numbers = edit_latencies(session, synthetic, args.edits)
    show(f"synthetic largest case: {SYNTHETIC_ENCLAVE} enclave.so, HeapMaxSize {args.heap}, TCSNum {args.tcs}", numbers)
    print(f"what-if latency, TCSNum edit: largest fixture {results[largest]['edit_median_ms']:.1f} ms, "
          f"4 GiB / {args.heap} heap {numbers['edit_median_ms']:.1f} ms (median of {args.edits})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
