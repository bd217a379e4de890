"""Writing ``.note.sgxmeta`` as Intel's ``sgx_sign`` writes it: signing an SDK enclave from its config.

``sgx_sign sign -enclave enclave.so -config Enclave.config.xml -key key.pem`` changes exactly one
thing in ``enclave.so``: the desc of the ``.note.sgxmeta`` note (FIXTURES.md, sdk-whatif). It
fills it with one or more ``metadata_t`` blocks (SPEC §4.2) whose order and versions depend on
the release of the signing tool and on whether the configuration needs SGX2 metadata:

========  ================================================================================
family    blocks written (first = the one the SIGSTRUCT's ENCLAVEHASH is measured from)
========  ================================================================================
1.8       1.3
2.0       2.1, then the 1.4 compatibility block (not validated: no 2.0 fixture)
2.2       2.3, the same block as 2.1, the 1.4 compatibility block
2.8       2.4, 2.1, 1.4 (not validated: no 2.8 fixture)
2.13      2.4, 2.1, 1.4
2.25      SGX1 only: the 1.5 compatibility block alone; SGX2 allowed: 3.x then 1.5;
          SGX2 only: 3.x alone (3.2 from SDK 2.25, 3.3 from 2.26)
========  ================================================================================

Every block carries the same header values, TCS template, ``g_global_data`` template, patch
table and SIGSTRUCT; only the version and the layout table (primary or compatibility, SPEC
§5.6) differ. MRENCLAVE is always measured from the primary block, even when it is not
written (2.25 SGX1-only). What the configuration puts into measured memory (the layout, the
TCS template and the ``g_global_data`` template) comes from a :data:`ContentSource`, by default
the what-if predictor (``core.sdk_whatif.predict``), so what-if and signing cannot disagree.
Before anything is written, every block is measured with ensign's SDK loader and must give the
primary's MRENCLAVE, so a block the SDK loader would reject is never written.

The SIGSTRUCT is filled as ``sgx_sign`` fills it (SPEC §2.7 with the per-release details seen
in the fixtures: DEBUG not enforced unless ``DisableDebug=1``, XFRM mask per release, MISCSELECT
taken as written up to 2.13 and masked from 2.25), signed by any :class:`~core.signing.Signer`
(a key, a PKCS#11 token, or a signature made elsewhere), and written atomically: the file is
copied with only the note's desc replaced.

``sgx_sign``'s own refusals are reproduced: configurations it rejects (through the what-if
predictor, which also refuses releases it does not model), an enclave already signed (unless
``resign``), metadata larger than the note, text relocations (unless ``ignore_rel_error``), an
``.init`` section (unless ``ignore_init_sec_error``), and keys that are not RSA-3072 with
exponent 3. Features whose metadata bytes are not known exactly (ELRANGE, the FIPS EXTEND table)
are refused rather than guessed. This module never prints and never imports a UI.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import re
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from core import elfedit, sdk_whatif
from core.elf import ElfImage
from core.errors import SdkError
from core.measure import Measurer, ProgressCallback
from core.sdk import SdkEnclave
from core.sdk_config import DerivedLayout, SdkConfig
from core.sdk_loader import DT_NULL, DT_TEXTREL, PT_DYNAMIC, build_sdk_plan
from core.sdk_metadata import (
    NOTE_SECTION,
    TCS_TEMPLATE_SIZE,
    MetadataBlock,
    build_block,
    build_note,
    parse_sgxmeta,
)
from core.signing import Signer, sign_sigstruct_with
from core.sigstruct import HEADER, SIGSTRUCT_SIZE, Sigstruct, encode_bcd_date
from core.twostep import SDK_VARIANT, AttachPlan, ExportedData, SigningRequest, match_signatures

__all__ = [
    "ContentSource",
    "MeasuredContent",
    "SdkSignResult",
    "SdkSigningPlan",
    "SgxSignOptions",
    "attach_signature",
    "config_signing_request",
    "metadata_versions",
    "primary_metadata_version",
    "plan_sdk_signing",
    "sgx_sign_sigstruct",
    "sgxmeta_section",
    "predicted_content",
    "sign_sdk_enclave",
    "text_relocations",
    "write_sdk_enclave",
]

# --------------------------------------------------------------------------------------------
# Constants (SPEC §2.6/§2.7, SDK-WHATIF.md, observed in sdk-whatif.json)
# --------------------------------------------------------------------------------------------

FLAG_DEBUG: Final = 0x2
FLAG_MODE64BIT: Final = 0x4
FLAG_PROVISIONKEY: Final = 0x10
FLAG_EINITTOKEN_KEY: Final = 0x20
FLAG_KSS: Final = 0x80
FLAG_AEXNOTIFY: Final = 0x400
NON_CHECK_BITS: Final = 0x00FF000000000000  # SGX_FLAGS_NON_CHECK_BITS, left out of the mask from SDK 2.18
XFRM_LEGACY: Final = 0x3
XFRM_PKRU: Final = 0x200
XFRM_AMX: Final = 0x60000
_U64: Final = (1 << 64) - 1
TYPE_RELEASE: Final = 1 << 31  # SIGSTRUCT HEADER bytes 12..15 ("type") with ReleaseType=1
VENDOR_INTEL: Final = 0x8086

# ATTRIBUTEMASK.XFRM = LEGACY | RESERVED, where RESERVED shrank over the releases: up to 2.5 only
# AVX is left to the loader (…fffb); from 2.8 (checked: 2.13, 2.25, 2.26) AVX-512 too (…ff1b).
_XFRM_MASK: Final[dict[str, int]] = {
    "1.8": 0xFFFFFFFFFFFFFFFB,
    "2.0": 0xFFFFFFFFFFFFFFFB,
    "2.2": 0xFFFFFFFFFFFFFFFB,
    "2.8": 0xFFFFFFFFFFFFFF1B,
    "2.13": 0xFFFFFFFFFFFFFF1B,
    "2.25": 0xFFFFFFFFFFFFFF1B,
}

# max_save_buffer_size: the constant MAX_SAVE_BUF_SIZE up to 2.13; from 2.18 the XSAVE size of the
# largest XFRM the loader may choose (get_xsave_size's table: last entry whose bits are all set).
LEGACY_SAVE_BUFFER_SIZE: Final = 2632
_XSAVE_SIZES: Final = ((0x3, 576), (0x6, 832), (0x18, 1088), (0xE6, 2688), (0x200, 2752), (0x60000, 11008))

# (primary version, copies of the primary under other versions, compatibility block version)
_VERSIONS: Final[dict[str, tuple[tuple[int, int], tuple[tuple[int, int], ...], tuple[int, int] | None]]] = {
    "1.8": ((1, 3), (), None),
    "2.0": ((2, 1), (), (1, 4)),
    "2.2": ((2, 3), ((2, 1),), (1, 4)),
    "2.8": ((2, 4), ((2, 1),), (1, 4)),
    "2.13": ((2, 4), ((2, 1),), (1, 4)),
    "2.25": ((3, 3), (), (1, 5)),  # 3.2 before SDK 2.26 (see metadata_versions)
}

# METADATA_SIZE of each family: the desc size sgx_sign expects (the note in enclave.so has it).
_DESC_SIZES: Final[dict[str, int]] = {"1.8": 0x1000, "2.0": 0x3000, "2.2": 0x5000, "2.8": 0x5000,
                                      "2.13": 0x5000, "2.25": 0x6000}

DT_FLAGS: Final = 30  # DT_NULL, DT_TEXTREL and PT_DYNAMIC come from core.sdk_loader
DF_TEXTREL: Final = 0x4



@dataclass(frozen=True, slots=True)
class MeasuredContent:
    """What a configuration puts into measured memory, as ``sgx_sign`` of one release derives it."""

    release: str  # the SDK release whose rules were applied ("2.26.100.0" or "2.26")
    family: str  # its rule family (core.sdk_config.RELEASE_FAMILIES)
    verified: bool  # True when that release was checked against sgx_sign
    config: SdkConfig  # the configuration as applied (release-specific defaults added)
    layout: DerivedLayout  # primary and compatibility layouts, SIZE, SSA frame size, SGX2 or not
    tcs_template: bytes = field(repr=False)  # the 72-byte TCS template
    global_data: bytes = field(repr=False)  # the g_global_data template (patch entry 0's content)
    global_data_offset: int = 0  # file offset patch entry 0 writes to (bytes)
    notes: tuple[str, ...] = ()  # assumptions and unverified parts


ContentSource = Callable[[SdkEnclave, SdkConfig, str | None], MeasuredContent]
"""``source(enclave, config, release) -> MeasuredContent``: by default :func:`predicted_content`
(the what-if predictor); tests pass what ``sgx_sign`` itself wrote."""


def predicted_content(enclave: SdkEnclave, config: SdkConfig, release: str | None) -> MeasuredContent:
    """The default :data:`ContentSource`: ``core.sdk_whatif.predict`` (layout, TCS and g_global_data templates).

    The g_global_data template is built from zero, as ``sgx_sign`` does, so signing a signed
    enclave again gives the same bytes as signing its ``enclave.so``.

    Raises:
        SdkError: ``ConfigRefused`` / ``UnsupportedRelease`` from the predictor (the message says why).
    """
    whatif = sdk_whatif.predict(enclave, config, release=release, template="zero", measure=False)
    return MeasuredContent(
        release=whatif.profile.release, family=whatif.profile.family, verified=whatif.profile.verified,
        config=whatif.config, layout=whatif.layout, tcs_template=whatif.tcs_template,
        global_data=whatif.global_data, global_data_offset=whatif.global_data_symbol.file_offset,
        notes=whatif.notes,
    )


@dataclass(frozen=True, slots=True)
class SgxSignOptions:
    """``sgx_sign``'s opt-outs, and ensign's own permission to sign a signed file again."""

    resign: bool = False  # allow an enclave whose note already holds metadata (sgx_sign would sign over it)
    ignore_rel_error: bool = False  # -ignore-rel-error: sign an enclave with text relocations
    ignore_init_sec_error: bool = False  # -ignore-init-sec-error: sign an enclave with an .init section


# --------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------


def primary_metadata_version(family: str, release: str) -> tuple[int, int]:
    """Version of the block MRENCLAVE is measured from: 1.3, 2.1, 2.3, 2.4, or 3.2/3.3 (SGX2 metadata)."""
    if family == "2.25":
        return (3, 3) if _release_number(release) >= (2, 26) else (3, 2)
    return _VERSIONS[family][0]


def metadata_versions(family: str, release: str, layout: DerivedLayout) -> tuple[tuple[int, int], ...]:
    """The versions of the blocks ``sgx_sign`` writes, in note order.

    Args:
        family: release family (``core.sdk_config.RELEASE_FAMILIES``).
        release: the release string (``'2.25.100.3'``), to tell 3.2 from 3.3.
        layout: the derived layout (SGX2 needed? compatibility table written?).

    Returns:
        ``((major, minor), ...)``; for 2.25 SGX1-only configurations only ``((1, 5),)``: the
        primary block is then measured but not written.
    """
    primary = primary_metadata_version(family, release)
    _primary, copies, compat = _VERSIONS[family]
    if family == "2.25":
        if layout.compat is None:
            return (primary,)
        return (primary, (1, 5)) if layout.sgx2 else ((1, 5),)
    return (primary, *copies, *((compat,) if compat is not None and layout.compat is not None else ()))


def _release_number(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release or "")
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _settings_value(settings: Mapping[str, int], name: str) -> int:
    return int(settings.get(name, 0))


def sgx_sign_sigstruct(
    settings: Mapping[str, int],
    family: str,
    *,
    date: _dt.date | int,
    enclavehash: bytes = bytes(32),
) -> Sigstruct:
    """The unsigned SIGSTRUCT ``sgx_sign`` of ``family`` fills for a configuration (SPEC §2.7).

    Args:
        settings: effective config values (``DerivedLayout.settings``; DisableDebug, ProdID, ...).
        family: release family.
        date: SIGSTRUCT DATE (a calendar date written as BCD, or a raw word).
        enclavehash: MRENCLAVE.

    Returns:
        The SIGSTRUCT before signing (MODULUS, SIGNATURE, Q1, Q2 zero).
    """
    flags = FLAG_MODE64BIT
    if _settings_value(settings, "ProvisionKey"):
        flags |= FLAG_PROVISIONKEY
    if _settings_value(settings, "LaunchKey"):
        flags |= FLAG_EINITTOKEN_KEY
    if _settings_value(settings, "EnableKSS"):
        flags |= FLAG_KSS
    if family == "2.25" and _settings_value(settings, "EnableAEXNotify"):
        flags |= FLAG_AEXNOTIFY
    flags_mask = _U64 & ~FLAG_DEBUG
    if family == "2.25":
        flags_mask &= ~NON_CHECK_BITS
    if _settings_value(settings, "DisableDebug"):
        flags_mask |= FLAG_DEBUG
    flags_mask |= flags
    xfrm, xfrm_mask = XFRM_LEGACY, _XFRM_MASK[family]
    if family == "2.25":
        for name, bits in (("PKRU", XFRM_PKRU), ("AMX", XFRM_AMX)):
            policy = _settings_value(settings, name)
            if policy == 1:  # must be enabled
                xfrm |= bits
                xfrm_mask |= bits
            elif policy == 2:  # the loader decides
                xfrm_mask &= ~bits
            else:  # must be disabled
                xfrm_mask |= bits
    miscselect = _settings_value(settings, "MiscSelect")
    miscmask = settings.get("MiscMask", 0xFFFFFFFF)
    if family == "2.25":
        miscselect &= miscmask  # older tools write MiscSelect as given (observed on 1.8, 2.2, 2.13)
    header = HEADER[:12] + struct.pack("<I", TYPE_RELEASE if _settings_value(settings, "ReleaseType") else 0)
    return Sigstruct(
        header=header,
        vendor=VENDOR_INTEL if _settings_value(settings, "IntelSigned") else 0,
        date=encode_bcd_date(date) if isinstance(date, _dt.date) else date,
        swdefined=_settings_value(settings, "HW"),
        miscselect=miscselect,
        miscmask=miscmask,
        isvfamilyid=struct.pack("<QQ", _settings_value(settings, "ISVFAMILYID_L"),
                                _settings_value(settings, "ISVFAMILYID_H")),
        attributes_flags=flags,
        attributes_xfrm=xfrm,
        attributemask_flags=flags_mask,
        attributemask_xfrm=xfrm_mask,
        enclavehash=enclavehash,
        isvextprodid=struct.pack("<QQ", _settings_value(settings, "ISVEXTPRODID_L"),
                                 _settings_value(settings, "ISVEXTPRODID_H")),
        isvprodid=_settings_value(settings, "ProdID"),
        isvsvn=_settings_value(settings, "ISVSVN"),
    )


def _metadata_attributes(sigstruct: Sigstruct) -> tuple[int, int]:
    """metadata.attributes: the SIGSTRUCT's FLAGS, and every XFRM bit the mask leaves to the loader."""
    mask = sigstruct.attributemask_xfrm
    return sigstruct.attributes_flags, (~mask & _U64) | (sigstruct.attributes_xfrm & mask)


