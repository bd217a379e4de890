"""SDK enclave measurement benchmark: the largest layout a user may have (issue 5).

Takes a signed SDK enclave (default: ``../shared/fixtures/sdk/h0mur0-IT-MPSI-with-TEE``), rewrites
its metadata into a 4 GiB enclave: HEAP_INIT grown to hundreds of thousands of EADD-only pages
(``--heap-pages``, default 900 000 ≈ 3.4 GiB) and ``--threads`` static threads (default 64), and
measures it through the SDK loader plan with ``core.measure.Measurer``. Prints:

  * plan build time and record counts;
  * full-measure ratio = ensign full measurement / hashlib SHA-256 of the same record stream,
    both timed in this process (the core's target: ≤ 1.15);
  * re-measure of another metadata block with the same measured sequence (checkpoints).

Run: python bench/bench_sdk.py [--enclave PATH] [--heap-pages N] [--threads N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.measure import Measurer  # noqa: E402
from core.records import PAGE_SIZE, iter_stream_chunks  # noqa: E402
from core.sdk import SdkEnclave  # noqa: E402
from core.sdk_metadata import LayoutEntry, LayoutGroup, build_block, build_note  # noqa: E402

DEFAULT_ENCLAVE = ROOT.parent / "shared" / "fixtures" / "sdk" / "h0mur0-IT-MPSI-with-TEE" / "enclave.signed.so"
ENCLAVE_SIZE = 1 << 32  # 4 GiB


def big_layout(enclave: SdkEnclave, heap_pages: int, threads: int) -> list[LayoutEntry | LayoutGroup]:
    """The enclave's primary layout with HEAP_INIT grown and the thread group repeated ``threads - 1`` times."""
    block = enclave.primary
    items: list[LayoutEntry | LayoutGroup] = []
    shift = 0
    for item in block.layout:
        if isinstance(item, LayoutGroup):
            items.append(dataclasses.replace(item, load_times=threads - 1))
            continue
        entry = dataclasses.replace(item, rva=item.rva + shift)
        if entry.name == "HEAP_INIT":
            shift = (heap_pages - entry.page_count) * PAGE_SIZE
            entry = dataclasses.replace(entry, page_count=heap_pages)
        items.append(entry)
    return items


def write_big_enclave(source: Path, target: Path, heap_pages: int, threads: int) -> None:
    """A copy of ``source`` whose note holds the big layout (twice: 2 blocks, same measured sequence)."""
    with SdkEnclave.open(source) as enclave:
        block = enclave.primary
        layout = big_layout(enclave, heap_pages, threads)
        patches = [(patch.dst, block.blob(patch.src, patch.size, what="patch")) for patch in block.patches]
        raw = build_block(
            version=(block.major, block.minor),
            enclave_size=ENCLAVE_SIZE,
            layout=layout,
            sigstruct=block.sigstruct.to_bytes(),
            tcs_template=block.tcs_template() or b"",
            patches=patches,
            dir_count=block.dir_count,
        )
        note = build_note([raw, raw], enclave.metadata.descsz)
        section = enclave.image.section_by_name(".note.sgxmeta")
        assert section is not None and len(note) <= section.size
        data = bytearray(enclave.image.data)
        data[section.offset : section.offset + len(note)] = note
    target.write_bytes(bytes(data))


def best(function, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enclave", type=Path, default=DEFAULT_ENCLAVE)
    parser.add_argument("--heap-pages", type=int, default=900_000)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.enclave.is_file():
        print(f"bench_sdk: {args.enclave} not found (give --enclave PATH to a signed SDK enclave)")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.signed.so"
        write_big_enclave(args.enclave, path, args.heap_pages, args.threads)
        with SdkEnclave.open(path) as enclave:
            started = time.perf_counter()
            load = enclave.load()
            build_time = time.perf_counter() - started
            plan = load.plan
            counts = plan.counts()
            print(f"enclave: SIZE {plan.size:#x} ({plan.size >> 30} GiB), {counts['EADD']} EADD, "
                  f"{counts['EEXTEND']} EEXTEND, {len(load.rows)} layout rows, record stream "
                  f"{plan.stream_size / (1 << 20):.1f} MiB")
            print(f"plan build (metadata -> runs):  {build_time * 1000:8.1f} ms")
            holder = [b"".join(bytes(chunk) for chunk in iter_stream_chunks(plan))]
            baseline = best(lambda: hashlib.sha256(holder[0]).digest(), args.repeat)
            expected = hashlib.sha256(holder[0]).hexdigest()
            holder.clear()
            full = best(lambda: Measurer().measure(plan), args.repeat)
            measurer = Measurer()
            assert measurer.measure(plan).hex == expected
            started = time.perf_counter()
            again = measurer.measure(enclave.load(1).plan)
            other_block = time.perf_counter() - started
            assert again.hex == expected
            print(f"hashlib over the stream:        {baseline * 1000:8.1f} ms")
            print(f"ensign full measurement:        {full * 1000:8.1f} ms")
            print(f"full-measure ratio:             {full / baseline:8.3f}  (target <= 1.15)")
            print(f"second block (checkpoints):     {other_block * 1000:8.1f} ms  "
                  f"(ratio {other_block / full:.3f} of a full measurement)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
