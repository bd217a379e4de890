"""ELF64 x86-64 loading: the one place where ensign reads an enclave's ELF file.

``load_elf`` validates the file (with one-line :class:`~core.errors.ElfFormatError` messages that
name the file), copies the ELF header, program headers, section headers and symbols into frozen
models, and keeps a read-only ``mmap`` of the file so segment bytes can be read without copying the
file. pyelftools is used only inside ``load_elf``: callers never see an ``ELFFile``, because its
objects share one file position (not thread-safe) and some malformed files make it raise construct,
struct or other errors instead of ``ELFError``; every exception it raises becomes an
``ElfFormatError`` chained ``from`` the original.

This module must never print, import ``textual``/``rich``/``tui``, write files, or let a bare
``ValueError``/``KeyError``/``struct.error`` escape for bad input.
"""

from __future__ import annotations

import bisect
import contextlib
import mmap
import os
import stat
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

import elftools.elf.enums as _elf_enums
from elftools.elf.elffile import ELFFile

from core.errors import ElfFormatError, EnsignError

__all__ = [
    "ELF64_SHDR_SIZE",
    "SECTION_TYPE_NAMES",
    "SEGMENT_TYPE_NAMES",
    "SHT_NULL",
    "SHT_STRTAB",
    "ElfClassError",
    "ElfImage",
    "ElfMachineError",
    "ElfSegmentError",
    "ElfTruncatedError",
    "ElfTypeError",
    "NotElfError",
    "PF_R",
    "PF_W",
    "PF_X",
    "PT_LOAD",
    "PT_TLS",
    "SHF_ALLOC",
    "SHT_NOBITS",
    "SHT_NOTE",
    "SHT_PROGBITS",
    "Section",
    "Segment",
    "Symbol",
    "load_elf",
]


# --- errors ---------------------------------------------------------------------------------


class NotElfError(ElfFormatError):
    """The file does not start with the ELF magic (or is empty, missing, a directory, ...)."""

    default_title = "Not an ELF file"


class ElfClassError(ElfFormatError):
    """The file is ELF, but 32-bit or big-endian; ensign needs little-endian ELF64."""

    default_title = "Unsupported ELF class"


class ElfMachineError(ElfFormatError):
    """The ELF file is for another machine than x86-64."""

    default_title = "Unsupported ELF machine"


class ElfTypeError(ElfFormatError):
    """The ELF file is neither an executable (ET_EXEC) nor a shared object/PIE (ET_DYN)."""

    default_title = "Unsupported ELF file type"


class ElfTruncatedError(ElfFormatError):
    """A header or table of the ELF file lies (partly) past the end of the file."""

    default_title = "Truncated ELF file"


class ElfSegmentError(ElfFormatError):
    """The program headers cannot describe an enclave image (missing or inconsistent PT_LOADs)."""

    default_title = "Unusable ELF segments"


# --- constants --------------------------------------------------------------------------------

PT_NULL: Final = 0
PT_LOAD: Final = 1
PT_DYNAMIC: Final = 2
PT_NOTE: Final = 4
PT_PHDR: Final = 6
PT_TLS: Final = 7
PT_GNU_EH_FRAME: Final = 0x6474E550
PT_GNU_STACK: Final = 0x6474E551
PT_GNU_RELRO: Final = 0x6474E552
PT_GNU_SFRAME: Final = 0x6474E554
PT_GNU_MBIND_LO: Final = 0x6474E555
PT_GNU_MBIND_HI: Final = 0x6474F554

PF_X: Final = 1
PF_W: Final = 2
PF_R: Final = 4

SHT_NULL: Final = 0
SHT_PROGBITS: Final = 1
SHT_SYMTAB: Final = 2
SHT_STRTAB: Final = 3
SHT_NOTE: Final = 7
SHT_NOBITS: Final = 8
SHT_DYNSYM: Final = 11

SHF_WRITE: Final = 0x1
SHF_ALLOC: Final = 0x2
SHF_EXECINSTR: Final = 0x4
SHF_TLS: Final = 0x400

SHN_UNDEF: Final = 0
SHN_XINDEX: Final = 0xFFFF
PN_XNUM: Final = 0xFFFF

EM_X86_64: Final = 62
ET_EXEC: Final = 2
ET_DYN: Final = 3

ELF_MAGIC: Final = b"\x7fELF"
ELF64_EHDR_SIZE: Final = 64
ELF64_PHDR_SIZE: Final = 56
ELF64_SHDR_SIZE: Final = 64
ELF64_SYM_SIZE: Final = 24
SIGSTRUCT_SIZE: Final = 1808

_MASK64: Final = (1 << 64) - 1

# e_ident[16], e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
# e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx (Elf64_Ehdr, little-endian).
_EHDR: Final = struct.Struct("<16sHHIQQQIHHHHHH")
# st_name, st_info, st_other, st_shndx, st_value, st_size (Elf64_Sym).
_SYM: Final = struct.Struct("<IBBHQQ")
# sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize.
_SHDR: Final = struct.Struct("<IIQQQQIIQQ")
assert _EHDR.size == ELF64_EHDR_SIZE and _SYM.size == ELF64_SYM_SIZE and _SHDR.size == ELF64_SHDR_SIZE

