"""An ensign (SCONE-style) enclave binary: measure, sign, verify.

:class:`EnclaveBinary` is what the CLI and the TUI hold for one open ELF program: the
loaded image, its image plan (built once), a :class:`~core.measure.Measurer` with its
checkpoints, and the ``.ensign`` signature if the file carries one. The functions here
compose layout, measurement, SIGSTRUCT and signing; they return data and raise
:class:`~core.errors.EnsignError` subclasses, and never print.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import threading
from dataclasses import dataclass, field
from pathlib import Path

from core import elfedit
from core.elf import ElfImage, load_elf
from core.errors import ContainerError, EnsignError
from core.layout import VARIANT_EDMM, VARIANT_SGX1, ImagePlan, Layout, build_image_plan, derive_layout
from core.measure import Measurement, Measurer, ProgressCallback
from core.params import Params
from core.records import PAGE_SIZE
from core.signed import PAGE_DIGEST_SIZE, SECTION_NAME, EnsignSignature, page_digests
from core.signing import Signer, sign_sigstruct_with
from core.sigstruct import Sigstruct, build_sigstruct, encode_bcd_date

# SIGSTRUCT policy of ensign signatures (docs/LAYOUT.md "SIGSTRUCT").
ATTR_DEBUG = 0x2
ATTR_MODE64BIT = 0x4
ATTRIBUTEMASK_FLAGS = 0xFF00FFFFFFFFFFFF  # every checked bit enforced, DEBUG included
MISCMASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class PageLocation:
    """What an enclave offset is: region, ELF segment, section and nearest symbol."""

    offset: int  # bytes from enclave base
    region: str  # layout region name
    segment: str | None  # e.g. "LOAD[2] R-X"
    section: str | None  # e.g. ".data"
    symbol: str | None  # e.g. "counter+0x10"
    vaddr: int | None  # ELF virtual address, for image pages

    def describe(self) -> str:
        """One line: ``page 0x3000 (vaddr 0x403000) in image: LOAD[3] RW-, section .data, symbol counter+0x10``."""
        parts = []
        if self.segment:
            parts.append(self.segment)
        if self.section:
            parts.append(f"section {self.section}")
        if self.symbol:
            parts.append(f"symbol {self.symbol}")
        where = f"page {self.offset & ~(PAGE_SIZE - 1):#x}"
        if self.vaddr is not None:
            where += f" (vaddr {self.vaddr:#x})"
        return f"{where} in {self.region}" + (f": {'; '.join(parts)}" if parts else "")


@dataclass(frozen=True, slots=True)
class MeasuredPair:
    """Both measurements of one configuration."""

    params: Params
    sgx1: Layout
    edmm: Layout
    sgx1_measurement: Measurement
    edmm_measurement: Measurement


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of ``verify``: ok only when the hash matches and the signature is valid."""

    ok: bool
    problems: tuple[str, ...]
    expected: str  # ENCLAVEHASH of the SIGSTRUCT checked (hex)
    computed: str  # MRENCLAVE ensign computed for the matching variant (hex)
    variant: str  # which measurement the SIGSTRUCT was checked against
    signature_valid: bool
    mrsigner: str
    first_changed_page: PageLocation | None = None
    params: Params | None = None


@dataclass(frozen=True, slots=True)
class SignResult:
    """What ``sign`` wrote."""

    output: str
    signature: EnsignSignature
    pair: MeasuredPair
    mrsigner: str
    sig_out: str | None = None


