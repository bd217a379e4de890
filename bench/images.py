"""Synthetic ELF64 x86-64 executables of any size, for benchmarks (no compiler needed).

The file has a small R-X text segment, a large RW data segment filled with pseudo-random
bytes (hashing cost does not depend on content, but random bytes defeat any shortcut),
a BSS tail, a PT_TLS, and a symbol-free section table with .text/.data/.shstrtab so that
readelf and ensign treat it as a normal static program.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

PAGE = 4096
BASE = 0x400000


def make_elf(path: str | Path, data_bytes: int, *, seed: int = 1, text_bytes: int = 64 * 1024) -> Path:
    """Write an ELF whose PT_LOADs cover about ``data_bytes + text_bytes`` and return its path."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    ehdr_size, phdr_size, phnum = 64, 56, 3
    text_offset = PAGE
    data_offset = text_offset + text_bytes
    shstrtab = b"\0.text\0.data\0.tbss\0.shstrtab\0"
    sh_offset = data_offset + data_bytes + len(shstrtab)
    sh_offset = (sh_offset + 7) & ~7
    text_vaddr = BASE + text_offset
    data_vaddr = BASE + 0x200000 + data_offset
    entry = text_vaddr
    with path.open("wb") as out:
        header = struct.pack(
            "<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"", 2, 62, 1, entry, ehdr_size, sh_offset, 0,
            ehdr_size, phdr_size, phnum, 64, 5, 4,
        )
        phdrs = b"".join((
            # first PT_LOAD maps the headers and the text: offset 0
            struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, text_offset + text_bytes, text_offset + text_bytes, PAGE),
            struct.pack("<IIQQQQQQ", 1, 6, data_offset, data_vaddr, data_vaddr, data_bytes,
                        data_bytes + 3 * PAGE + 123, PAGE),
            struct.pack("<IIQQQQQQ", 7, 4, data_offset, data_vaddr, data_vaddr, 0, 64, 64),
        ))
        out.write(header + phdrs)
        out.write(bytes(text_offset - len(header) - len(phdrs)))
        out.write(b"\xf4" * text_bytes)  # hlt
        remaining = data_bytes
        while remaining:
            chunk = min(remaining, 16 << 20)
            out.write(rng.integers(0, 256, chunk, dtype=np.uint8).tobytes())
            remaining -= chunk
        out.write(shstrtab)
        out.write(bytes(sh_offset - (data_offset + data_bytes + len(shstrtab))))
        sections = [
            struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            struct.pack("<IIQQQQIIQQ", 1, 1, 6, text_vaddr, text_offset, text_bytes, 0, 0, 16, 0),
            struct.pack("<IIQQQQIIQQ", 7, 1, 3, data_vaddr, data_offset, data_bytes, 0, 0, 64, 0),
            struct.pack("<IIQQQQIIQQ", 13, 8, 0x403, data_vaddr, data_offset, 64, 0, 0, 64, 0),
            struct.pack("<IIQQQQIIQQ", 19, 3, 0, 0, data_offset + data_bytes, len(shstrtab), 0, 0, 1, 0),
        ]
        out.write(b"".join(sections))
    path.chmod(0o755)
    return path