def _save_buffer_size(family: str, xfrm: int) -> int:
    if family != "2.25":
        return LEGACY_SAVE_BUFFER_SIZE
    size = 0
    for bits, bytes_needed in _XSAVE_SIZES:
        if xfrm & bits == bits:
            size = bytes_needed
    return size


def _desired_misc_select(family: str, settings: Mapping[str, int]) -> int:
    """metadata.desired_misc_select: 0 in SDK 1.x, MiscSelect & MiscMask up to 2.13, MiscSelect after."""
    if family == "1.8":
        return 0
    if family == "2.25":
        return _settings_value(settings, "MiscSelect")
    return _settings_value(settings, "MiscSelect") & settings.get("MiscMask", 0xFFFFFFFF)


def text_relocations(image: ElfImage) -> bool:
    """True when the dynamic section has ``DT_TEXTREL`` or ``DF_TEXTREL`` (what sgx_sign refuses)."""
    dynamic = next((segment for segment in image.segments if segment.type == PT_DYNAMIC), None)
    if dynamic is None or dynamic.filesz < 16 or dynamic.offset + dynamic.filesz > image.file_size:
        return False
    raw = image.read(dynamic.offset, dynamic.filesz - dynamic.filesz % 16)
    for tag, value in struct.iter_unpack("<qQ", raw):
        if tag == DT_NULL:
            break
        if tag == DT_TEXTREL or (tag == DT_FLAGS and value & DF_TEXTREL):
            return True
    return False