SEGMENT_TYPE_NAMES: Final[dict[int, str]] = {
    PT_NULL: "NULL",
    PT_LOAD: "LOAD",
    PT_DYNAMIC: "DYNAMIC",
    3: "INTERP",
    PT_NOTE: "NOTE",
    5: "SHLIB",
    PT_PHDR: "PHDR",
    PT_TLS: "TLS",
    PT_GNU_EH_FRAME: "GNU_EH_FRAME",
    PT_GNU_STACK: "GNU_STACK",
    PT_GNU_RELRO: "GNU_RELRO",
    0x6474E553: "GNU_PROPERTY",
    PT_GNU_SFRAME: "GNU_SFRAME",
}

# Names as readelf prints them, so the models read like `readelf -S`.
SECTION_TYPE_NAMES: Final[dict[int, str]] = {
    SHT_NULL: "NULL",
    SHT_PROGBITS: "PROGBITS",
    SHT_SYMTAB: "SYMTAB",
    SHT_STRTAB: "STRTAB",
    4: "RELA",
    5: "HASH",
    6: "DYNAMIC",
    SHT_NOTE: "NOTE",
    SHT_NOBITS: "NOBITS",
    9: "REL",
    10: "SHLIB",
    SHT_DYNSYM: "DYNSYM",
    14: "INIT_ARRAY",
    15: "FINI_ARRAY",
    16: "PREINIT_ARRAY",
    17: "GROUP",
    18: "SYMTAB_SHNDX",
    19: "RELR",
    0x6FFFFFF5: "GNU_ATTRIBUTES",
    0x6FFFFFF6: "GNU_HASH",
    0x6FFFFFF7: "GNU_LIBLIST",
    0x6FFFFFFD: "VERDEF",
    0x6FFFFFFE: "VERNEED",
    0x6FFFFFFF: "VERSYM",
    0x70000001: "X86_64_UNWIND",
}

SYMBOL_TYPE_NAMES: Final[dict[int, str]] = {
    0: "NOTYPE",
    1: "OBJECT",
    2: "FUNC",
    3: "SECTION",
    4: "FILE",
    5: "COMMON",
    6: "TLS",
    10: "IFUNC",
}
SYMBOL_BIND_NAMES: Final[dict[int, str]] = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"}

_MACHINE_NAMES: Final[dict[int, str]] = {
    0: "no machine (EM_NONE)",
    2: "SPARC",
    3: "i386 (32-bit x86)",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "IBM S/390",
    40: "ARM",
    43: "SPARC V9",
    50: "IA-64",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}
_ELF_TYPE_DESCRIPTIONS: Final[dict[int, str]] = {
    0: "ET_NONE, no file type",
    1: "ET_REL, a relocatable object file (.o)",
    4: "ET_CORE, a core dump",
}

# pyelftools turns type fields into enum names; map them back to the numbers of the ELF spec.
_P_TYPE_NUMBERS: Final[dict[str, int]] = {
    name: value
    for enum_name in dir(_elf_enums)
    if enum_name.startswith("ENUM_P_TYPE")
    for name, value in getattr(_elf_enums, enum_name).items()
    if isinstance(value, int)
}
_SH_TYPE_NUMBERS: Final[dict[str, int]] = {
    name: value
    for enum_name in dir(_elf_enums)
    if enum_name.startswith("ENUM_SH_TYPE")
    for name, value in getattr(_elf_enums, enum_name).items()
    if isinstance(value, int)
}


# --- models -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header (Elf64_Phdr) of an ELF image."""

    index: int  # position in the program header table (0-based)
    type: int  # p_type (PT_LOAD = 1, PT_TLS = 7, ...)
    type_name: str  # p_type as readelf names it ('LOAD', 'TLS', ...), else hex ('0x6474e554')
    flags: int  # p_flags bit set: PF_X = 1, PF_W = 2, PF_R = 4
    offset: int  # p_offset: file offset of the segment's first byte (bytes)
    vaddr: int  # p_vaddr: virtual address, i.e. the enclave-relative address (rva) for SGX (bytes)
    paddr: int  # p_paddr: physical address, unused on x86-64 (bytes)
    filesz: int  # p_filesz: bytes taken from the file (bytes)
    memsz: int  # p_memsz: bytes in memory; memsz - filesz is zero-filled BSS (bytes)
    align: int  # p_align: alignment of vaddr and offset (bytes)
    sections: tuple[str, ...]  # names of the sections inside the segment (readelf's mapping rules)

    @property
    def flags_text(self) -> str:
        """The permissions as ``'RWX'`` with ``-`` for a missing bit, e.g. ``'R-X'``."""
        return (
            ("R" if self.flags & PF_R else "-")
            + ("W" if self.flags & PF_W else "-")
            + ("X" if self.flags & PF_X else "-")
        )


