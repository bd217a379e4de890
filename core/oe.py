"""Open Enclave enclaves: the ``.oeinfo`` section with the enclave properties and the SIGSTRUCT.

``oesign`` writes an ``oe_sgx_enclave_properties_t`` into the ELF section ``.oeinfo``: a header
(size, enclave type, heap/stack page counts, TCS count), the SGX config (ISVPRODID, ISVSVN,
flags, family and extended product ids, attributes, XFRM, start address), image info, then the
1808-byte SIGSTRUCT. Current OE puts it at offset 144 (``properties.size`` 1960); older releases
at 112 (size 1928) or 96 (size 1912). ensign reads and checks the SIGSTRUCT and shows the
properties; it does not derive OE's layout, so MRENCLAVE is not recomputed. Each layout is one
field table checked at import time.

Never prints, never imports a UI; problems raise :class:`~core.errors.ContainerError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from core.elf import ElfImage
from core.errors import ContainerError
from core.fieldtable import FieldTable
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct

__all__ = ["OE_SECTION", "OeEnclave", "parse_oeinfo", "read_oe_enclave"]

OE_SECTION: Final = ".oeinfo"

_HEADER = FieldTable(
    "oe_enclave_properties_header_t",
    32,
    (
        ("size", 0, "<I"),  # sizeof(oe_sgx_enclave_properties_t)
        ("enclave_type", 4, "<I"),  # 2 = SGX
        ("num_heap_pages", 8, "<Q"),
        ("num_stack_pages", 16, "<Q"),
        ("num_tcs", 24, "<Q"),
    ),
)

# Current layout (OE >= 0.17): config 64 bytes, image info 48 bytes, SIGSTRUCT at 144.
_CONFIG_144 = FieldTable(
    "oe_sgx_enclave_config_t",
    64,
    (
        ("product_id", 0, "<H"),
        ("security_version", 2, "<H"),
        ("flags", 4, "<I"),  # bit 0 capture_pf_gp_exceptions, bit 1 create_zero_base_enclave
        ("family_id", 8, "16s"),
        ("extended_product_id", 24, "16s"),
        ("attributes", 40, "<Q"),  # OE_SGX_FLAGS_DEBUG | MODE64BIT | KSS
        ("xfrm", 48, "<Q"),
        ("start_address", 56, "<Q"),
    ),
)
_IMAGE_INFO_48 = FieldTable(
    "oe_sgx_enclave_image_info_t",
    48,
    (
        ("oeinfo_rva", 0, "<Q"),
        ("oeinfo_size", 8, "<Q"),
        ("reloc_rva", 16, "<Q"),
        ("reloc_size", 24, "<Q"),
        ("heap_rva", 32, "<Q"),
        ("enclave_size", 40, "<Q"),
    ),
)
# Older layouts: config 16 bytes; image info 48 (SIGSTRUCT at 96) or 64 bytes (at 112).
_CONFIG_16 = FieldTable(
    "oe_sgx_enclave_config_t (old)",
    16,
    (("product_id", 0, "<H"), ("security_version", 2, "<H"), ("padding", 4, "<I"), ("attributes", 8, "<Q")),
)
_IMAGE_INFO_64 = FieldTable(
    "oe_sgx_enclave_image_info_t (with ecalls)",
    64,
    (
        ("oeinfo_rva", 0, "<Q"),
        ("oeinfo_size", 8, "<Q"),
        ("reloc_rva", 16, "<Q"),
        ("reloc_size", 24, "<Q"),
        ("ecall_rva", 32, "<Q"),
        ("ecall_size", 40, "<Q"),
        ("heap_rva", 48, "<Q"),
        ("enclave_size", 56, "<Q"),
    ),
)

# properties.size -> (config table, image-info table, SIGSTRUCT offset)
_LAYOUTS: Final[dict[int, tuple[FieldTable, FieldTable, int]]] = {
    144 + SIGSTRUCT_SIZE + 8: (_CONFIG_144, _IMAGE_INFO_48, 144),
    112 + SIGSTRUCT_SIZE + 8: (_CONFIG_16, _IMAGE_INFO_64, 112),
    96 + SIGSTRUCT_SIZE + 8: (_CONFIG_16, _IMAGE_INFO_48, 96),
}
for _config, _info, _offset in _LAYOUTS.values():
    assert _HEADER.size + _config.size + _info.size == _offset


@dataclass(frozen=True, slots=True)
class OeEnclave:
    """The ``.oeinfo`` properties of an Open Enclave enclave."""

    oeinfo_offset: int  # file offset of the .oeinfo section (bytes)
    oeinfo_size: int  # section size (bytes)
    properties_size: int  # properties.header.size (1960 in current OE)
    sigstruct_offset: int  # offset of the SIGSTRUCT inside .oeinfo (144 in current OE)
    header: dict[str, int]  # enclave_type, num_heap_pages, num_stack_pages, num_tcs
    config: dict[str, Any]  # product_id, security_version, flags, attributes, (family_id, xfrm, ...)
    image_info: dict[str, int]  # oeinfo/reloc/heap rvas, enclave_size (zero until the enclave is loaded)
    sigstruct: Sigstruct | None  # None when the SIGSTRUCT area is all zero (unsigned)

    @property
    def signed(self) -> bool:
        """True when the SIGSTRUCT area is not all zero."""
        return self.sigstruct is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready properties (bytes as hex)."""
        config = {key: (value.hex() if isinstance(value, bytes) else value) for key, value in self.config.items()}
        return {
            "oeinfo_offset": self.oeinfo_offset,
            "oeinfo_size": self.oeinfo_size,
            "properties_size": self.properties_size,
            "sigstruct_offset_in_oeinfo": self.sigstruct_offset,
            "header": dict(self.header),
            "config": config,
            "image_info": dict(self.image_info),
            "signed": self.signed,
        }