# --------------------------------------------------------------------------------------------
# The plan: everything sgx_sign would write, before the signature
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SdkSigningPlan:
    """What signing an SDK enclave with a configuration writes, short of the signature.

    Build it with :func:`plan_sdk_signing`; :meth:`section` gives the note for any signed
    SIGSTRUCT, :func:`write_sdk_enclave` writes the file.
    """

    path: str  # the enclave file signed (the input)
    release: str  # SDK release whose sgx_sign is reproduced, e.g. "2.26.100.0"
    family: str  # its rule family (core.sdk_config.RELEASE_FAMILIES)
    config: SdkConfig  # the configuration as parsed
    layout: DerivedLayout  # primary and compatibility layouts, SIZE, SSA frame size
    tcs_template: bytes = field(repr=False)  # 72 bytes, as stored in every block
    global_data: bytes = field(repr=False)  # the g_global_data template (patch 0)
    global_data_offset: int = 0  # file offset g_global_data is patched at (bytes)
    versions: tuple[str, ...] = ()  # versions of the blocks written, in note order ("2.3", "2.1", "1.4")
    primary_version: str = ""  # version of the block MRENCLAVE is measured from
    template: Sigstruct = field(default_factory=Sigstruct)  # the unsigned SIGSTRUCT (ENCLAVEHASH set)
    section_offset: int = 0  # file offset of .note.sgxmeta (bytes)
    section_size: int = 0  # its size (bytes)
    descsz: int = 0  # the note's desc size (METADATA_SIZE of the enclave's SDK)
    section_head: bytes = field(default=b"", repr=False)  # the section's bytes before the desc (kept)
    section_tail: bytes = field(default=b"", repr=False)  # the section's bytes after the desc (kept)
    was_signed: bool = False  # the input already held metadata (re-signing)
    verified: bool = True  # False when this release's sgx_sign output was never compared byte for byte
    notes: tuple[str, ...] = ()  # what is assumed rather than validated
    _headers: Mapping[str, int] = field(default_factory=dict, repr=False)  # metadata header values
    _version_numbers: tuple[tuple[int, int], ...] = field(default=(), repr=False)
    _primary_number: tuple[int, int] = field(default=(0, 0), repr=False)

    @property
    def mrenclave(self) -> str:
        """MRENCLAVE (hex) of the primary block: the ENCLAVEHASH to sign."""
        return self.template.enclavehash.hex()

    @property
    def settings(self) -> Mapping[str, int]:
        """Effective configuration values (defaults of the release filled in)."""
        return self.layout.settings

    def blocks(self, sigstruct: Sigstruct | bytes) -> tuple[bytes, ...]:
        """The metadata blocks written, in note order, carrying ``sigstruct``.

        Raises:
            SdkError: the SIGSTRUCT is not 1808 bytes.
        """
        css = sigstruct.to_bytes() if isinstance(sigstruct, Sigstruct) else bytes(sigstruct)
        if len(css) != SIGSTRUCT_SIZE:
            raise SdkError(f"a SIGSTRUCT is {SIGSTRUCT_SIZE} bytes, not {len(css)}")
        return tuple(self._block(version, css) for version in self._version_numbers)

    def primary_block(self, sigstruct: Sigstruct | bytes | None = None) -> bytes:
        """The primary block (measured for MRENCLAVE), whether or not it is written."""
        css = bytes(SIGSTRUCT_SIZE) if sigstruct is None else (
            sigstruct.to_bytes() if isinstance(sigstruct, Sigstruct) else bytes(sigstruct))
        return self._block(self._primary_number, css)

    def desc(self, sigstruct: Sigstruct | bytes) -> bytes:
        """The note's desc carrying ``sigstruct``: the blocks, then zeros up to ``descsz``.

        Raises:
            SdkError: the blocks do not fit the note.
        """
        joined = b"".join(self.blocks(sigstruct))
        if len(joined) > self.descsz:
            raise SdkError(f"metadata blocks ({len(joined):#x} bytes) do not fit the {self.descsz:#x}-byte note")
        return joined + bytes(self.descsz - len(joined))

    def section(self, sigstruct: Sigstruct | bytes) -> bytes:
        """The whole ``.note.sgxmeta`` section carrying ``sigstruct``.

        Like ``sgx_sign``, only the desc is replaced: the note header, the name and any bytes
        after the desc are the input's.

        Raises:
            SdkError: the blocks do not fit the note.
        """
        return self.section_head + self.desc(sigstruct) + self.section_tail

    def _block(self, version: tuple[int, int], css: bytes) -> bytes:
        compat = version in ((1, 4), (1, 5))
        layout = self.layout.compat if compat and self.layout.compat is not None else self.layout.primary
        headers = self._headers
        return build_block(
            version=version,
            enclave_size=self.layout.enclave_size,
            layout=layout,
            sigstruct=css,
            ssa_frame_size=self.layout.ssa_frame_size,
            tcs_policy=headers["tcs_policy"],
            max_save_buffer_size=headers["max_save_buffer_size"],
            desired_misc_select=headers["desired_misc_select"],
            tcs_min_pool=headers["tcs_min_pool"],
            attributes=(headers["attributes_flags"], headers["attributes_xfrm"]),
            tcs_template=self.tcs_template,
            patches=[(self.global_data_offset, self.global_data), (0x3C, bytes(2)), (0x28, bytes(8)), (0x3E, bytes(2))],
            dir_count=4 if self.family == "2.25" else 2,
            layout_first=self.family == "1.8",
        )