@dataclass(frozen=True, slots=True)
class Section:
    """One section header (Elf64_Shdr) of an ELF image."""

    index: int  # position in the section header table (0 is the SHT_NULL entry)
    name: str  # sh_name resolved through the section header string table (e_shstrndx)
    type: int  # sh_type (SHT_PROGBITS = 1, SHT_NOBITS = 8, ...)
    type_name: str  # sh_type as readelf names it ('PROGBITS', 'NOBITS', ...), else hex
    flags: int  # sh_flags bit set (SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4, SHF_TLS = 0x400)
    addr: int  # sh_addr: virtual address when loaded, 0 if not allocated (bytes)
    offset: int  # sh_offset: file offset of the contents (bytes)
    size: int  # sh_size: size of the contents; takes no file space for SHT_NOBITS (bytes)
    link: int  # sh_link: index of an associated section (e.g. the string table of a symbol table)
    info: int  # sh_info: type-dependent extra information
    addralign: int  # sh_addralign: required alignment of addr (bytes; 0 or 1 = none)
    entsize: int  # sh_entsize: size of one entry for tables, else 0 (bytes)

    @property
    def is_alloc(self) -> bool:
        """Whether the section occupies memory at run time (SHF_ALLOC)."""
        return bool(self.flags & SHF_ALLOC)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One named entry (Elf64_Sym) of ``.symtab`` or ``.dynsym``."""

    name: str  # st_name resolved through the table's string table
    value: int  # st_value: the virtual address for defined FUNC/OBJECT symbols (bytes)
    size: int  # st_size (bytes; 0 if unknown)
    type: str  # ELF64_ST_TYPE(st_info): 'FUNC', 'OBJECT', 'NOTYPE', 'TLS', 'SECTION', 'FILE', ...
    bind: str  # ELF64_ST_BIND(st_info): 'LOCAL', 'GLOBAL', 'WEAK', 'UNIQUE', else hex
    section_index: int  # st_shndx: defining section; 0 = undefined, 0xfff1 = SHN_ABS, ...
    table: str  # the table it came from: '.symtab' or '.dynsym'


@dataclass(frozen=True, slots=True)
class _SymbolIndex:
    """Symbols sorted by address for :meth:`ElfImage.symbol_for_vaddr` (built once, lazily)."""

    starts: list[int]  # st_value of each ranged symbol, ascending
    ranged: list[Symbol]  # symbols with a size, in ``starts`` order
    max_end: list[int]  # running maximum of value + size over ``ranged[: i + 1]`` (bytes)
    named_starts: list[int]  # st_value of each FUNC/OBJECT symbol, ascending
    named: list[Symbol]  # FUNC/OBJECT symbols in ``named_starts`` order


@dataclass(frozen=True, slots=True)
class ElfImage:
    """A loaded ELF64 x86-64 executable or shared object, with a read-only view of its bytes.

    Use :func:`load_elf` to make one, and close it (or use it as a context manager) when done.
    """

    path: str  # the path it was loaded from, as given
    file_size: int  # size of the file (bytes)
    elf_type: str  # e_type: 'EXEC' (ET_EXEC) or 'DYN' (ET_DYN, PIE or shared object)
    machine: str  # e_machine: always 'x86-64' (EM_X86_64)
    entry: int  # e_entry: entry point virtual address (bytes)
    phoff: int  # e_phoff: file offset of the program header table (bytes)
    shoff: int  # e_shoff: file offset of the section header table, 0 if none (bytes)
    segments: tuple[Segment, ...]  # every program header, in header order
    sections: tuple[Section, ...]  # every section header, in header order (index 0 = SHT_NULL)
    symbols: tuple[Symbol, ...]  # named symbols of .symtab then .dynsym, duplicates dropped
    tls: Segment | None  # the PT_TLS program header, if any
    identity: tuple[str, int, int, int, int]  # (realpath, st_dev, st_ino, st_size, st_mtime_ns)
    data: memoryview = field(repr=False, compare=False)  # read-only view of the whole file (mmap)
    _mapping: mmap.mmap | None = field(default=None, repr=False, compare=False)  # keeps data alive
    _cache: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )  # lazy indexes
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    # -- segments and bytes --

    @property
    def load_segments(self) -> tuple[Segment, ...]:
        """The PT_LOAD program headers, in program-header order (the SGX measurement order)."""
        return tuple(segment for segment in self.segments if segment.type == PT_LOAD)

    def read(self, offset: int, size: int) -> memoryview:
        """Return a read-only view of ``size`` file bytes at ``offset`` (no copy).

        Args:
            offset: file offset (bytes).
            size: number of bytes.

        Returns:
            A memoryview into the file's mapping; valid until :meth:`close`.

        Raises:
            ElfTruncatedError: the range is negative or extends past the end of the file.
        """
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise ElfTruncatedError(
                f"{self.path}: cannot read {size} bytes at offset 0x{offset:x}: "
                f"the file has only {self.file_size} bytes"
            )
        return self.data[offset : offset + size]

    def segment_for_vaddr(self, vaddr: int) -> Segment | None:
        """Return the PT_LOAD segment whose memory range ``[p_vaddr, p_vaddr + p_memsz)`` holds ``vaddr``.

        Args:
            vaddr: a virtual address (bytes).

        Returns:
            The first such PT_LOAD in header order, or None.
        """
        for segment in self.segments:
            if segment.type == PT_LOAD and segment.vaddr <= vaddr < segment.vaddr + segment.memsz:
                return segment
        return None

    # -- sections --

    def section_by_name(self, name: str) -> Section | None:
        """Return the first section called ``name``, or None."""
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def section_for_vaddr(self, vaddr: int) -> Section | None:
        """Return the allocated section that holds ``vaddr``.

        A non-empty section containing the address wins over a thread-local ``.tbss`` (whose
        addresses overlap the sections after it but take no memory), which wins over an empty
        section starting exactly at ``vaddr``.

        Args:
            vaddr: a virtual address (bytes).

        Returns:
            The section, or None if no allocated section holds the address.
        """
        tbss: Section | None = None
        empty: Section | None = None
        for section in self.sections:
            if not section.is_alloc:
                continue
            if section.size == 0:
                if section.addr == vaddr and empty is None:
                    empty = section
                continue
            if section.addr <= vaddr < section.addr + section.size:
                if section.type == SHT_NOBITS and section.flags & SHF_TLS:
                    tbss = tbss or section
                    continue
                return section
        return tbss or empty

    # -- symbols --

    def symbol_for_vaddr(self, vaddr: int) -> tuple[Symbol, int] | None:
        """Name an address as ``symbol + offset``.

        Args:
            vaddr: a virtual address (bytes).

        Returns:
            ``(symbol, vaddr - symbol.value)`` for the symbol whose range
            ``[value, value + size)`` holds ``vaddr`` (the innermost one if several do), else for
            the nearest FUNC/OBJECT symbol at or below ``vaddr``; None if there is none.
        """
        index = self._symbol_index()
        position = bisect.bisect_right(index.starts, vaddr)
        best: Symbol | None = None
        candidate = position - 1
        # max_end is non-decreasing, so once it drops to vaddr no earlier symbol can contain it.
        while candidate >= 0 and index.max_end[candidate] > vaddr:
            symbol = index.ranged[candidate]
            if symbol.value + symbol.size > vaddr:
                if best is None or symbol.value > best.value:
                    best = symbol
                elif symbol.value == best.value and _symbol_rank(symbol) < _symbol_rank(best):
                    best = symbol
            if best is not None and index.starts[candidate] < best.value:
                break
            candidate -= 1
        if best is None:
            position = bisect.bisect_right(index.named_starts, vaddr)
            if position == 0:
                return None
            best = index.named[position - 1]
            # Among aliases at the same address prefer the best-ranked one.
            start = bisect.bisect_left(index.named_starts, best.value)
            best = min(index.named[start:position], key=_symbol_rank)
        return best, vaddr - best.value

    def _symbol_index(self) -> _SymbolIndex:
        cached = self._cache.get("symbol_index")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        with self._lock:
            cached = self._cache.get("symbol_index")
            if cached is None:
                cached = _build_symbol_index(self.symbols)
                self._cache["symbol_index"] = cached
        return cached  # type: ignore[no-any-return]

    # -- lifetime --

    def close(self) -> None:
        """Release the file mapping.

        Views returned by :meth:`read` that are still alive keep the mapping until they are
        dropped; the image must not be used after closing.
        """
        self.data.release()
        if self._mapping is not None:
            # A caller may still hold a slice of the data; the mapping then goes when that does.
            with contextlib.suppress(BufferError):
                self._mapping.close()

    def __enter__(self) -> ElfImage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _symbol_rank(symbol: Symbol) -> tuple[int, int, str]:
    """Sort key for aliases: FUNC/OBJECT before others, GLOBAL before WEAK before LOCAL, then name."""
    type_rank = 0 if symbol.type in ("FUNC", "OBJECT", "IFUNC") else 1
    bind_rank = {"GLOBAL": 0, "WEAK": 1}.get(symbol.bind, 2)
    return (type_rank, bind_rank, symbol.name)


def _build_symbol_index(symbols: tuple[Symbol, ...]) -> _SymbolIndex:
    addressable = [
        symbol
        for symbol in symbols
        if symbol.section_index != SHN_UNDEF and symbol.type in ("FUNC", "OBJECT", "NOTYPE", "IFUNC")
    ]
    ranged = sorted((s for s in addressable if s.size > 0), key=lambda s: (s.value, _symbol_rank(s)))
    max_end: list[int] = []
    running = 0
    for symbol in ranged:
        running = max(running, symbol.value + symbol.size)
        max_end.append(running)
    named = sorted(
        (s for s in addressable if s.type in ("FUNC", "OBJECT", "IFUNC")),
        key=lambda s: (s.value, _symbol_rank(s)),
    )
    return _SymbolIndex(
        starts=[s.value for s in ranged],
        ranged=ranged,
        max_end=max_end,
        named_starts=[s.value for s in named],
        named=named,
    )


# --- loading ----------------------------------------------------------------------------------


def load_elf(path: str | os.PathLike[str]) -> ElfImage:
    """Load and validate an ELF64 x86-64 executable (ET_EXEC) or shared object/PIE (ET_DYN).

    Args:
        path: the file to load.

    Returns:
        The loaded image; close it (or use ``with``) to release the file mapping.

    Raises:
        NotElfError: the file is missing, a directory, empty, unreadable or not ELF.
        ElfClassError: 32-bit or big-endian ELF.
        ElfMachineError: not x86-64.
        ElfTypeError: not ET_EXEC/ET_DYN (relocatable object, core dump, ...).
        ElfTruncatedError: ELF header, program or section header table past the end of the file.
        ElfSegmentError: a segment's bytes past the end of the file, no PT_LOAD, or PT_LOADs that
            overlap with different contents.
        ElfFormatError: any other malformed structure (also what pyelftools errors become).
    """
    path_text = os.fspath(path)
    try:
        file = open(path_text, "rb")  # closed by the with below; the mapping outlives it
    except FileNotFoundError as error:
        raise NotElfError(f"{path_text}: no such file") from error
    except IsADirectoryError as error:
        raise NotElfError(f"{path_text}: is a directory, not an ELF file") from error
    except PermissionError as error:
        raise NotElfError(f"{path_text}: permission denied") from error
    except OSError as error:
        raise NotElfError(f"{path_text}: cannot open ({error.strerror or error})") from error
    with file:
        try:
            status = os.fstat(file.fileno())
        except OSError as error:
            raise NotElfError(f"{path_text}: cannot stat ({error.strerror or error})") from error
        if stat.S_ISDIR(status.st_mode):
            raise NotElfError(f"{path_text}: is a directory, not an ELF file")
        if not stat.S_ISREG(status.st_mode):
            raise NotElfError(f"{path_text}: not a regular file")
        if status.st_size == 0:
            raise NotElfError(f"{path_text}: empty file, not an ELF file")
        try:
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as error:
            raise NotElfError(f"{path_text}: cannot map the file ({error})") from error
        data = memoryview(mapping)
        try:
            return _load_mapped(path_text, file, status, mapping, data)
        except BaseException:
            data.release()
            mapping.close()
            raise


def _load_mapped(
    path: str, file: Any, status: os.stat_result, mapping: mmap.mmap, data: memoryview
) -> ElfImage:
    file_size = len(data)
    header = _check_elf_header(path, data)
    raw_segments, section_list = _read_headers(path, file, header)
    _check_segment_bounds(path, raw_segments, file_size)
    symbols = _read_symbols(path, data, section_list)
    sections = tuple(section_list)
    segments = tuple(
        Segment(
            index=segment.index,
            type=segment.type,
            type_name=segment.type_name,
            flags=segment.flags,
            offset=segment.offset,
            vaddr=segment.vaddr,
            paddr=segment.paddr,
            filesz=segment.filesz,
            memsz=segment.memsz,
            align=segment.align,
            sections=tuple(s.name for s in sections[1:] if _section_in_segment(s, segment)),
        )
        for segment in raw_segments
    )
    _check_segments(path, segments, data)
    tls = next((segment for segment in segments if segment.type == PT_TLS), None)
    return ElfImage(
        path=path,
        file_size=file_size,
        elf_type="EXEC" if header.e_type == ET_EXEC else "DYN",
        machine="x86-64",
        entry=header.e_entry,
        phoff=header.e_phoff,
        shoff=header.e_shoff,
        segments=segments,
        sections=sections,
        symbols=symbols,
        tls=tls,
        identity=(
            os.path.realpath(path),
            status.st_dev,
            status.st_ino,
            status.st_size,
            status.st_mtime_ns,
        ),
        data=data,
        _mapping=mapping,
    )


@dataclass(frozen=True, slots=True)
class _ElfHeader:
    """The Elf64_Ehdr fields the loader checks itself before pyelftools sees the file."""

    e_type: int  # ET_EXEC = 2, ET_DYN = 3
    e_entry: int  # entry point virtual address (bytes)
    e_phoff: int  # program header table file offset (bytes)
    e_shoff: int  # section header table file offset (bytes), 0 if none
    e_phnum: int  # number of program headers (PN_XNUM resolved)
    e_shnum: int  # number of section headers (0 = extended count resolved)
    e_shstrndx: int  # section header string table index (SHN_XINDEX resolved)


def _describe_non_elf(data: memoryview) -> str:
    """Guess what a non-ELF file is, for the error message."""
    head = bytes(data[:8])
    shown = repr(bytes(data[:4]))[1:]
    guesses = [
        (b"PK\x03\x04", "a zip archive?"),
        (b"\x1f\x8b", "gzip-compressed?"),
        (b"\xfd7zXZ\x00", "xz-compressed?"),
        (b"BZh", "bzip2-compressed?"),
        (b"MZ", "a Windows PE executable?"),
        (b"#!", "a script?"),
        (b"!<arch>\n", "an ar archive (static library)?"),
        (b"-----BEGIN", "a PEM file (key or certificate)?"),
        (b"\xcf\xfa\xed\xfe", "a Mach-O executable?"),
    ]
    for magic, guess in guesses:
        if bytes(data[: len(magic)]) == magic:
            return f"starts with {shown}, {guess}"
    if len(data) == SIGSTRUCT_SIZE:
        return f"{SIGSTRUCT_SIZE} bytes and starts with {shown}: looks like a SIGSTRUCT"
    if head and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head):
        return f"starts with {shown}, a text file?"
    return f"starts with {shown}"


def _check_elf_header(path: str, data: memoryview) -> _ElfHeader:
    """Validate e_ident, e_type, e_machine and the header tables' bounds with plain struct."""
    file_size = len(data)
    if bytes(data[:4]) != ELF_MAGIC:
        raise NotElfError(f"{path}: not an ELF file ({_describe_non_elf(data)})")
    if file_size < 6:
        raise ElfTruncatedError(f"{path}: truncated ELF header ({file_size} bytes)")
    elf_class, elf_data = data[4], data[5]
    if elf_class == 1:
        raise ElfClassError(f"{path}: 32-bit ELF (ELFCLASS32); ensign needs a 64-bit x86-64 ELF file")
    if elf_class != 2:
        raise ElfClassError(f"{path}: invalid ELF class {elf_class} in e_ident (expected 2, ELFCLASS64)")
    if elf_data == 2:
        raise ElfClassError(f"{path}: big-endian ELF (ELFDATA2MSB); ensign needs little-endian x86-64")
    if elf_data != 1:
        raise ElfClassError(f"{path}: invalid data encoding {elf_data} in e_ident (expected 1, LSB)")
    if file_size < ELF64_EHDR_SIZE:
        raise ElfTruncatedError(f"{path}: truncated ELF header ({file_size} of {ELF64_EHDR_SIZE} bytes)")
    (
        _ident,
        e_type,
        e_machine,
        _version,
        e_entry,
        e_phoff,
        e_shoff,
        _flags,
        _ehsize,
        e_phentsize,
        e_phnum,
        e_shentsize,
        e_shnum,
        e_shstrndx,
    ) = _EHDR.unpack_from(data, 0)
    if e_machine != EM_X86_64:
        name = _MACHINE_NAMES.get(e_machine, f"machine {e_machine}")
        raise ElfMachineError(f"{path}: ELF file for {name} (e_machine {e_machine}); ensign needs x86-64")
    if e_type not in (ET_EXEC, ET_DYN):
        what = _ELF_TYPE_DESCRIPTIONS.get(e_type, f"e_type 0x{e_type:x}")
        raise ElfTypeError(
            f"{path}: ELF file is {what}; ensign needs an executable (ET_EXEC) or shared object (ET_DYN)"
        )
    # Section header table (checked first: PN_XNUM and extended counts live in section 0).
    if e_shoff:
        if e_shentsize != ELF64_SHDR_SIZE:
            raise ElfFormatError(f"{path}: e_shentsize is {e_shentsize}, expected {ELF64_SHDR_SIZE}")
        if e_shoff + ELF64_SHDR_SIZE > file_size:
            raise ElfTruncatedError(
                f"{path}: section header table at 0x{e_shoff:x} lies past the end of the file "
                f"({file_size} bytes)"
            )
        section0 = _SHDR.unpack_from(data, e_shoff)
        if e_shnum == 0:
            e_shnum = section0[5]  # sh_size of entry 0 holds the real count
        if e_shstrndx == SHN_XINDEX:
            e_shstrndx = section0[6]  # sh_link of entry 0
        if e_phnum == PN_XNUM:
            e_phnum = section0[7]  # sh_info of entry 0
        if e_shoff + e_shnum * ELF64_SHDR_SIZE > file_size:
            raise ElfTruncatedError(
                f"{path}: section header table ({e_shnum} entries at 0x{e_shoff:x}) extends past the "
                f"end of the file ({file_size} bytes)"
            )
        if e_shnum and e_shstrndx >= e_shnum:
            raise ElfFormatError(
                f"{path}: e_shstrndx {e_shstrndx} is not a section index (only {e_shnum} sections)"
            )
    else:
        e_shnum = 0
        e_shstrndx = 0
    # Program header table.
    if e_phnum == 0:
        raise ElfSegmentError(f"{path}: no program headers, so no PT_LOAD segment to load")
    if e_phentsize != ELF64_PHDR_SIZE:
        raise ElfFormatError(f"{path}: e_phentsize is {e_phentsize}, expected {ELF64_PHDR_SIZE}")
    if e_phoff + e_phnum * ELF64_PHDR_SIZE > file_size:
        raise ElfTruncatedError(
            f"{path}: program header table ({e_phnum} entries at 0x{e_phoff:x}) extends past the end "
            f"of the file ({file_size} bytes)"
        )
    return _ElfHeader(
        e_type=e_type,
        e_entry=e_entry,
        e_phoff=e_phoff,
        e_shoff=e_shoff,
        e_phnum=e_phnum,
        e_shnum=e_shnum,
        e_shstrndx=e_shstrndx,
    )


