"""The ``.ensign`` section: signed parameters, both SIGSTRUCTs and image page digests.

``ensign sign`` stores this record in a non-loaded ELF section of the binary (format in
``docs/LAYOUT.md``). It holds every parameter that went into the signature, the SGX1 and
EDMM SIGSTRUCTs, and an 8-byte digest of every measured image page so that ``verify`` can
name the page that changed. Nothing in it is measured. This module only encodes and
decodes; it never writes files and never prints.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from core.errors import ContainerError
from core.fieldtable import FieldTable
from core.params import SOURCE_SIGNED, Params
from core.records import PAGE_SIZE, PageRun
from core.sigstruct import Sigstruct

SECTION_NAME = ".ensign"
MAGIC = b"ENSIGN01"
FORMAT_VERSION = 1
HEADER_SIZE = 128
SIGSTRUCT_SIZE = 1808
PAGE_DIGEST_SIZE = 8

# The fixed header, covering bytes [0, 128) exactly (checked at import by FieldTable).
HEADER_TABLE = FieldTable(".ensign header", HEADER_SIZE, (
    ("magic", 0, "8s"),
    ("version", 8, "<I"),
    ("total_size", 12, "<I"),  # bytes of the whole record
    ("stack", 16, "<Q"),
    ("minheap", 24, "<Q"),
    ("heap", 32, "<Q"),
    ("tcs", 40, "<I"),
    ("mprotect", 44, "<I"),
    ("dlopen", 48, "<I"),
    ("flags", 52, "<I"),  # bit 0: production
    ("xfrm", 56, "<Q"),
    ("isvsvn", 64, "<H"),
    ("isvprodid", 66, "<H"),
    ("date", 68, "<I"),  # SIGSTRUCT DATE (BCD) as signed
    ("page_digests", 72, "<I"),  # number of 8-byte image page digests after the SIGSTRUCTs
    ("reserved", 76, "52s"),
), ContainerError)


def page_digests(runs: tuple[PageRun, ...] | list[PageRun]) -> bytes:
    """8-byte SHA-256 prefixes of every page of the given measured runs, in order."""
    out = bytearray()
    for run in runs:
        for index in range(run.pages):
            if run.data is not None:
                page = run.data[index * PAGE_SIZE:(index + 1) * PAGE_SIZE]
            else:
                page = run.fill * (PAGE_SIZE // 4)
            out += hashlib.sha256(page).digest()[:PAGE_DIGEST_SIZE]
    return bytes(out)


@dataclass(frozen=True, slots=True)
class EnsignSignature:
    """Decoded ``.ensign`` section."""

    params: Params  # the signed parameters (sources = 'signed'; key is not stored)
    date: int  # SIGSTRUCT DATE as signed (BCD u32)
    sgx1: Sigstruct  # SIGSTRUCT of the SGX1 measurement
    edmm: Sigstruct  # SIGSTRUCT of the EDMM measurement
    digests: bytes  # 8 bytes per measured image page, in plan order

    def to_bytes(self) -> bytes:
        """Serialise (header ‖ SGX1 SIGSTRUCT ‖ EDMM SIGSTRUCT ‖ page digests)."""
        total = HEADER_SIZE + 2 * SIGSTRUCT_SIZE + len(self.digests)
        p = self.params
        header = HEADER_TABLE.pack({
            "magic": MAGIC, "version": FORMAT_VERSION, "total_size": total, "stack": p.stack,
            "minheap": p.minheap, "heap": p.heap, "tcs": p.tcs, "mprotect": p.mprotect, "dlopen": p.dlopen,
            "flags": 1 if p.production else 0, "xfrm": p.xfrm, "isvsvn": p.isvsvn, "isvprodid": p.isvprodid,
            "date": self.date, "page_digests": len(self.digests) // PAGE_DIGEST_SIZE, "reserved": b"",
        })
        return header + self.sgx1.to_bytes() + self.edmm.to_bytes() + self.digests

    @classmethod
    def from_bytes(cls, data: bytes, *, origin: str = ".ensign section") -> EnsignSignature:
        """Decode a section.

        Raises:
            ContainerError: wrong magic, version or size.
        """
        if len(data) < HEADER_SIZE + 2 * SIGSTRUCT_SIZE:
            raise ContainerError(f"{origin}: {len(data)} bytes, too short for an ensign signature")
        values = HEADER_TABLE.unpack(data)
        if values["magic"] != MAGIC:
            raise ContainerError(f"{origin}: bad magic {values['magic']!r}")
        if values["version"] != FORMAT_VERSION:
            raise ContainerError(f"{origin}: format version {values['version']} is not supported")
        digest_bytes = values["page_digests"] * PAGE_DIGEST_SIZE
        expected = HEADER_SIZE + 2 * SIGSTRUCT_SIZE + digest_bytes
        if values["total_size"] != expected or len(data) < expected:
            raise ContainerError(f"{origin}: size fields disagree ({len(data)} bytes, header says {values['total_size']})")
        sources = {name: SOURCE_SIGNED for name in
                   ("stack", "minheap", "heap", "tcs", "mprotect", "dlopen", "xfrm", "isvsvn", "isvprodid",
                    "production")}
        try:
            params = Params(stack=values["stack"], minheap=values["minheap"], heap=values["heap"],
                            tcs=values["tcs"], mprotect=values["mprotect"], dlopen=values["dlopen"],
                            xfrm=values["xfrm"], isvsvn=values["isvsvn"], isvprodid=values["isvprodid"],
                            production=bool(values["flags"] & 1), sources=sources).validated()
        except Exception as error:  # ParamError: corrupt signed values
            raise ContainerError(f"{origin}: signed parameters are invalid: {error}") from error
        start = HEADER_SIZE
        sgx1 = Sigstruct.from_bytes(bytes(data[start:start + SIGSTRUCT_SIZE]))
        edmm = Sigstruct.from_bytes(bytes(data[start + SIGSTRUCT_SIZE:start + 2 * SIGSTRUCT_SIZE]))
        digests = bytes(data[HEADER_SIZE + 2 * SIGSTRUCT_SIZE:expected])
        return cls(params=params, date=values["date"], sgx1=sgx1, edmm=edmm, digests=digests)
