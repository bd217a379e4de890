"""Explain an MRENCLAVE mismatch: why does this program not measure to that hash?

:func:`explain` answers in the order a person would check:

1. Does the program measure to the target with the effective parameters (flags, ``--env``)?
2. If the target comes with signed parameters (an ensign signature, or an ensign ``.sgxs``
   stream whose signed-parameters page can be read), which of them differ from the effective
   ones, and does each change MRENCLAVE or only SIGSTRUCT fields? Do the signed parameters
   reproduce the target?
3. Is the image itself different? Known from the signature's per-page digests or from the
   target stream's pages; then no parameter can help, and the first differing page is named.
4. Otherwise search a declared parameter space (``core.search``) for the values that do
   reproduce it, and report the match or that none of N candidates does.

A :class:`Target` is what we compare against: one or two MRENCLAVEs and whatever else is
known about them. This module never prints and never imports a UI.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.enclave import EnclaveBinary, PageLocation
from core.errors import ContainerError, ParamError
from core.layout import PARAMS_MAGIC, VARIANT_EDMM, VARIANT_SGX1, VARIANTS, parse_params_page
from core.params import PARAMETERS, SPECS, Params, format_size
from core.records import PAGE_SIZE, MeasurementPlan
from core.search import DEFAULT_SPACE, SearchResult, SearchSpace, search_parameters
from core.signed import PAGE_DIGEST_SIZE, SECTION_NAME
from core.sigstruct import SIGSTRUCT_SIZE, Sigstruct

ProgressCallback = Callable[[str, int, int], None]
"""``on_progress(phase, done, total)``; phases: 'measuring', 'image', 'searching'."""

SEARCH_AUTO = "auto"  # search unless already explained (or the image differs)
SEARCH_ALWAYS = "always"
SEARCH_NEVER = "never"


# ---------------------------------------------------------------------------------------------
# targets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the program should measure to, and what else is known about it."""

    hashes: dict[bytes, str | None]  # MRENCLAVE → its variant ('sgx1'/'edmm') or None if unknown
    origin: str  # one line: where the target came from
    signed_params: Params | None = None  # the parameters that produced it, when recorded
    digests: bytes | None = field(default=None, repr=False)  # 8-byte SHA-256 prefixes of the signed image pages
    plan: MeasurementPlan | None = field(default=None, repr=False)  # the target's record stream, when known

    def matches(self, mrenclave: bytes, variant: str) -> bool:
        """True when ``mrenclave`` measured as ``variant`` is one of the target hashes."""
        return mrenclave in self.hashes and self.hashes[mrenclave] in (None, variant)

    def describe(self) -> list[str]:
        """``MRENCLAVE (SGX1)  <hex>`` lines."""
        return [f"MRENCLAVE ({(variant or 'either').upper()})  {value.hex()}" for value, variant in self.hashes.items()]


def target_from_signature(binary: EnclaveBinary, *, origin: str | None = None) -> Target:
    """The target of an ensign-signed program: both signed ENCLAVEHASHes, its parameters and digests.

    Raises:
        ContainerError: the program carries no ``.ensign`` section.
    """
    signature = binary.signature
    if signature is None:
        raise ContainerError(f"{binary.path}: not signed by ensign (no {SECTION_NAME} section); "
                             "give --sig FILE or --mrenclave HEX")
    return Target(
        hashes={signature.sgx1.enclavehash: VARIANT_SGX1, signature.edmm.enclavehash: VARIANT_EDMM},
        origin=origin or f"the {SECTION_NAME} signature of {binary.path}",
        signed_params=signature.params,
        digests=signature.digests,
    )


def target_from_hex(text: str) -> Target:
    """A bare MRENCLAVE given as 64 hex digits (``--mrenclave``).

    Raises:
        ParamError: not 32 bytes of hex.
    """
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "").replace(" ", "")
    try:
        value = bytes.fromhex(cleaned)
    except ValueError:
        raise ParamError(f"--mrenclave: '{text}' is not hex") from None
    if len(value) != 32:
        raise ParamError(f"--mrenclave: {len(value)} bytes given, MRENCLAVE has 32 (64 hex digits)")
    return Target(hashes={value: None}, origin="the MRENCLAVE given with --mrenclave")