def _malformed(path: str, error: Exception) -> ElfFormatError:
    detail = " ".join(str(error).split()) or type(error).__name__
    return ElfFormatError(f"{path}: malformed ELF file ({type(error).__name__}: {detail})")


def _type_number(value: Any, numbers: dict[str, int]) -> int:
    """Undo pyelftools' enum decoding: names back to numbers, unknown values are ints already."""
    if isinstance(value, int):
        return value
    return numbers[value]


def _read_headers(path: str, file: Any, header: _ElfHeader) -> tuple[list[Segment], list[Section]]:
    """Copy program and section headers out of pyelftools (segment sections are filled in later)."""
    segments: list[Segment] = []
    sections: list[Section] = []
    try:
        elf = ELFFile(file)
        for index in range(header.e_phnum):
            fields = elf.get_segment(index).header
            p_type = _type_number(fields["p_type"], _P_TYPE_NUMBERS)
            segments.append(
                Segment(
                    index=index,
                    type=p_type,
                    type_name=SEGMENT_TYPE_NAMES.get(p_type, f"0x{p_type:x}"),
                    flags=int(fields["p_flags"]),
                    offset=int(fields["p_offset"]),
                    vaddr=int(fields["p_vaddr"]),
                    paddr=int(fields["p_paddr"]),
                    filesz=int(fields["p_filesz"]),
                    memsz=int(fields["p_memsz"]),
                    align=int(fields["p_align"]),
                    sections=(),
                )
            )
        for index in range(header.e_shnum):
            section = elf.get_section(index)
            fields = section.header
            sh_type = _type_number(fields["sh_type"], _SH_TYPE_NUMBERS)
            sections.append(
                Section(
                    index=index,
                    name=section.name if header.e_shstrndx else "",
                    type=sh_type,
                    type_name=SECTION_TYPE_NAMES.get(sh_type, f"0x{sh_type:x}"),
                    flags=int(fields["sh_flags"]),
                    addr=int(fields["sh_addr"]),
                    offset=int(fields["sh_offset"]),
                    size=int(fields["sh_size"]),
                    link=int(fields["sh_link"]),
                    info=int(fields["sh_info"]),
                    addralign=int(fields["sh_addralign"]),
                    entsize=int(fields["sh_entsize"]),
                )
            )
    except EnsignError:
        raise
    except Exception as error:
        raise _malformed(path, error) from error
    return segments, sections