def read_oe_enclave(image: ElfImage) -> OeEnclave | None:
    """Decode the ``.oeinfo`` section of ``image``.

    Returns:
        The properties, or None when the ELF has no ``.oeinfo`` section.

    Raises:
        ContainerError: the section is too small or has an unknown properties layout.
        ElfFormatError: the section lies past the end of the file.
    """
    section = image.section_by_name(OE_SECTION)
    if section is None:
        return None
    return parse_oeinfo(bytes(image.read(section.offset, section.size)), section_offset=section.offset,
                        origin=image.path)


def parse_oeinfo(data: bytes, *, section_offset: int = 0, origin: str = OE_SECTION) -> OeEnclave:
    """Decode the bytes of an ``.oeinfo`` section.

    Args:
        data: the section's bytes.
        section_offset: its file offset (reported back in the model).
        origin: the file name for messages.

    Raises:
        ContainerError: too small, or an unknown properties layout.
    """
    if len(data) < _HEADER.size:
        raise ContainerError(f"{origin}: {OE_SECTION} is {len(data)} bytes, too small for OE properties")
    header = _HEADER.unpack(data)
    layout = _LAYOUTS.get(header["size"])
    if layout is None:
        raise ContainerError(
            f"{origin}: {OE_SECTION} properties size {header['size']} is not a known Open Enclave layout "
            f"(known: {', '.join(str(size) for size in sorted(_LAYOUTS))})"
        )
    config_table, info_table, sigstruct_offset = layout
    if len(data) < sigstruct_offset + SIGSTRUCT_SIZE:
        raise ContainerError(f"{origin}: {OE_SECTION} ends before its SIGSTRUCT ({len(data)} bytes)")
    config = config_table.unpack(data, _HEADER.size)
    config.pop("padding", None)
    info = info_table.unpack(data, _HEADER.size + config_table.size)
    raw = data[sigstruct_offset : sigstruct_offset + SIGSTRUCT_SIZE]
    sigstruct = Sigstruct.from_bytes(raw) if any(raw) else None
    return OeEnclave(
        oeinfo_offset=section_offset,
        oeinfo_size=len(data),
        properties_size=header["size"],
        sigstruct_offset=sigstruct_offset,
        header={key: value for key, value in header.items() if key != "size"},
        config=config,
        image_info=info,
        sigstruct=sigstruct,
    )