def _check_enclave(enclave: SdkEnclave, options: SgxSignOptions) -> None:
    """sgx_sign's refusals that depend on the file, not the configuration."""
    image = enclave.image
    if enclave.signed and not options.resign:
        raise SdkError(
            f"{enclave.path} is already signed (its {NOTE_SECTION} holds metadata {', '.join(enclave.metadata.versions)}); "
            "sign the unsigned enclave.so, or give --resign to replace the metadata",
            title="Enclave already signed",
        )
    if not options.ignore_rel_error and text_relocations(image):
        raise SdkError(
            f"{enclave.path} has text relocations (DT_TEXTREL): sgx_sign refuses it; rebuild without them "
            "(e.g. -fPIC everywhere) or give --ignore-rel-error",
            title="Text relocations",
        )
    if not options.ignore_init_sec_error and image.section_by_name(".init") is not None:
        raise SdkError(
            f"{enclave.path} has an .init section: sgx_sign refuses it (enclave code must not rely on .init); "
            "give --ignore-init-sec-error to sign anyway",
            title=".init section",
        )


def _check_settings(settings: Mapping[str, int], config: SdkConfig, family: str) -> list[str]:
    """Refusals sgx_sign makes that derive_layout does not, and what ensign does not write. Returns notes."""
    origin = config.origin

    def fail(message: str, title: str = "Invalid enclave configuration") -> None:
        raise SdkError(f"{origin}: {message}", title=title)

    kss_ids = ("ISVFAMILYID_H", "ISVFAMILYID_L", "ISVEXTPRODID_H", "ISVEXTPRODID_L")
    if any(_settings_value(settings, name) for name in kss_ids) and not _settings_value(settings, "EnableKSS"):
        fail("ISVFAMILYID/ISVEXTPRODID need EnableKSS=1 (sgx_sign refuses this configuration)")
    if _settings_value(settings, "HW") and not _settings_value(settings, "LaunchKey"):
        fail("HW needs LaunchKey=1 (sgx_sign refuses this configuration)")
    for name in ("EnclaveImageAddress", "ELRangeStartAddress", "ELRangeSize"):
        if _settings_value(settings, name):
            fail(f"<{name}> (ELRANGE) is not supported by ensign's sgx_sign writer: its metadata (11.x/13.x) is "
                 "not validated; sign with sgx_sign", title="Not supported")
    for name in ("EnableIPPFIPS", "EnableOSSLFIPS"):
        if _settings_value(settings, name):
            fail(f"<{name}> is not supported by ensign's sgx_sign writer: the EXTEND table (FIPS signature slot, "
                 "OpenSSL FIPS module) is not reproduced; sign with sgx_sign", title="Not supported")
    notes = []
    if family in ("2.0", "2.8"):
        notes.append(f"SDK {family} metadata bytes are derived from the neighbouring releases, not validated "
                     "against its sgx_sign (every block is checked to measure the same)")
    return notes