def _check_segment_bounds(path: str, segments: list[Segment], file_size: int) -> None:
    for segment in segments:
        if segment.filesz and segment.offset + segment.filesz > file_size:
            raise ElfSegmentError(
                f"{path}: segment {segment.index} ({segment.type_name}) has file bytes "
                f"0x{segment.offset:x}-0x{segment.offset + segment.filesz:x} past the end of the "
                f"file ({file_size} bytes)"
            )


def _read_symbols(path: str, data: memoryview, sections: list[Section]) -> tuple[Symbol, ...]:
    """Read .symtab and .dynsym with plain struct (pyelftools needs ~35 us a symbol)."""
    file_size = len(data)
    seen: set[tuple[str, int, int, str]] = set()
    symbols: list[Symbol] = []
    tables = sorted(
        (s for s in sections if s.type in (SHT_SYMTAB, SHT_DYNSYM)),
        key=lambda s: (s.type != SHT_SYMTAB, s.index),
    )
    for table in tables:
        table_name = ".symtab" if table.type == SHT_SYMTAB else ".dynsym"
        if table.entsize != ELF64_SYM_SIZE:
            raise ElfFormatError(
                f"{path}: symbol table {table.name or table.index} has entry size {table.entsize}, "
                f"expected {ELF64_SYM_SIZE}"
            )
        if table.offset + table.size > file_size:
            raise ElfTruncatedError(
                f"{path}: symbol table {table.name or table.index} extends past the end of the file"
            )
        if not 0 < table.link < len(sections) or sections[table.link].type != SHT_STRTAB:
            raise ElfFormatError(
                f"{path}: symbol table {table.name or table.index} links to section {table.link}, "
                "which is not a string table"
            )
        strtab = sections[table.link]
        if strtab.offset + strtab.size > file_size:
            raise ElfTruncatedError(f"{path}: string table {strtab.name} extends past the end of the file")
        strings = bytes(data[strtab.offset : strtab.offset + strtab.size])
        count = table.size // ELF64_SYM_SIZE
        entries = data[table.offset + ELF64_SYM_SIZE : table.offset + count * ELF64_SYM_SIZE]
        for st_name, st_info, _other, st_shndx, st_value, st_size in _SYM.iter_unpack(entries):
            if st_name == 0 or st_name >= len(strings):
                continue
            end = strings.find(b"\0", st_name)
            raw_name = strings[st_name : end if end >= 0 else len(strings)]
            if not raw_name:
                continue
            name = raw_name.decode("utf-8", "backslashreplace")
            type_name = SYMBOL_TYPE_NAMES.get(st_info & 0xF, f"0x{st_info & 0xF:x}")
            key = (name, st_value, st_size, type_name)
            if key in seen:
                continue
            seen.add(key)
            symbols.append(
                Symbol(
                    name=name,
                    value=st_value,
                    size=st_size,
                    type=type_name,
                    bind=SYMBOL_BIND_NAMES.get(st_info >> 4, f"0x{st_info >> 4:x}"),
                    section_index=st_shndx,
                    table=table_name,
                )
            )
    return tuple(symbols)


