"""Binary structures as one field table: ``(name, offset, struct format)`` rows, checked at import.

Every on-disk structure ensign reads or writes (SDK metadata, tokens, Open Enclave info,
``.sgxs`` records, the ``.ensign`` section, the signed-parameters page) is declared with a
:class:`FieldTable`, so a wrong offset fails when the module is imported instead of
misreading files (CONVENTIONS 5). Never prints.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import ContainerError, EnsignError


@dataclass(frozen=True, slots=True)
class FieldTable:
    """A packed little-endian binary structure described as one table of ``(name, offset, format)``.

    Construction checks that the rows are contiguous, start at 0, use explicit little-endian
    integer formats (``<I``, ``<Q``, ...) or raw byte strings (``Ns``), and add up to ``size``,
    so a wrong row fails at import time rather than misreading files.
    """

    name: str  # the structure's name, for error messages (e.g. "metadata_t")
    size: int  # total size in bytes
    fields: tuple[tuple[str, int, str], ...]  # (field name, offset in bytes, struct format)
    error: type[EnsignError] = ContainerError  # raised for short data or unpackable values
    _struct: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        position = 0
        formats = []
        for name, offset, fmt in self.fields:
            if not (fmt.startswith("<") or fmt.endswith("s")):
                raise RuntimeError(f"{self.name}.{name}: format {fmt!r} is not explicitly little-endian")
            if offset != position:
                raise RuntimeError(f"{self.name}.{name} at offset {offset}; expected {position}")
            bare = fmt.lstrip("<")
            position += struct.calcsize("<" + bare)
            formats.append(bare)
        if position != self.size:
            raise RuntimeError(f"{self.name} field table covers {position} bytes; expected {self.size}")
        object.__setattr__(self, "_struct", struct.Struct("<" + "".join(formats)))

    @property
    def names(self) -> tuple[str, ...]:
        """Field names in layout order."""
        return tuple(name for name, _offset, _fmt in self.fields)

    def unpack(self, data: bytes | bytearray | memoryview, offset: int = 0) -> dict[str, Any]:
        """Read the structure at ``offset`` of ``data``.

        Raises:
            EnsignError (``error``): fewer than ``size`` bytes are available at ``offset``.
        """
        if offset < 0 or offset + self.size > len(data):
            raise self.error(f"{self.name}: {self.size} bytes needed at offset {offset}, only {len(data)} available")
        return dict(zip(self.names, self._struct.unpack_from(data, offset), strict=True))

    def pack(self, values: Mapping[str, Any]) -> bytes:
        """Serialise ``values`` (every field must be present).

        Raises:
            EnsignError (``error``): a field is missing or does not fit.
        """
        try:
            return self._struct.pack(*(values[name] for name in self.names))
        except (KeyError, struct.error) as error:
            raise self.error(f"{self.name}: cannot pack ({error})") from error