def plan_sdk_signing(
    enclave: SdkEnclave,
    config: SdkConfig,
    *,
    date: _dt.date | int,
    release: str | None = None,
    production: bool = False,
    isvprodid: int | None = None,
    isvsvn: int | None = None,
    options: SgxSignOptions = SgxSignOptions(),
    content: ContentSource | None = None,
    measurer: Measurer | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SdkSigningPlan:
    """Everything ``sgx_sign`` of the enclave's release writes for ``config``, and the MRENCLAVE.

    Args:
        enclave: the open SDK enclave (normally the unsigned ``enclave.so``).
        config: the parsed ``Enclave.config.xml``.
        date: SIGSTRUCT DATE (``sgx_sign`` uses today's UTC date).
        release: the SDK release whose ``sgx_sign`` to reproduce (default: the enclave's
            ``SGX_TSTDC_VERSION``).
        production: force ``DisableDebug=1`` (DEBUG enforced clear in ATTRIBUTEMASK).
        isvprodid: override the config's ProdID.
        isvsvn: override the config's ISVSVN.
        options: sgx_sign's opt-outs (and ``resign``).
        content: where layout, TCS and g_global_data templates come from (default: the what-if
            predictor, :func:`predicted_content`).
        measurer: reuse measurement checkpoints (default: the enclave's).
        on_progress: measurement progress.
        cancel: cancels the measurement.

    Returns:
        The :class:`SdkSigningPlan` (unsigned SIGSTRUCT with ENCLAVEHASH set).

    Raises:
        SdkError: a configuration or enclave sgx_sign refuses (``ConfigRefused``), a release
            ensign does not model (``UnsupportedRelease``), metadata that does not fit the note,
            or a written block that would not measure like the primary.
        MeasurementCancelled: ``cancel`` was set.
    """
    image = enclave.image
    _check_enclave(enclave, options)
    section = image.section_by_name(NOTE_SECTION)
    if section is None:  # SdkEnclave guarantees one
        raise SdkError(f"{enclave.path}: no {NOTE_SECTION} section")
    overrides = [(name, value) for name, value in (("DisableDebug", 1 if production else None),
                                                   ("ProdID", isvprodid), ("ISVSVN", isvsvn)) if value is not None]
    if overrides:
        names = {name for name, _value in overrides}
        config = dataclasses.replace(
            config, values=tuple((n, v) for n, v in config.values if n not in names) + tuple(overrides))
    measured = (content or predicted_content)(enclave, config, release)
    layout, family = measured.layout, measured.family
    settings = layout.settings
    notes = list(measured.notes)
    notes += _check_settings(settings, measured.config, family)

    descsz = enclave.metadata.descsz
    expected_desc = _DESC_SIZES[family]
    if descsz != expected_desc:
        notes.append(f"the note's desc is {descsz:#x} bytes; sgx_sign of SDK {family} writes {expected_desc:#x}")
    desc_start = enclave.metadata.desc_offset - section.offset  # 25: header and unpadded name (SPEC §4.1)
    if section.size < desc_start + descsz:
        raise SdkError(f"{enclave.path}: {NOTE_SECTION} is {section.size:#x} bytes, too small for its "
                       f"{descsz:#x}-byte desc", title="Note section too small")
    if len(measured.tcs_template) != TCS_TEMPLATE_SIZE:
        raise SdkError(f"a TCS template is {TCS_TEMPLATE_SIZE} bytes, not {len(measured.tcs_template)}")

    versions = metadata_versions(family, measured.release, layout)
    primary_number = primary_metadata_version(family, measured.release)
    unsigned = sgx_sign_sigstruct(settings, family, date=date)
    flags, xfrm = _metadata_attributes(unsigned)
    headers = {
        "tcs_policy": settings["TCSPolicy"],
        "max_save_buffer_size": _save_buffer_size(family, xfrm),
        "desired_misc_select": _desired_misc_select(family, settings),
        "tcs_min_pool": 0 if family == "1.8" else settings["TCSMinPool"],
        "attributes_flags": flags,
        "attributes_xfrm": xfrm,
    }
    plan = SdkSigningPlan(
        path=enclave.path, release=measured.release, family=family, config=measured.config, layout=layout,
        tcs_template=measured.tcs_template, global_data=measured.global_data,
        global_data_offset=measured.global_data_offset,
        versions=tuple(f"{major}.{minor}" for major, minor in versions),
        primary_version=f"{primary_number[0]}.{primary_number[1]}", template=unsigned,
        section_offset=section.offset, section_size=section.size, descsz=descsz,
        section_head=bytes(image.read(section.offset, desc_start)),
        section_tail=bytes(image.read(section.offset + desc_start + descsz, section.size - desc_start - descsz)),
        was_signed=enclave.signed,
        verified=measured.verified and family not in ("2.0", "2.8"), notes=tuple(notes), _headers=headers,
        _version_numbers=versions, _primary_number=primary_number,
    )
    blocks = plan.blocks(unsigned)
    written = sum(len(block) for block in blocks)
    if written > descsz:
        raise SdkError(
            f"{enclave.path}: the metadata ({written:#x} bytes in {len(versions)} block(s)) does not fit the "
            f"{descsz:#x}-byte {NOTE_SECTION} note (sgx_sign refuses it: the enclave was built for an older SDK "
            "or the layout is too large)", title="Note section too small")

    # MRENCLAVE comes from the primary block; every block written must measure the same, or the
    # SDK loader (which may pick any of them) would fail EINIT with it.
    measurer = measurer or enclave.measurer
    primary_raw = plan.primary_block(unsigned)
    mrenclave = measurer.measure(build_sdk_plan(image, _parsed_block(primary_raw)).plan,
                                 on_progress=on_progress, cancel=cancel).mrenclave
    for version, raw in zip(plan.versions, blocks, strict=True):
        if raw == primary_raw:
            continue
        check = measurer.measure(build_sdk_plan(image, _parsed_block(raw)).plan, cancel=cancel).mrenclave
        if check != mrenclave:
            raise SdkError(
                f"internal check failed: metadata block {version} would measure to {check.hex()}, not the "
                f"primary block's {mrenclave.hex()}; refusing to write metadata the SDK loader would reject")
    return dataclasses.replace(plan, template=dataclasses.replace(unsigned, enclavehash=mrenclave))


def _parsed_block(raw: bytes) -> MetadataBlock:
    return parse_sgxmeta(build_note([raw], len(raw))).blocks[0]


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SdkSignResult:
    """What :func:`write_sdk_enclave` wrote."""

    output: str  # the file written
    sigstruct: Sigstruct  # the signed SIGSTRUCT (identical in every block)
    versions: tuple[str, ...]  # metadata blocks written, in note order
    mrenclave: str  # ENCLAVEHASH (hex)
    mrsigner: str  # MRSIGNER of the key (hex)
    section_offset: int  # file offset of .note.sgxmeta (bytes)
    section_size: int  # its size (bytes)
    section_sha256: str  # SHA-256 of the section written (hex)
    file_sha256: str  # SHA-256 of the whole file written (hex)
    notes: tuple[str, ...] = ()  # assumptions (from the plan)


def sgxmeta_section(plan: SdkSigningPlan, sigstruct: Sigstruct) -> bytes:
    """The ``.note.sgxmeta`` section bytes for a signed SIGSTRUCT (see :meth:`SdkSigningPlan.section`)."""
    return plan.section(sigstruct)


def write_sdk_enclave(
    enclave: SdkEnclave, plan: SdkSigningPlan, sigstruct: Sigstruct, *, output: str | Path | None = None
) -> SdkSignResult:
    """Write the enclave with the new note: every other byte copied, atomically.

    Args:
        enclave: the open enclave the plan was made for.
        plan: from :func:`plan_sdk_signing`.
        sigstruct: the signed SIGSTRUCT (its signed fields must be the plan's).
        output: where to write (default: replace the input).

    Returns:
        What was written.

    Raises:
        SdkError: the SIGSTRUCT does not belong to the plan, or the result does not read back.
        WriteError: the output could not be written (the original is unchanged).
    """
    if sigstruct.signed_bytes() != plan.template.signed_bytes():
        raise SdkError("the SIGSTRUCT to write is not the one planned (its signed fields differ)")
    if not sigstruct.verify_signature():
        raise SdkError("the SIGSTRUCT to write carries no valid signature")
    section = plan.section(sigstruct)
    start, end = plan.section_offset, plan.section_offset + len(section)
    data = enclave.image.data
    if end > len(data):
        raise SdkError(f"{enclave.path}: {NOTE_SECTION} runs past the end of the file")
    file_hash = hashlib.sha256()
    target = str(output) if output is not None else enclave.path

    def build(out: BinaryIO) -> None:
        for piece in (data[:start], section, data[end:]):
            for offset in range(0, len(piece), 1 << 20):
                chunk = piece[offset:offset + (1 << 20)]
                file_hash.update(chunk)
                out.write(chunk)

    def verify(temp_path: str) -> None:
        with SdkEnclave.open(temp_path) as written:
            if written.metadata.versions != plan.versions or any(b.sigstruct != sigstruct for b in written.blocks):
                raise SdkError(f"{target}: the signed file did not read back correctly")

    elfedit.atomic_write_from(enclave.path, target, build, verify=verify)
    return SdkSignResult(
        output=target, sigstruct=sigstruct, versions=plan.versions, mrenclave=plan.mrenclave,
        mrsigner=sigstruct.mrsigner, section_offset=start, section_size=len(section),
        section_sha256=hashlib.sha256(section).hexdigest(), file_sha256=file_hash.hexdigest(), notes=plan.notes,
    )


def sign_sdk_enclave(
    enclave: SdkEnclave,
    config: SdkConfig,
    signer: Signer,
    *,
    date: _dt.date | int,
    output: str | Path | None = None,
    release: str | None = None,
    production: bool = False,
    isvprodid: int | None = None,
    isvsvn: int | None = None,
    options: SgxSignOptions = SgxSignOptions(),
    content: ContentSource | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SdkSignResult:
    """Sign an SDK enclave from its configuration, byte for byte as ``sgx_sign`` of its release.

    Arguments are those of :func:`plan_sdk_signing`, plus the ``signer`` (RSA-3072, e=3: a
    :class:`~core.signing.KeySigner`, a PKCS#11 signer, or an attached signature) and ``output``.

    Returns:
        What was written.

    Raises:
        SdkError: see :func:`plan_sdk_signing` and :func:`write_sdk_enclave`.
        SigningKeyError / SignatureError: the signer is unusable.
        WriteError: the output could not be written.
    """
    plan = plan_sdk_signing(enclave, config, date=date, release=release, production=production,
                            isvprodid=isvprodid, isvsvn=isvsvn, options=options, content=content,
                            on_progress=on_progress, cancel=cancel)
    signed = sign_sigstruct_with(plan.template, signer)
    return write_sdk_enclave(enclave, plan, signed, output=output)


# --------------------------------------------------------------------------------------------
# Two-step signing (sgx_sign gendata / catsig)
# --------------------------------------------------------------------------------------------


def config_signing_request(plan: SdkSigningPlan, *, expected_mrsigner: str | None = None) -> SigningRequest:
    """The export for signing ``plan`` elsewhere: its one SIGSTRUCT (``sgx_sign gendata``'s 256 bytes).

    The manifest's parameters are the release and the configuration as applied, so an attach
    with another configuration names the element that changed.

    Args:
        plan: from :func:`plan_sdk_signing`.
        expected_mrsigner: MRSIGNER the signing key is meant to have (recorded, checked at attach).

    Returns:
        A request of kind ``"sdk"`` with one SIGSTRUCT named :data:`core.twostep.SDK_VARIANT`.
    """
    params: dict[str, object] = {"release": plan.release, **dict(plan.config.values)}
    return SigningRequest(app=plan.path, kind="sdk", variants=(SDK_VARIANT,), templates=(plan.template,),
                          params=params, expected_mrsigner=expected_mrsigner)


def attach_signature(
    plan: SdkSigningPlan,
    modulus: int,
    signatures: Sequence[tuple[str, bytes]],
    *,
    exported: ExportedData | None = None,
    expected_mrsigner: str | None = None,
) -> tuple[Sigstruct, AttachPlan]:
    """The signed SIGSTRUCT from a signature made elsewhere (``sgx_sign catsig``), or exactly why not.

    Args:
        plan: the plan rebuilt from the same enclave, configuration, date and options as the export.
        modulus: n of the signer's public key.
        signatures: ``(source, 384 bytes)`` pairs, either byte order.
        exported: the export, to name what changed when the signature does not fit.
        expected_mrsigner: MRSIGNER the key must have.

    Returns:
        The signed SIGSTRUCT (write it with :func:`write_sdk_enclave`) and the match.

    Raises:
        SignatureError: wrong key, wrong data (naming the change), or no signature.
    """
    attached = match_signatures(config_signing_request(plan), modulus, signatures, exported=exported,
                                expected_mrsigner=expected_mrsigner)
    return sign_sigstruct_with(plan.template, attached.signer), attached