def _section_in_segment(section: Section, segment: Segment) -> bool:
    """binutils' ELF_SECTION_IN_SEGMENT_STRICT minus ELF_TBSS_SPECIAL, as readelf's mapping uses it.

    Unsigned 64-bit arithmetic is kept where binutils relies on it (``p_filesz - 1`` for an empty
    segment).
    """
    seg_type = segment.type
    is_tls = bool(section.flags & SHF_TLS)
    is_alloc = bool(section.flags & SHF_ALLOC)
    is_nobits = section.type == SHT_NOBITS
    tbss_special = is_tls and is_nobits and seg_type != PT_TLS
    if tbss_special:
        return False
    if is_tls:
        if seg_type not in (PT_TLS, PT_GNU_RELRO, PT_LOAD):
            return False
    elif seg_type in (PT_TLS, PT_PHDR):
        return False
    if not is_alloc and (
        seg_type in (PT_LOAD, PT_DYNAMIC, PT_GNU_EH_FRAME, PT_GNU_STACK, PT_GNU_RELRO, PT_GNU_SFRAME)
        or PT_GNU_MBIND_LO <= seg_type <= PT_GNU_MBIND_HI
    ):
        return False
    size = section.size
    if not is_nobits:
        if section.offset < segment.offset:
            return False
        relative = section.offset - segment.offset
        if relative > (segment.filesz - 1) & _MASK64:
            return False
        if relative + size > segment.filesz:
            return False
    if is_alloc:
        if section.addr < segment.vaddr:
            return False
        relative = section.addr - segment.vaddr
        if relative > (segment.memsz - 1) & _MASK64:
            return False
        if relative + size > segment.memsz:
            return False
    if seg_type in (PT_DYNAMIC, PT_NOTE) and size == 0 and segment.memsz != 0:
        in_file = is_nobits or (
            section.offset > segment.offset and section.offset - segment.offset < segment.filesz
        )
        in_memory = not is_alloc or (
            section.addr > segment.vaddr and section.addr - segment.vaddr < segment.memsz
        )
        if not (in_file and in_memory):
            return False
    return True