@dataclass
class EnclaveBinary:
    """One open ELF program with its cached image plan and measurement checkpoints."""

    image: ElfImage
    image_plan: ImagePlan
    measurer: Measurer = field(default_factory=Measurer)
    signature: EnsignSignature | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> EnclaveBinary:
        """Load ``path`` (ELF64 x86-64), build its image plan and read its ``.ensign`` section.

        Raises:
            ElfFormatError: not a loadable ELF.
            ContainerError: a corrupt ``.ensign`` section.
        """
        image = load_elf(str(path))
        plan = build_image_plan(image)
        raw = elfedit.read_section_bytes(image, SECTION_NAME)
        signature = EnsignSignature.from_bytes(raw, origin=f"{path}: {SECTION_NAME}") if raw else None
        return cls(image=image, image_plan=plan, signature=signature)

    @property
    def path(self) -> str:
        """File path."""
        return self.image.path

    def layout(self, params: Params, variant: str = VARIANT_SGX1) -> Layout:
        """The layout for ``params`` (cheap: the image plan is reused)."""
        return derive_layout(self.image, params, variant, self.image_plan)

    def measure(self, params: Params, variant: str = VARIANT_SGX1, *,
                on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> tuple[Layout, Measurement]:
        """Layout and MRENCLAVE of one variant, resuming from checkpoints."""
        layout = self.layout(params, variant)
        return layout, self.measurer.measure(layout.plan, on_progress=on_progress, cancel=cancel)

    def measure_pair(self, params: Params, *, on_progress: ProgressCallback | None = None,
                     cancel: threading.Event | None = None) -> MeasuredPair:
        """SGX1 and EDMM measurements; progress spans both (the image is hashed once)."""
        sgx1 = self.layout(params, VARIANT_SGX1)
        edmm = self.layout(params, VARIANT_EDMM)
        total = sgx1.plan.stream_size + edmm.plan.stream_size

        def first(done: int, _total: int) -> None:
            if on_progress:
                on_progress(done, total)

        def second(done: int, _total: int) -> None:
            if on_progress:
                on_progress(sgx1.plan.stream_size + done, total)

        m1 = self.measurer.measure(sgx1.plan, on_progress=first, cancel=cancel)
        m2 = self.measurer.measure(edmm.plan, on_progress=second, cancel=cancel)
        return MeasuredPair(params, sgx1, edmm, m1, m2)

    def image_page_digests(self) -> bytes:
        """8-byte digests of every measured image page (stored in the signature)."""
        return page_digests(self.image_plan.runs)

    def locate(self, offset: int, layout: Layout | None = None) -> PageLocation:
        """Map an enclave offset back to region, segment, section and symbol."""
        region_name = "outside the layout"
        if layout is not None:
            region = layout.region_for_offset(offset)
            if region is not None:
                region_name = region.name
        vaddr = None
        segment_text = section_text = symbol_text = None
        if offset < self.image_plan.end:
            vaddr = self.image_plan.base_vaddr + offset
            if layout is None:
                region_name = "image"
            segment = self.image.segment_for_vaddr(vaddr)
            if segment is not None:
                segment_text = f"LOAD[{segment.index}] {segment.flags_text}"
            section = self.image.section_for_vaddr(vaddr)
            if section is not None:
                section_text = section.name
            found = self.image.symbol_for_vaddr(vaddr)
            if found is not None:
                symbol, delta = found
                symbol_text = symbol.name + (f"+{delta:#x}" if delta else "")
        return PageLocation(offset, region_name, segment_text, section_text, symbol_text, vaddr)

    def locate_page(self, offset: int, layout: Layout | None = None) -> PageLocation:
        """Describe a whole page: every section and (up to 6) symbols that overlap it."""
        page = offset & ~(PAGE_SIZE - 1)
        location = self.locate(page, layout)
        if location.vaddr is None:
            return location
        start, end = location.vaddr, location.vaddr + PAGE_SIZE
        sections = [sec.name for sec in self.image.sections
                    if sec.is_alloc and sec.size and sec.addr < end and start < sec.addr + sec.size]
        symbols = sorted(
            {(sym.value, sym.name) for sym in self.image.symbols
             if sym.type in ("FUNC", "OBJECT") and sym.value < end and start < sym.value + max(sym.size, 1)}
        )
        names = [name for _, name in symbols]
        symbol_text = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        return dataclasses.replace(location, section=" ".join(sections) or location.section,
                                   symbol=symbol_text or location.symbol)

    def first_changed_image_page(self, digests: bytes) -> PageLocation | None:
        """Compare stored image page digests with the file's; describe the first differing page."""
        current = self.image_page_digests()
        if current == digests:
            return None
        offsets = [run.offset + i * PAGE_SIZE for run in self.image_plan.runs for i in range(run.pages)]
        for index, offset in enumerate(offsets):
            start = index * PAGE_DIGEST_SIZE
            if current[start:start + PAGE_DIGEST_SIZE] != digests[start:start + PAGE_DIGEST_SIZE]:
                return self.locate_page(offset)
        return None


def sigstruct_template(params: Params, enclavehash: bytes, date: _dt.date) -> Sigstruct:
    """The unsigned SIGSTRUCT ensign builds for one measurement (docs/LAYOUT.md)."""
    flags = ATTR_MODE64BIT | (0 if params.production else ATTR_DEBUG)
    return build_sigstruct(
        enclavehash=enclavehash,
        attributes_flags=flags,
        attributes_xfrm=params.xfrm,
        attributemask_flags=ATTRIBUTEMASK_FLAGS,
        attributemask_xfrm=params.xfrm_mask,
        isvprodid=params.isvprodid,
        isvsvn=params.isvsvn,
        date_raw=encode_bcd_date(date),
        miscselect=0,
        miscmask=MISCMASK,
    )


def today_utc() -> _dt.date:
    """Today's date in UTC (the default SIGSTRUCT DATE)."""
    return _dt.datetime.now(_dt.UTC).date()


def build_signature(binary: EnclaveBinary, pair: MeasuredPair, signer: Signer, date: _dt.date) -> EnsignSignature:
    """Sign both measurements of ``pair`` with ``signer`` and build the ``.ensign`` record."""
    params = pair.params
    sgx1 = sign_sigstruct_with(sigstruct_template(params, pair.sgx1_measurement.mrenclave, date), signer)
    edmm = sign_sigstruct_with(sigstruct_template(params, pair.edmm_measurement.mrenclave, date), signer)
    return EnsignSignature(params=params, date=encode_bcd_date(date), sgx1=sgx1, edmm=edmm,
                           digests=binary.image_page_digests())


def write_signature(binary: EnclaveBinary, signature: EnsignSignature, *, output: str | None = None,
                    sig_out: str | None = None) -> str:
    """Store ``signature`` in the binary's ``.ensign`` section (atomically) and optionally a ``.sig``.

    Args:
        binary: the open binary (its file is the source).
        signature: what to store.
        output: write a signed copy here instead of replacing the input.
        sig_out: also write the SGX1 SIGSTRUCT as a raw 1808-byte file here.

    Returns:
        The path written.
    """
    target = output or binary.path
    elfedit.with_section(binary.path, target, SECTION_NAME, signature.to_bytes())
    if sig_out:
        elfedit.atomic_write_bytes(sig_out, signature.sgx1.to_bytes())
    return target


def sign_enclave(binary: EnclaveBinary, params: Params, signer: Signer, *, date: _dt.date | None = None,
                 output: str | None = None, sig_out: str | None = None,
                 on_progress: ProgressCallback | None = None,
                 cancel: threading.Event | None = None) -> SignResult:
    """Measure both variants, sign them, and store the signature in the binary.

    Raises:
        EnsignError: measurement, signing or writing failed; the original file is intact.
    """
    pair = binary.measure_pair(params, on_progress=on_progress, cancel=cancel)
    signature = build_signature(binary, pair, signer, date or today_utc())
    target = write_signature(binary, signature, output=output, sig_out=sig_out)
    return SignResult(output=target, signature=signature, pair=pair, mrsigner=signature.sgx1.mrsigner,
                      sig_out=sig_out)


def verify_enclave(binary: EnclaveBinary, *, sigstruct: Sigstruct | None = None, params: Params | None = None,
                   on_progress: ProgressCallback | None = None,
                   cancel: threading.Event | None = None) -> VerifyResult:
    """Re-measure with the signed parameters and check ENCLAVEHASH and the signature.

    Args:
        binary: the open binary.
        sigstruct: a SIGSTRUCT to check instead of the embedded ones (``--sig``); it may
            match either the SGX1 or the EDMM measurement.
        params: parameters to measure with when the binary carries none.

    Raises:
        ContainerError: nothing to verify against (no signature and no ``--sig``).
    """
    signature = binary.signature
    if signature is None and sigstruct is None:
        raise ContainerError(f"{binary.path}: not signed by ensign (no {SECTION_NAME} section); give --sig FILE")
    use_params = signature.params if signature is not None else params
    if use_params is None:
        raise EnsignError("no parameters to measure with")
    pair = binary.measure_pair(use_params, on_progress=on_progress, cancel=cancel)
    problems: list[str] = []
    checks: list[tuple[str, Sigstruct, Measurement]] = []
    if sigstruct is not None:
        expected = sigstruct.enclavehash
        variant = VARIANT_EDMM if expected == pair.edmm_measurement.mrenclave else VARIANT_SGX1
        measurement = pair.edmm_measurement if variant == VARIANT_EDMM else pair.sgx1_measurement
        checks.append((variant, sigstruct, measurement))
    else:
        assert signature is not None
        checks.append((VARIANT_SGX1, signature.sgx1, pair.sgx1_measurement))
        checks.append((VARIANT_EDMM, signature.edmm, pair.edmm_measurement))
    all_valid = True
    for variant, sig, measurement in checks:
        result = sig.check()
        all_valid = all_valid and result.signature_valid
        # Attribute bits outside the mask are legal (EINIT just does not check them): not a failure.
        problems.extend(f"{variant.upper()} SIGSTRUCT: {problem}" for problem in result.problems
                        if "EINIT will not check" not in problem)
        if sig.enclavehash != measurement.mrenclave:
            problems.append(
                f"{variant.upper()} MRENCLAVE {measurement.hex} does not match the signed ENCLAVEHASH "
                f"{sig.enclavehash.hex()}"
            )
    changed = None
    if any("MRENCLAVE" in p for p in problems) and signature is not None:
        changed = binary.first_changed_image_page(signature.digests)
        if changed is not None:
            problems.append(f"first changed image {changed.describe()}")
    main_variant, main_sig, main_measurement = checks[0]
    return VerifyResult(
        ok=not problems,
        problems=tuple(problems),
        expected=main_sig.enclavehash.hex(),
        computed=main_measurement.hex,
        variant=main_variant,
        signature_valid=all_valid,
        mrsigner=main_sig.mrsigner,
        first_changed_page=changed,
        params=use_params,
    )