def load_target(path: str) -> Target:
    """A target from a file: a raw SIGSTRUCT, an ensign-signed program, a ``.sgxs`` stream, or
    any container with a SIGSTRUCT (Intel SDK / Open Enclave enclave).

    Raises:
        ContainerError: the file holds no MRENCLAVE.
    """
    from core.containers import open_any

    try:
        size = Path(path).stat().st_size
    except OSError as error:
        raise ContainerError(f"{path}: {error.strerror or error}") from None
    if size == SIGSTRUCT_SIZE:
        sigstruct = Sigstruct.from_bytes(Path(path).read_bytes())
        return Target(hashes={sigstruct.enclavehash: None}, origin=f"the SIGSTRUCT in {path}")
    with open_any(path) as container:
        if isinstance(container.ensign, EnclaveBinary):
            return target_from_signature(container.ensign, origin=f"the {SECTION_NAME} signature of {path}")
        if container.sgxs is not None:
            return target_from_stream(container.sgxs.plan, path, container.sgxs.plan_problem)
        if container.sigstruct is not None:
            return Target(hashes={container.sigstruct.enclavehash: None},
                          origin=f"the SIGSTRUCT of {path} ({container.title})")
        raise ContainerError(f"{path}: {container.title} holds no MRENCLAVE to explain")


def target_from_stream(plan: MeasurementPlan | None, origin: str, problem: str | None = None) -> Target:
    """A target from a record stream: its MRENCLAVE, its pages, and (for an ensign layout) its
    signed-parameters page decoded.

    Raises:
        ContainerError: the stream cannot be expressed as a plan.
    """
    from core.measure import Measurer

    if plan is None:
        raise ContainerError(f"{origin}: {problem or 'no measurement plan'}")
    mrenclave = Measurer().measure(plan).mrenclave
    variant, params = _params_from_stream(plan)
    return Target(hashes={mrenclave: variant}, origin=f"the record stream {origin}", signed_params=params, plan=plan)