def _check_segments(path: str, segments: tuple[Segment, ...], data: memoryview) -> None:
    """Reject images without PT_LOAD, with BSS shorter than the file part, or conflicting overlaps."""
    loads = [segment for segment in segments if segment.type == PT_LOAD]
    if not loads:
        raise ElfSegmentError(f"{path}: no PT_LOAD segment, nothing would be loaded")
    for segment in loads:
        if segment.filesz > segment.memsz:
            raise ElfSegmentError(
                f"{path}: PT_LOAD segment {segment.index} has p_filesz 0x{segment.filesz:x} larger "
                f"than p_memsz 0x{segment.memsz:x}"
            )
        if segment.vaddr + segment.memsz > 1 << 64:
            raise ElfSegmentError(
                f"{path}: PT_LOAD segment {segment.index} wraps around the 64-bit address space"
            )
    ordered = sorted(loads, key=lambda s: (s.vaddr, s.index))
    for position, first in enumerate(ordered):
        for second in ordered[position + 1 :]:
            if second.vaddr >= first.vaddr + first.memsz:
                break
            _check_overlap(path, first, second, data)


def _check_overlap(path: str, first: Segment, second: Segment, data: memoryview) -> None:
    """Accept two overlapping PT_LOADs only if they put the same bytes at every shared address."""
    low = max(first.vaddr, second.vaddr)
    high = min(first.vaddr + first.memsz, second.vaddr + second.memsz)
    if low >= high:
        return
    first_file_end = first.vaddr + first.filesz
    second_file_end = second.vaddr + second.filesz
    where = f"0x{low:x}-0x{high:x}"
    # Both file-backed: bytes must match.
    both_low, both_high = low, min(high, first_file_end, second_file_end)
    if both_low < both_high:
        with (
            data[
                first.offset + both_low - first.vaddr : first.offset + both_high - first.vaddr
            ] as first_bytes,
            data[
                second.offset + both_low - second.vaddr : second.offset + both_high - second.vaddr
            ] as second_bytes,
        ):
            same = first_bytes == second_bytes
        if not same:
            raise ElfSegmentError(
                f"{path}: PT_LOAD segments {first.index} and {second.index} overlap at {where} "
                "with different contents"
            )
    # One file-backed, the other BSS: they disagree about what the memory holds.
    for file_end, bss_start in ((first_file_end, second_file_end), (second_file_end, first_file_end)):
        if max(low, bss_start) < min(high, file_end):
            raise ElfSegmentError(
                f"{path}: PT_LOAD segments {first.index} and {second.index} overlap at {where}: "
                "one has file bytes where the other has zero-filled BSS"
            )
