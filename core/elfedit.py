"""Storing data in a non-loaded ELF section, and atomic file writes.

ensign keeps what it attaches to an enclave (e.g. the SIGSTRUCT) in a section of its own that is not
part of any segment, so the loaded (measured) bytes do not change. :func:`with_section` writes a copy
of an ELF file that keeps every original byte, appends ``[section data][.shstrtab copy][section
header table]`` and points the ELF header at the new table. Only the three ELF-header fields in
:data:`MEASUREMENT_ZEROED_HEADER_FIELDS` change inside loaded bytes, and measurement treats them as
zero. Re-attaching replaces the section and truncates the tail this module appended before, so
signing twice gives one section and the same file size.

Every write goes through :func:`atomic_write`: a temporary file in the destination's directory,
fsync, ``os.replace``, directory fsync. This module must never modify a file in place, leave a
temporary file behind, print, or import ``textual``/``rich``/``tui``; ``OSError`` becomes
:class:`~core.errors.WriteError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

from core.elf import (
    ELF64_SHDR_SIZE,
    SECTION_TYPE_NAMES,
    SHT_NOBITS,
    SHT_NULL,
    SHT_PROGBITS,
    SHT_STRTAB,
    ElfImage,
    Section,
    load_elf,
)
from core.errors import ElfFormatError, ParamError, WriteError

__all__ = [
    "MEASUREMENT_ZEROED_HEADER_FIELDS",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_from",
    "read_section_bytes",
    "with_section",
]

# (file offset, size in bytes) of e_shoff, e_shnum and e_shstrndx in the Elf64_Ehdr. Adding a section
# changes them, yet they lie inside the first PT_LOAD page (the ELF header is loaded), so measurement
# treats them as zero, exactly as the Intel SDK's sgx_sign patch table zeroes them (SPEC §4.3, §4.6
# step 3). Then attaching or replacing our section never changes MRENCLAVE.
MEASUREMENT_ZEROED_HEADER_FIELDS: Final[tuple[tuple[int, int], ...]] = ((0x28, 8), (0x3C, 2), (0x3E, 2))

_E_SHOFF: Final = struct.Struct("<Q")  # at 0x28
_E_SHENTSIZE_SHNUM_SHSTRNDX: Final = struct.Struct("<HHH")  # at 0x3A
# sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign, sh_entsize.
_SHDR: Final = struct.Struct("<IIQQQQIIQQ")
assert _SHDR.size == ELF64_SHDR_SIZE

_SHN_LORESERVE: Final = 0xFF00
_SECTION_ALIGN: Final = 8  # sh_addralign of the sections and table we append (bytes)
_COPY_CHUNK: Final = 1 << 20  # bytes copied per write when streaming a file (bytes)


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


# --- reading --------------------------------------------------------------------------------------


def read_section_bytes(image: ElfImage, name: str) -> bytes | None:
    """Return the contents of the first section called ``name``.

    Args:
        image: a loaded ELF image.
        name: the section name, e.g. ``".ensign.sigstruct"``.

    Returns:
        The section's bytes (empty for SHT_NOBITS), or None if there is no such section.

    Raises:
        ElfTruncatedError: the section's bytes lie past the end of the file.
    """
    section = image.section_by_name(name)
    if section is None:
        return None
    if section.type in (SHT_NOBITS, SHT_NULL):
        return b""
    return bytes(image.read(section.offset, section.size))


# --- adding a section -----------------------------------------------------------------------------


def with_section(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    name: str,
    data: bytes,
    *,
    sh_type: int = SHT_PROGBITS,
) -> Section:
    """Write ``dst_path`` as a copy of ``src_path`` whose non-loaded section ``name`` holds ``data``.

    The section gets sh_flags 0 and sh_addralign 8. If the source already has a section with that
    name it is replaced in place in the section header table (never a second one). If the source
    ends with the tail this function appended before (our section, our ``.shstrtab`` copy, our
    section header table), that tail is dropped first, so re-signing does not grow the file.
    ``src_path`` and ``dst_path`` may be the same file; the write is atomic either way.

    Args:
        src_path: the ELF file to copy.
        dst_path: where to write the result (replaced atomically).
        name: the section name (printable ASCII, no NUL).
        data: the section contents.
        sh_type: the section type (default SHT_PROGBITS; SHT_NOTE works too).

    Returns:
        The new section's header as it is in the written file.

    Raises:
        ParamError: invalid name or section type.
        ElfFormatError: the source cannot be loaded, or section ``name`` is loaded (SHF_ALLOC) or is
            the section header string table, or the file uses extended section numbering.
        WriteError: the output could not be written; ``dst_path`` is left as it was.
    """
    name_bytes = _check_section_name(name)
    if sh_type in (SHT_NULL, SHT_NOBITS):
        raise ParamError(f"section type {sh_type} cannot hold data; use SHT_PROGBITS or SHT_NOTE")
    payload = bytes(data)
    with load_elf(src_path) as image:
        plan = _plan_section(image, name, name_bytes, payload, sh_type)

        def build(out: BinaryIO) -> None:
            out.write(plan.header)
            with image.data[len(plan.header) : plan.keep] as original_bytes:
                _write_view(out, original_bytes)
            out.write(b"\0" * (plan.data_offset - plan.keep))
            out.write(payload)
            out.write(plan.shstrtab)
            out.write(b"\0" * (plan.table_offset - plan.data_offset - len(payload) - len(plan.shstrtab)))
            out.write(plan.table)

        def verify(temp_path: str) -> None:
            with load_elf(temp_path) as written:
                if read_section_bytes(written, name) != payload or written.segments != image.segments:
                    raise WriteError(f"{os.fspath(dst_path)}: the written file did not read back correctly")

        atomic_write_from(src_path, dst_path, build, verify=verify)
    return plan.section


@dataclass(frozen=True, slots=True)
class _SectionPlan:
    """Where everything goes in the output of :func:`with_section`."""

    header: bytes  # the 64-byte Elf64_Ehdr with e_shoff, e_shnum, e_shstrndx updated
    keep: int  # source bytes [0, keep) are copied; the rest is our previous tail (bytes)
    data_offset: int  # file offset of the section data, 8-aligned (bytes)
    shstrtab: bytes  # contents of the new section header string table (.shstrtab)
    table_offset: int  # file offset of the new section header table, the new e_shoff (bytes)
    table: bytes  # the new section header table (Elf64_Shdr entries)
    section: Section  # our section's header as written


def _check_section_name(name: str) -> bytes:
    if not name or "\0" in name or not name.isascii() or not name.isprintable():
        raise ParamError(f"invalid section name {name!r}: use printable ASCII, e.g. '.ensign.sig'")
    return name.encode("ascii")


def _plan_section(image: ElfImage, name: str, name_bytes: bytes, data: bytes, sh_type: int) -> _SectionPlan:
    path = image.path
    header = bytearray(image.read(0, 64))
    e_shentsize, e_shnum_raw, e_shstrndx_raw = _E_SHENTSIZE_SHNUM_SHSTRNDX.unpack_from(header, 0x3A)
    sections = image.sections
    if len(sections) >= _SHN_LORESERVE or e_shstrndx_raw >= _SHN_LORESERVE:
        raise ElfFormatError(f"{path}: extended section numbering (65280+ sections) is not supported")
    if e_shentsize != ELF64_SHDR_SIZE:
        # Setting it would change a loaded header byte that measurement does not zero.
        raise ElfFormatError(
            f"{path}: e_shentsize is {e_shentsize}, not {ELF64_SHDR_SIZE}; cannot add a section "
            "without changing loaded bytes"
        )
    shstrndx = e_shstrndx_raw if sections else 0

    existing = image.section_by_name(name)
    if existing is not None:
        if existing.is_alloc:
            raise ElfFormatError(f"{path}: section {name} is loaded (SHF_ALLOC); refusing to replace it")
        if existing.index == shstrndx:
            raise ParamError(f"section {name} is the section header string table; choose another name")

    old_table = (
        bytearray(image.read(image.shoff, len(sections) * ELF64_SHDR_SIZE)) if sections else bytearray()
    )
    if not sections:
        old_table = bytearray(ELF64_SHDR_SIZE)  # the SHT_NULL entry every table starts with
    strtab_section = sections[shstrndx] if shstrndx else None
    if strtab_section is not None and strtab_section.type == SHT_STRTAB:
        strings = bytes(image.read(strtab_section.offset, strtab_section.size))
    else:
        strtab_section = None
        strings = b""
    keep = _reusable_prefix(image, existing, strtab_section)

    # The new string table: the old one plus whatever names are missing.
    new_strings = bytearray(strings or b"\0")
    if not new_strings.endswith(b"\0"):
        new_strings += b"\0"

    def string_offset(text: bytes) -> int:
        found = new_strings.find(text + b"\0")
        if found >= 0:
            return found
        offset = len(new_strings)
        new_strings.extend(text + b"\0")
        return offset

    section_name_offset = string_offset(name_bytes)
    table = old_table
    if existing is not None:
        index = existing.index
    else:
        index = len(table) // ELF64_SHDR_SIZE
        table += bytes(ELF64_SHDR_SIZE)
    if strtab_section is not None:
        strtab_index = strtab_section.index
    else:
        strtab_index = len(table) // ELF64_SHDR_SIZE
        table += bytes(ELF64_SHDR_SIZE)
        _SHDR.pack_into(
            table,
            strtab_index * ELF64_SHDR_SIZE,
            string_offset(b".shstrtab"),
            SHT_STRTAB,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0,
        )
    shstrtab = bytes(new_strings)

    data_offset = _align_up(keep, _SECTION_ALIGN)
    strtab_offset = data_offset + len(data)
    table_offset = _align_up(strtab_offset + len(shstrtab), _SECTION_ALIGN)
    _SHDR.pack_into(
        table,
        index * ELF64_SHDR_SIZE,
        section_name_offset,
        sh_type,
        0,
        0,
        data_offset,
        len(data),
        0,
        0,
        _SECTION_ALIGN,
        0,
    )
    (
        strtab_name,
        _type,
        _flags,
        _addr,
        _offset,
        _size,
        strtab_link,
        strtab_info,
        strtab_align,
        strtab_entsize,
    ) = _SHDR.unpack_from(table, strtab_index * ELF64_SHDR_SIZE)
    _SHDR.pack_into(
        table,
        strtab_index * ELF64_SHDR_SIZE,
        strtab_name,
        SHT_STRTAB,
        0,
        0,
        strtab_offset,
        len(shstrtab),
        strtab_link,
        strtab_info,
        strtab_align or 1,
        strtab_entsize,
    )
    section_count = len(table) // ELF64_SHDR_SIZE
    _E_SHOFF.pack_into(header, 0x28, table_offset)
    _E_SHENTSIZE_SHNUM_SHSTRNDX.pack_into(header, 0x3A, ELF64_SHDR_SIZE, section_count, strtab_index)
    if e_shnum_raw == 0 and sections:
        # The count lived in section 0's sh_size (extended numbering); it fits e_shnum now.
        struct.pack_into("<Q", table, 0x20, 0)
    section = Section(
        index=index,
        name=name,
        type=sh_type,
        type_name=SECTION_TYPE_NAMES.get(sh_type, f"0x{sh_type:x}"),
        flags=0,
        addr=0,
        offset=data_offset,
        size=len(data),
        link=0,
        info=0,
        addralign=_SECTION_ALIGN,
        entsize=0,
    )
    return _SectionPlan(bytes(header), keep, data_offset, shstrtab, table_offset, bytes(table), section)


def _reusable_prefix(image: ElfImage, existing: Section | None, strtab: Section | None) -> int:
    """How many source bytes to keep: all of them, unless the file ends with our own tail.

    Our tail is ``[existing section][.shstrtab][padding][section header table]`` up to the end of the
    file, with nothing else referenced at or after the existing section's offset. Anything else
    (a section or segment after it, trailing bytes another tool appended) keeps the whole file.
    """
    if existing is None or strtab is None or existing.type in (SHT_NOBITS, SHT_NULL):
        return image.file_size
    cut = existing.offset
    table_end = image.shoff + len(image.sections) * ELF64_SHDR_SIZE
    if not (
        strtab.offset == cut + existing.size
        and image.shoff == _align_up(strtab.offset + strtab.size, _SECTION_ALIGN)
        and table_end == image.file_size
    ):
        return image.file_size
    referenced_ends = [64, image.phoff + len(image.segments) * 56]
    referenced_ends += [segment.offset + segment.filesz for segment in image.segments if segment.filesz]
    referenced_ends += [
        section.offset + section.size
        for section in image.sections
        if section.index not in (existing.index, strtab.index)
        and section.type not in (SHT_NOBITS, SHT_NULL)
        and section.size
    ]
    if max(referenced_ends) > cut:
        return image.file_size
    return cut


def _write_view(out: BinaryIO, view: memoryview) -> None:
    """Write a (possibly huge, mmap-backed) view in chunks so the file is never copied whole."""
    for start in range(0, len(view), _COPY_CHUNK):
        out.write(view[start : start + _COPY_CHUNK])


# --- atomic writes --------------------------------------------------------------------------------


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], None],
    *,
    mode: int | None = None,
    verify: Callable[[str], None] | None = None,
) -> None:
    """Create or replace ``path`` atomically with what ``write`` writes.

    ``write`` gets a binary file open on a temporary file in the same directory. Then the data is
    flushed and fsynced, the mode set, ``verify`` (if given) called with the temporary path, the
    temporary file renamed over ``path`` and the directory fsynced. A symlink at ``path`` is
    followed (its target is replaced). On any exception, including KeyboardInterrupt, the temporary
    file is removed and ``path`` is untouched.

    Args:
        path: the file to create or replace.
        write: writes the complete new contents to the file it is given.
        mode: permission bits for the result; default: keep an existing file's mode, else
            0o666 minus the umask (what ``open`` would give).
        verify: optional check of the finished temporary file; raise to abort the write.

    Raises:
        WriteError: an OSError while writing, syncing or renaming (one line, naming the file).
        Any exception raised by ``write`` or ``verify`` (after cleaning up).
    """
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target) or "."
    shown = os.fspath(path)
    if mode is None:
        mode = _existing_mode(target)
    if mode is None:
        mode = 0o666 & ~_current_umask()
    temp_path: str | None = None
    try:
        fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
            os.fchmod(out.fileno(), stat.S_IMODE(mode))
        if verify is not None:
            verify(temp_path)
        os.replace(temp_path, target)
        temp_path = None
    except OSError as error:
        raise WriteError(
            f"{shown}: cannot write ({_describe_os_error(error)}); the original is unchanged"
        ) from error
    finally:
        if temp_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
    _fsync_directory(directory, shown)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Create or replace ``path`` atomically with ``data``.

    Args:
        path: the file to write.
        data: its new contents.
        mode: permission bits; default: keep an existing file's, else 0o666 minus the umask.

    Raises:
        WriteError: the file could not be written; an existing file is left unchanged.
    """

    def write(out: BinaryIO) -> None:
        out.write(data)

    atomic_write(path, write, mode=mode)