def _params_from_stream(plan: MeasurementPlan) -> tuple[str | None, Params | None]:
    """Read ensign's signed-parameters page (docs/LAYOUT.md) if the stream has one."""
    run = plan.run_for_offset(plan.size - PAGE_SIZE)
    if run is None or not run.measured or run.data is None:
        return None, None
    page = run.page_bytes((plan.size - PAGE_SIZE - run.offset) // PAGE_SIZE)
    if not page.startswith(PARAMS_MAGIC):
        return None, None
    fields = {name: value for name, value in parse_params_page(page).items() if isinstance(value, int)}
    sources = {name: "target stream" for name in ("stack", "minheap", "heap", "tcs", "mprotect", "dlopen", "xfrm")}
    try:
        params = Params(stack=fields["stack"], minheap=fields["minheap"], heap=fields["heap"], tcs=fields["tcs"],
                        mprotect=fields["mprotect"], dlopen=fields["dlopen"], xfrm=fields["xfrm"],
                        sources=sources).validated()
    except ParamError:
        return None, None
    return (VARIANT_EDMM if fields["variant"] == 1 else VARIANT_SGX1), params


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamDifference:
    """A parameter whose signed value differs from the effective one."""

    name: str
    signed: str  # display text
    effective: str  # display text
    source: str  # where the effective value came from: default, flag, env:SCONE_HEAP, …
    affects_mrenclave: bool  # False: only SIGSTRUCT fields change

    def describe(self) -> str:
        """``heap: signed 2G, effective 64M (default) — changes MRENCLAVE``."""
        effect = "changes MRENCLAVE" if self.affects_mrenclave else "changes only SIGSTRUCT fields"
        return f"{self.name}: signed {self.signed}, effective {self.effective} ({self.source}) — {effect}"


@dataclass(frozen=True, slots=True)
class ImageVerdict:
    """Whether the program's image is the one the target was made from."""

    status: str  # 'same' | 'differs' | 'unknown'
    how: str  # what the verdict rests on
    first: PageLocation | None = None  # the first image page whose records cannot match
    changed_pages: int = 0  # image pages that differ (when countable)
    pages: int = 0  # image pages compared


@dataclass(frozen=True, slots=True)
class ExplainReport:
    """Everything :func:`explain` found, and its conclusion."""

    path: str
    target: Target
    effective: Params
    effective_mrenclave: dict[str, bytes]  # variant → MRENCLAVE with the effective parameters
    effective_match: str | None  # the variant that already matches the target
    differences: tuple[ParamDifference, ...]  # signed vs effective (empty without signed parameters)
    signed_match: str | None  # the variant the signed parameters reproduce
    image: ImageVerdict
    search: SearchResult | None
    search_note: str | None  # why the search did not run
    conclusion: tuple[str, ...]  # the answer, one sentence per line
    elapsed: float

    @property
    def explained(self) -> bool:
        """True when the cause was found (parameters named or the image shown to differ)."""
        return bool(self.effective_match or self.signed_match or self.image.status == "differs"
                    or (self.search is not None and self.search.match is not None))

    @property
    def match(self) -> Params | None:
        """Parameters that reproduce the target, when known."""
        if self.effective_match:
            return self.effective
        if self.signed_match:
            return self.target.signed_params
        return self.search.match if self.search is not None else None


def value_text(name: str, value: object) -> str:
    """A parameter value as shown to people (sizes with K/M/G, XFRM in hex)."""
    spec = SPECS[name]
    if spec.kind == "size":
        return format_size(int(value))  # type: ignore[call-overload]
    if spec.kind == "xfrm":
        return f"{int(value):#x}"  # type: ignore[call-overload]
    if spec.kind == "bool":
        return "1" if value else "0"
    if spec.kind == "path":
        return str(value) if value else "(built-in debug key)"
    return str(value)


def parameter_differences(signed: Params, effective: Params) -> list[ParamDifference]:
    """Signed vs effective parameters, in PARAMETERS order (the signing key is not recorded)."""
    out = []
    for spec in PARAMETERS:
        if spec.name == "key":
            continue
        if getattr(signed, spec.name) != getattr(effective, spec.name):
            out.append(ParamDifference(spec.name, value_text(spec.name, getattr(signed, spec.name)),
                                       value_text(spec.name, getattr(effective, spec.name)),
                                       effective.source(spec.name), spec.affects_mrenclave))
    return out


# ---------------------------------------------------------------------------------------------
# image verdicts
# ---------------------------------------------------------------------------------------------


def image_verdict_from_digests(binary: EnclaveBinary, digests: bytes) -> ImageVerdict:
    """Compare the program's image pages with the signed 8-byte page digests."""
    current = binary.image_page_digests()
    pages = len(current) // PAGE_DIGEST_SIZE
    signed_pages = len(digests) // PAGE_DIGEST_SIZE
    how = f"the page digests stored in the {SECTION_NAME} signature"
    offsets = [run.offset + i * PAGE_SIZE for run in binary.image_plan.runs for i in range(run.pages)]
    common = min(pages, signed_pages)
    now = np.frombuffer(current, dtype=np.uint64, count=common)
    then = np.frombuffer(digests, dtype=np.uint64, count=common)
    differing = np.nonzero(now != then)[0]
    changed = int(len(differing)) + abs(pages - signed_pages)
    if not changed:
        return ImageVerdict("same", how, None, 0, pages)
    first_index = int(differing[0]) if len(differing) else common
    first = binary.locate_page(offsets[min(first_index, len(offsets) - 1)]) if offsets else None
    if pages != signed_pages:
        how += f" ({signed_pages} image pages signed, {pages} now)"
    return ImageVerdict("differs", how, first, changed, max(pages, signed_pages))


def image_verdict_from_stream(binary: EnclaveBinary, params: Params, plan: MeasurementPlan) -> ImageVerdict:
    """Compare the program's image records with the target stream's records at the same offsets."""
    from core.diff import diff_sides, side_for_binary, side_for_plan

    end = binary.image_plan.end
    ours = side_for_binary(binary, params, VARIANT_SGX1, label=binary.path)
    theirs = side_for_plan(plan, "target")
    report = diff_sides(ours, theirs, detail_pages=1)
    inside = [stretch for stretch in report.stretches if stretch.offset < end]
    pages = sum(run.pages for run in binary.image_plan.runs)
    how = "the target stream's records for the image pages"
    if not inside:
        return ImageVerdict("same", how, None, 0, pages)
    first = inside[0]
    location = first.where_a or first.where_b
    if first.kind != "content":
        location = binary.locate_page(first.offset)
    return ImageVerdict("differs", how, location, sum(min(s.pages, (end - s.offset) // PAGE_SIZE) for s in inside),
                        pages)


# ---------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------


def explain(
    binary: EnclaveBinary,
    params: Params,
    target: Target,
    space: SearchSpace = DEFAULT_SPACE,
    *,
    search: str = SEARCH_AUTO,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ExplainReport:
    """Say why ``binary`` under ``params`` does not measure to ``target``.

    Args:
        binary: the open program (its Measurer's checkpoints are reused).
        params: the effective parameters (flags, environment).
        target: what it should measure to.
        space: the parameter space searched when nothing else explains the mismatch.
        search: 'auto' (search when needed and the image is not known to differ),
            'always' or 'never'.
        on_progress: ``(phase, done, total)``.
        cancel: stops measuring/searching (raises MeasurementCancelled).

    Returns:
        The :class:`ExplainReport`.

    Raises:
        MeasurementCancelled: ``cancel`` was set.
        ParamError: ``search`` is not one of auto/always/never.
    """
    if search not in (SEARCH_AUTO, SEARCH_ALWAYS, SEARCH_NEVER):
        raise ParamError(f"--search: '{search}' must be auto, always or never")
    started = time.perf_counter()

    def phase(name: str) -> Callable[[int, int], None] | None:
        if on_progress is None:
            return None
        return lambda done, total: on_progress(name, done, total)

    variants = _target_variants(target)
    effective_hashes: dict[str, bytes] = {}
    effective_match = None
    for variant in variants:
        _layout, measurement = binary.measure(params, variant, on_progress=phase("measuring"), cancel=cancel)
        effective_hashes[variant] = measurement.mrenclave
        if effective_match is None and target.matches(measurement.mrenclave, variant):
            effective_match = variant

    signed = target.signed_params
    differences: tuple[ParamDifference, ...] = ()
    signed_match = None
    if signed is not None:
        differences = tuple(parameter_differences(signed, params))
        if effective_match is None and any(d.affects_mrenclave for d in differences):
            for variant in variants:
                _layout, measurement = binary.measure(signed, variant, on_progress=phase("measuring"), cancel=cancel)
                if target.matches(measurement.mrenclave, variant):
                    signed_match = variant
                    break

    if effective_match or signed_match:
        image = ImageVerdict("same", "the target was reproduced from this image")
    elif target.plan is not None:
        image = image_verdict_from_stream(binary, params, target.plan)
    elif target.digests is not None:
        image = image_verdict_from_digests(binary, target.digests)
    else:
        image = ImageVerdict("unknown", "the target is a bare hash: nothing records the image it was made from")

    result: SearchResult | None = None
    note: str | None = None
    if search == SEARCH_NEVER:
        note = "not searched (--search never)"
    elif search == SEARCH_AUTO and (effective_match or signed_match):
        note = "not needed: the target is reproduced"
    elif search == SEARCH_AUTO and image.status == "differs":
        note = "not searched: the image differs, so no parameters can reproduce the target (--search always to try)"
    else:
        baselines = [params] + ([signed] if signed is not None else [])
        result = search_parameters(binary, target.hashes, baselines, space, on_progress=phase("searching"),
                                   cancel=cancel)
        if result.match is not None:
            # Confirm with the ordinary engine (and warm the binary's checkpoints for later views).
            _layout, confirm = binary.measure(result.match, result.variant or VARIANT_SGX1, cancel=cancel)
            if not target.matches(confirm.mrenclave, result.variant or VARIANT_SGX1):
                raise AssertionError("search match not confirmed by the measurement engine")

    conclusion = _conclude(binary, params, target, effective_match, differences, signed_match, image, result)
    return ExplainReport(
        path=binary.path, target=target, effective=params, effective_mrenclave=effective_hashes,
        effective_match=effective_match, differences=differences, signed_match=signed_match, image=image,
        search=result, search_note=note, conclusion=tuple(conclusion), elapsed=time.perf_counter() - started,
    )


def _target_variants(target: Target) -> tuple[str, ...]:
    known = {variant for variant in target.hashes.values() if variant is not None}
    if None in target.hashes.values() or not known:
        return VARIANTS
    return tuple(v for v in VARIANTS if v in known)


def _param_changes(match: Params, params: Params) -> list[str]:
    changes = []
    for spec in PARAMETERS:
        if not spec.affects_mrenclave:
            continue
        theirs, ours = getattr(match, spec.name), getattr(params, spec.name)
        if theirs != ours:
            changes.append(f"{spec.name}={value_text(spec.name, theirs)} (effective {value_text(spec.name, ours)}, "
                           f"{params.source(spec.name)})")
    return changes


def _conclude(binary: EnclaveBinary, params: Params, target: Target, effective_match: str | None,
              differences: Sequence[ParamDifference], signed_match: str | None, image: ImageVerdict,
              result: SearchResult | None) -> list[str]:
    lines = []
    if effective_match:
        lines.append(f"{binary.path} measures to the target ({effective_match.upper()}) with the effective parameters.")
        only_sigstruct = [d.name for d in differences if not d.affects_mrenclave]
        if only_sigstruct:
            lines.append(f"Signed values of {', '.join(only_sigstruct)} differ, but they change only SIGSTRUCT fields.")
        return lines
    if signed_match:
        relevant = [d for d in differences if d.affects_mrenclave]
        lines.append(f"The signed parameters reproduce the target ({signed_match.upper()}); the effective parameters "
                     f"drift in {len(relevant)} value(s) that change MRENCLAVE:")
        lines.extend(f"  {d.describe()}" for d in relevant)
        return lines
    if image.status == "differs":
        where = image.first.describe() if image.first is not None else "an image page"
        lines.append(f"The image differs from the one the target was made from ({image.changed_pages} of "
                     f"{image.pages} image pages); no parameters can reproduce it.")
        lines.append(f"First differing image {where}.")
        return lines
    if result is not None and result.match is not None:
        changes = _param_changes(result.match, params)
        lines.append(f"Found: these parameters reproduce the target ({(result.variant or '').upper()}), "
                     f"after {result.tried} candidate(s):")
        lines.extend(f"  {change}" for change in changes)
        if not changes:
            lines.append("  (the effective MRENCLAVE parameters, measured as the other variant)")
        return lines
    if result is not None:
        lines.append(f"None of {result.tried} candidates reproduces the target"
                     + (f" (the bounded space holds {result.space_size}; widen it with --max-changed, "
                        "--max-candidates or --search-*)" if result.capped else "") + ".")
    if image.status == "same":
        lines.append(f"The image is the one the target was made from ({image.how}), so the layout differs: "
                     "parameters outside the searched space, or another tool or layout version.")
    else:
        lines.append("Whether the image or the layout differs cannot be told from a bare hash; give the signed "
                     "program or an .sgxs stream of the target (--sig FILE) to tell.")
    return lines


__all__ = [
    "ExplainReport", "ImageVerdict", "ParamDifference", "SEARCH_ALWAYS", "SEARCH_AUTO", "SEARCH_NEVER", "Target",
    "explain", "image_verdict_from_digests", "image_verdict_from_stream", "load_target", "parameter_differences",
    "target_from_hex", "target_from_signature", "target_from_stream", "value_text",
]