def atomic_write_from(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    build: Callable[[BinaryIO], None] | None = None,
    *,
    verify: Callable[[str], None] | None = None,
) -> None:
    """Atomically write ``dst_path`` as derived from ``src_path`` by ``build``.

    The result keeps ``dst_path``'s mode if it exists, else takes ``src_path``'s (so an executable
    stays executable).

    Args:
        src_path: the file the new contents are derived from (only its mode is read here).
        dst_path: the file to create or replace.
        build: writes the complete new contents; stream large data in chunks. None copies
            ``src_path`` unchanged (streamed in 1 MiB chunks).
        verify: optional check of the finished temporary file before it replaces ``dst_path``.

    Raises:
        WriteError: the source cannot be stat'ed or the output cannot be written.
    """
    mode = _existing_mode(os.path.realpath(os.fspath(dst_path)))
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(src_path).st_mode)
        except OSError as error:
            raise WriteError(f"{os.fspath(src_path)}: cannot stat ({_describe_os_error(error)})") from error
    if build is None:

        def build(out: BinaryIO) -> None:
            _copy_file(src_path, out)

    atomic_write(dst_path, build, mode=mode, verify=verify)


def _copy_file(src_path: str | os.PathLike[str], out: BinaryIO) -> None:
    """Stream ``src_path`` into ``out`` in 1 MiB chunks (an OSError becomes WriteError upstream)."""
    with open(src_path, "rb") as source:
        while chunk := source.read(_COPY_CHUNK):
            out.write(chunk)


def _existing_mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _current_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _fsync_directory(directory: str, shown: str) -> None:
    """Make the rename durable; filesystems that cannot fsync a directory are fine."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as error:
        raise WriteError(
            f"{shown}: written, but cannot open its directory to sync it ({_describe_os_error(error)})"
        ) from error
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise WriteError(
                f"{shown}: written, but syncing its directory failed ({_describe_os_error(error)})"
            ) from error
    finally:
        os.close(fd)


def _describe_os_error(error: OSError) -> str:
    text = error.strerror or str(error) or type(error).__name__
    return " ".join(text.split())
