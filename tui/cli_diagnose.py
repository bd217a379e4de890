"""Subcommands that diagnose MRENCLAVE mismatches: ``diff``, ``explain`` and ``check``.

* ``ensign diff A B``: compare two measurements record by record (exit 1 when they differ).
* ``ensign explain APP``: why APP does not measure to its signed (or a given) MRENCLAVE:
  parameter drift, a changed image, or the parameters a bounded search finds (exit 1 when
  APP does not measure to the target with the effective parameters).
* ``ensign check APP``: would APP start with its signed MRENCLAVE in the current ``SCONE_*``
  environment (exit 0), or which variables drift (exit 1)?

Headless: no Textual import. The work is done by ``core.diff``, ``core.diagnose``,
``core.search`` and ``core.drift``; this module parses flags and formats the answers.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from core.errors import ParamError
from core.params import PARAMETERS, SPECS

EXIT_OK = 0
EXIT_NO = 1
DEFAULT_LIMIT = 40

DIFF_DESCRIPTION = """\
Compare two measurements record by record and say where and why their MRENCLAVEs differ:
ECREATE (SIZE, SSAFRAMESIZE), the first diverging record, and every divergent stretch of
pages (present in one only, flags differ, measured in one only, content differs with the
differing 256-byte chunks), each mapped to its layout region, ELF segment, section and
nearest symbol. Exit 0 when the streams are identical, 1 when they differ.

A and B are ensign programs (measured with the parameter flags, or with their signed
parameters: --signed a|b|both), .sgxs streams or Intel SGX SDK enclaves. -A/-B set a
parameter for one side only, e.g. `ensign diff app app -B heap=2G` or
`ensign diff --signed a app app` (signed configuration vs the flags). `variant=edmm`
picks a side's EDMM measurement."""

DIFF_EPILOG = """\
examples:
  ensign diff --signed a --env app app      signed configuration vs this environment
  ensign diff old/app new/app               two builds under the same parameters
  ensign diff app app -A tcs=8 -B tcs=9     one parameter, both measurements
  ensign diff app target.sgxs               a program against a record stream
"""

EXPLAIN_DESCRIPTION = """\
Say why APP does not measure to the target MRENCLAVE (by default the ENCLAVEHASHes of its
own ensign signature; --sig FILE for a SIGSTRUCT, a signed program or an .sgxs stream;
--mrenclave HEX for a bare hash):
  1. compare the signed parameters with the effective ones (flags, --env), naming each
     difference and whether it changes MRENCLAVE or only SIGSTRUCT fields;
  2. tell whether the image itself differs (from the signature's page digests or the
     target stream);
  3. otherwise search a bounded parameter space for values that reproduce the target.
The space: heap, minheap, stack over powers of two and common MiB steps, tcs 1..64,
mprotect, dlopen, XFRM choices, at most --max-changed values away from the effective (and
signed) parameters. Narrow or widen it with --search-NAME LIST (e.g. --search-heap 1M-16G,
--search-tcs 1-128, --search-stack 1M-8M/1M) and --fix NAME.
Exit 0 when APP already measures to the target, 1 otherwise (the report says why)."""

CHECK_DESCRIPTION = """\
Would APP start with its signed MRENCLAVE in this environment? The runtime sizes the
enclave from the SCONE_* variables (unset ones take the defaults), as `ensign sign --env`
reads them. Exit 0 when every checked measurement matches; exit 1 naming the variables
that drift, the MRENCLAVE the runtime would compute and the signed one."""


def register(sub: Any, command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add ``diff``, ``explain`` and ``check`` to the ``ensign`` parser."""
    from tui.cli import add_param_flags

    p = command("diff", "compare two measurements record by record", DIFF_DESCRIPTION)
    p.epilog = DIFF_EPILOG
    add_param_flags(p)
    p.add_argument("--signed", choices=("a", "b", "both"),
                   help="measure side A, B or both with the program's signed parameters (flags do not apply)")
    p.add_argument("-A", "--set-a", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter for side A only (repeatable; variant=edmm for the EDMM measurement)")
    p.add_argument("-B", "--set-b", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter for side B only (repeatable)")
    p.add_argument("--edmm", action="store_true", help="compare the EDMM measurements (default SGX1)")
    p.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                   help=f"stretches listed in the text output (default {DEFAULT_LIMIT}; 0 = all)")
    p.add_argument("--enclave", metavar="SDK_ENCLAVE",
                   help="compare two Enclave.config.xml files A and B of this Intel SDK enclave (what-if): "
                        "config elements, ECREATE, layout entries and g_global_data fields that differ")
    p.add_argument("a", metavar="A", help="ensign program, .sgxs stream or SDK enclave (an XML with --enclave)")
    p.add_argument("b", metavar="B", help="ensign program, .sgxs stream or SDK enclave (an XML with --enclave)")
    p.set_defaults(handler=cmd_diff)

    p = command("explain", "say why a program does not measure to its signed MRENCLAVE", EXPLAIN_DESCRIPTION)
    add_param_flags(p)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--sig", metavar="FILE",
                        help="target: a SIGSTRUCT, an ensign-signed program or an .sgxs stream")
    target.add_argument("--mrenclave", metavar="HEX", help="target: an MRENCLAVE (64 hex digits)")
    p.add_argument("--search", choices=("auto", "always", "never"), default="auto",
                   help="search parameters: when nothing else explains the mismatch (auto), always, never")
    p.add_argument("--variant", choices=("sgx1", "edmm", "both"), default="both",
                   help="measurements the search tries when the target's variant is unknown (default both)")
    group = p.add_argument_group("search space")
    for name in ("heap", "minheap", "stack", "tcs", "mprotect", "dlopen", "xfrm"):
        group.add_argument(f"--search-{name}", metavar="LIST", dest=f"search_{name}",
                           help=_search_help(name))
    group.add_argument("--fix", metavar="NAMES", default="",
                       help="parameters not to vary (comma-separated, e.g. heap,stack)")
    group.add_argument("--max-changed", type=int, default=None, metavar="N",
                       help="at most N parameters differ from a baseline (default 2; 7 = the whole product)")
    group.add_argument("--max-candidates", type=int, default=None, metavar="N",
                       help="stop after N candidates, nearest first (default 200000)")
    sdk = p.add_argument_group("Intel SGX SDK enclaves (searches Enclave.config.xml elements instead)")
    sdk.add_argument("--config", metavar="XML", help="the configuration to start the search from")
    sdk.add_argument("--vary", metavar="NAMES", help="config elements to vary (comma-separated)")
    p.add_argument("app", metavar="APP")
    p.set_defaults(handler=cmd_explain)

    p = command("check", "would a signed program start with its MRENCLAVE in this environment?", CHECK_DESCRIPTION)
    p.add_argument("--sig", metavar="FILE", help="check against this raw SIGSTRUCT instead of the embedded ones")
    p.add_argument("--variant", choices=("sgx1", "edmm", "both"), default="both",
                   help="which signed measurement the runtime uses (default: check both)")
    p.add_argument("app", metavar="APP")
    p.set_defaults(handler=cmd_check)


def _search_help(name: str) -> str:
    from core.search import DEFAULT_RANGES

    default = DEFAULT_RANGES[name]
    if len(default) > 40:
        default = default[:37] + "..."
    return f"values of {name} to try (default {default})"


# --------------------------------------------------------------------------------------------
# shared formatting
# --------------------------------------------------------------------------------------------


def _location_json(location: Any) -> dict[str, Any] | None:
    if location is None:
        return None
    return {"offset": location.offset, "region": location.region, "segment": location.segment,
            "section": location.section, "symbol": location.symbol, "vaddr": location.vaddr,
            "description": location.describe()}


def _record_json(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"index": record.index, "kind": record.kind, "offset": record.offset, "flags": record.flags,
            "region": record.region}


def _record_text(record: Any) -> str:
    if record is None:
        return "(stream ended)"
    if record.kind == "ECREATE":
        return "ECREATE"
    from core.records import secinfo_text

    return f"{record.kind} {record.offset:#x} {secinfo_text(record.flags)} ({record.region})"


def _phase_progress(out: Any) -> Callable[[str, int, int], None] | None:
    """A ``(phase, done, total)`` callback drawing one bar per phase."""
    if not getattr(out, "show_progress", False):
        return None
    bars: dict[str, Callable[[int, int], None] | None] = {}

    def callback(phase: str, done: int, total: int) -> None:
        if phase not in bars:
            bars[phase] = out.progress(phase)
        bar = bars[phase]
        if bar is not None:
            bar(done, total)

    return callback


# --------------------------------------------------------------------------------------------
# diff
# --------------------------------------------------------------------------------------------


def parse_assignments(items: list[str], flag: str) -> dict[str, str]:
    """``NAME=VALUE`` items (``--heap=2G`` also accepted) → ``{name: text}``.

    Raises:
        ParamError: no ``=`` or an unknown name.
    """
    out: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not equals or not name:
            raise ParamError(f"{flag}: '{item}' is not NAME=VALUE (e.g. heap=2G)")
        if name == "variant":
            if value.strip().lower() not in ("sgx1", "edmm"):
                raise ParamError(f"{flag}: variant must be sgx1 or edmm (got '{value}')")
        elif name not in SPECS:
            known = ", ".join(spec.name for spec in PARAMETERS if spec.affects_mrenclave)
            raise ParamError(f"{flag}: unknown parameter '{name}' (MRENCLAVE parameters: {known}; or variant)")
        out[name] = value.strip()
    return out


def cmd_diff(args: argparse.Namespace, out: Any) -> int:
    """``ensign diff``."""
    from core.diff import diff_sides, open_side
    from tui.cli import params_from_args

    if args.enclave:  # two Enclave.config.xml of one Intel SDK enclave: the what-if comparison
        from tui.cli_sdk import cmd_sdk_diff_configs

        return cmd_sdk_diff_configs(argparse.Namespace(
            a=args.enclave, b=None, config=[args.a, args.b], release=None, json=getattr(args, "json", False),
            limit=args.limit), out)
    signed = args.signed or ""
    variant = "edmm" if args.edmm else "sgx1"
    needs_flags = signed != "both"
    params = params_from_args(args) if needs_flags else None
    side_a = open_side(args.a, params=params, signed=signed in ("a", "both"),
                       overrides=parse_assignments(args.set_a, "-A"), variant=variant)
    side_b = open_side(args.b, params=params, signed=signed in ("b", "both"),
                       overrides=parse_assignments(args.set_b, "-B"), variant=variant)
    report = diff_sides(side_a, side_b, on_progress=out.progress("comparing"))
    data = diff_json(report)
    out.emit(data, diff_lines(report, args.limit))
    return EXIT_OK if report.identical else EXIT_NO


def _param_rows(report: Any) -> list[tuple[str, str, str]]:
    from core.diagnose import value_text

    params_a = report.a.info.get("params")
    params_b = report.b.info.get("params")
    if not params_a or not params_b:
        return []
    rows = []
    for spec in PARAMETERS:
        if not spec.affects_mrenclave:
            continue
        value_a, value_b = params_a[spec.name]["value"], params_b[spec.name]["value"]
        if value_a != value_b:
            rows.append((spec.name, value_text(spec.name, value_a), value_text(spec.name, value_b)))
    if report.a.info.get("variant") != report.b.info.get("variant"):
        rows.append(("variant", str(report.a.info.get("variant")).upper(), str(report.b.info.get("variant")).upper()))
    return rows


def diff_json(report: Any) -> dict[str, Any]:
    """The ``--json`` document of a diff."""
    from core.diff import KIND_TEXT

    def side(which: Any) -> dict[str, Any]:
        plan = which.plan
        return {"label": which.label, **which.info, "size": plan.size, "ssaframesize": plan.ssaframesize,
                "records": plan.record_count}

    return {
        "identical": report.identical,
        "a": side(report.a),
        "b": side(report.b),
        "parameters": [{"name": name, "a": a, "b": b} for name, a, b in _param_rows(report)],
        "ecreate": [{"field": d.name, "a": d.a, "b": d.b} for d in report.ecreate],
        "first_divergence": None if report.first is None else {
            "index": report.first.index,
            "reason": report.first.reason,
            "record_a": _record_json(report.first.record_a),
            "record_b": _record_json(report.first.record_b),
            "where": _location_json(report.first.where),
        },
        "pages": report.pages,
        "compared_pages": report.compared_pages,
        "groups": [{"kind": kind, "what": KIND_TEXT[kind], "where": where, "pages": pages, "stretches": count}
                   for kind, where, pages, count in report.groups()],
        "stretches": [
            {
                "kind": s.kind,
                "what": KIND_TEXT[s.kind],
                "offset": s.offset,
                "pages": s.pages,
                "flags_a": s.flags_a,
                "flags_b": s.flags_b,
                "record_a": s.record_a,
                "record_b": s.record_b,
                "where_a": _location_json(s.where_a),
                "where_b": _location_json(s.where_b),
                "chunks": s.chunks,
                "measured_by": s.measured_by,
                "description": s.describe(),
                "pages_detail": [
                    {"offset": d.offset, "chunks": d.chunks,
                     "chunk_offsets": [d.offset + c * 256 for c in d.chunks],
                     "first_byte": d.first_byte, "where": _location_json(d.location)}
                    for d in s.details
                ],
            }
            for s in report.stretches
        ],
        "elapsed": round(report.elapsed, 6),
    }


def diff_lines(report: Any, limit: int = DEFAULT_LIMIT) -> list[str]:
    """The text output of a diff."""
    from core.diff import KIND_TEXT

    lines = []
    width = max(len(report.a.label), len(report.b.label))
    for name, which in (("A", report.a), ("B", report.b)):
        plan = which.plan
        lines.append(f"{name}  {which.label:<{width}}  SIZE {plan.size:#x}  SSAFRAMESIZE {plan.ssaframesize}  "
                     f"{plan.record_count} records")
    if report.identical:
        lines.append("identical: the record streams are the same, so the MRENCLAVEs are equal")
        return lines
    rows = _param_rows(report)
    if rows:
        lines.append("parameters that differ: " + ", ".join(f"{name} {a} (A) vs {b} (B)" for name, a, b in rows))
    for difference in report.ecreate:
        shown = (lambda v: f"{v:#x}") if difference.name == "SIZE" else str
        lines.append(f"ECREATE differs: {difference.name} {shown(difference.a)} (A) vs {shown(difference.b)} (B)")
    first = report.first
    lines.append(f"first divergence: record {first.index}: {first.reason}")
    if first.record_a is not None or first.record_b is not None:
        lines.append(f"  A: {_record_text(first.record_a)}")
        lines.append(f"  B: {_record_text(first.record_b)}")
    if first.where is not None:
        lines.append(f"  at {first.where.describe()}")
    if not report.stretches:
        lines.append("no page differs: only ECREATE does")
        return lines
    counts = ", ".join(f"{pages} {KIND_TEXT[kind]}" for kind, pages in report.pages.items() if pages)
    lines.append(f"pages: {counts}")
    lines.append("by kind and place:")
    groups = report.groups()
    for kind, where, pages, count in groups[: max(limit, 1) if limit else len(groups)]:
        lines.append(f"  {KIND_TEXT[kind]:<22} {where:<44} {pages:>8} page{'s' if pages != 1 else ' '}"
                     f" in {count} stretch{'es' if count != 1 else ''}")
    if limit and len(groups) > limit:
        lines.append(f"  … and {len(groups) - limit} more groups")
    stretches = report.stretches
    shown = stretches if not limit else stretches[:limit]
    lines.append(f"stretches ({len(stretches)}" + (f", first {len(shown)}; --limit 0 or --json for all" if
                                                    len(shown) < len(stretches) else "") + "):")
    for stretch in shown:
        lines.append(f"  {stretch.describe()}")
        if stretch.kind == "content" and 1 < stretch.pages and stretch.details:
            for detail in stretch.details[:3]:
                chunks = ", ".join(str(c) for c in detail.chunks)
                lines.append(f"    page {detail.offset:#x}: chunks {chunks}; first byte {detail.first_byte:#x}"
                             + (f" in {detail.location.symbol}" if detail.location.symbol else ""))
            if stretch.pages > 3:
                lines.append(f"    … {stretch.pages - 3} more pages")
    return lines


# --------------------------------------------------------------------------------------------
# explain
# --------------------------------------------------------------------------------------------


def _space_from_args(args: argparse.Namespace) -> Any:
    from core.search import DEFAULT_MAX_CANDIDATES, DEFAULT_MAX_CHANGED, SEARCH_PARAMETERS, build_space

    ranges = {name: getattr(args, f"search_{name}") for name in SEARCH_PARAMETERS}
    fixed = [name.strip() for name in args.fix.split(",") if name.strip()]
    variants = ("sgx1", "edmm") if args.variant == "both" else (args.variant,)
    return build_space(ranges, fixed=fixed, variants=variants,
                       max_changed=DEFAULT_MAX_CHANGED if args.max_changed is None else args.max_changed,
                       max_candidates=DEFAULT_MAX_CANDIDATES if args.max_candidates is None else args.max_candidates)


def cmd_explain(args: argparse.Namespace, out: Any) -> int:
    """``ensign explain``."""
    from core.diagnose import explain, load_target, target_from_hex, target_from_signature
    from core.enclave import EnclaveBinary
    from tui.cli import params_from_args

    if _is_sdk_enclave(args.app):
        return _explain_sdk(args, out)
    binary = EnclaveBinary.open(args.app)
    params = params_from_args(args)
    space = _space_from_args(args)
    if args.mrenclave:
        target = target_from_hex(args.mrenclave)
    elif args.sig:
        target = load_target(args.sig)
    else:
        target = target_from_signature(binary)
    report = explain(binary, params, target, space, search=args.search, on_progress=_phase_progress(out))
    out.emit(explain_json(report, space), explain_lines(report))
    return EXIT_OK if report.effective_match else EXIT_NO


def _is_sdk_enclave(path: str) -> bool:
    """True for an ELF with a .note.sgxmeta section (an Intel SGX SDK enclave)."""
    from core.elf import load_elf
    from core.errors import EnsignError
    from core.sdk_metadata import NOTE_SECTION

    try:
        with load_elf(path) as image:
            return image.section_by_name(NOTE_SECTION) is not None
    except EnsignError:
        return False  # not an ELF: the ensign path reports the error


def _explain_sdk(args: argparse.Namespace, out: Any) -> int:
    """``explain`` on an Intel SDK enclave: search Enclave.config.xml elements (``sdk-explain``)."""
    from tui.cli_sdk import cmd_sdk_explain

    if args.sig:
        from core.diagnose import load_target

        hashes = list(load_target(args.sig).hashes)
        target_hex = hashes[0].hex() if hashes else None
    else:
        target_hex = args.mrenclave
    sdk_args = argparse.Namespace(
        enclave=args.app, mrenclave=target_hex, config=args.config, release=None, vary=args.vary,
        max_changed=min(args.max_changed or 2, 2), max_candidates=args.max_candidates or 5000,
        json=getattr(args, "json", False),
    )
    return cmd_sdk_explain(sdk_args, out)


def explain_json(report: Any, space: Any = None) -> dict[str, Any]:
    """The ``--json`` document of ``explain``."""
    search = report.search
    match = report.match
    return {
        "file": report.path,
        "target": {"origin": report.target.origin,
                   "mrenclave": [{"value": value.hex(), "variant": variant}
                                 for value, variant in report.target.hashes.items()],
                   "signed_params": report.target.signed_params.to_dict() if report.target.signed_params else None},
        "effective": {"params": report.effective.to_dict(),
                      "mrenclave": {variant: value.hex() for variant, value in report.effective_mrenclave.items()},
                      "matches": report.effective_match},
        "differences": [{"name": d.name, "signed": d.signed, "effective": d.effective, "source": d.source,
                         "affects_mrenclave": d.affects_mrenclave} for d in report.differences],
        "signed_params_match": report.signed_match,
        "image": {"status": report.image.status, "how": report.image.how,
                  "first_differing_page": _location_json(report.image.first),
                  "changed_pages": report.image.changed_pages, "pages": report.image.pages},
        "search": None if search is None else {
            "tried": search.tried, "candidates": search.candidates, "space_size": search.space_size,
            "capped": search.capped, "skipped": search.skipped, "elapsed": round(search.elapsed, 6),
            "candidates_per_second": round(search.rate, 1), "ecreate_groups": search.groups,
            "hashed_bytes": search.hashed_bytes,
            "match": None if search.match is None else {
                "variant": search.variant, "mrenclave": search.mrenclave.hex() if search.mrenclave else None,
                "params": {name: value["value"] for name, value in search.match.to_dict().items()
                           if SPECS[name].affects_mrenclave},
            },
            "space": space.describe() if space is not None else None,
        },
        "search_note": report.search_note,
        "explained": report.explained,
        "match": None if match is None else {name: value["value"] for name, value in match.to_dict().items()
                                             if SPECS[name].affects_mrenclave},
        "conclusion": list(report.conclusion),
        "elapsed": round(report.elapsed, 6),
    }


def explain_lines(report: Any) -> list[str]:
    """The text output of ``explain``."""
    lines = [f"target: {report.target.origin}"]
    lines.extend(f"  {line}" for line in report.target.describe())
    lines.append("effective parameters give:")
    for variant, value in report.effective_mrenclave.items():
        mark = "matches" if report.effective_match == variant else "differs"
        lines.append(f"  MRENCLAVE ({variant.upper()})  {value.hex()}  {mark}")
    if report.target.signed_params is not None:
        if report.differences:
            lines.append("signed vs effective parameters:")
            lines.extend(f"  {d.describe()}" for d in report.differences)
        else:
            lines.append("signed vs effective parameters: all equal")
    lines.append(f"image: {report.image.status} ({report.image.how})")
    if report.search is not None:
        search = report.search
        lines.append(f"search: {search.tried} candidate(s) in {search.elapsed:.2f} s ({search.rate:.0f}/s, "
                     f"{search.groups} SIZE/SSAFRAMESIZE group(s))"
                     + (f"; space capped at {search.candidates} of {search.space_size}" if search.capped else ""))
    elif report.search_note:
        lines.append(f"search: {report.search_note}")
    lines.append("conclusion:")
    lines.extend(f"  {line}" for line in report.conclusion)
    return lines


# --------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: Any) -> int:
    """``ensign check``."""
    from core.drift import check_drift
    from core.enclave import EnclaveBinary
    from core.sigstruct import Sigstruct
    from tui.cli import _read_file

    binary = EnclaveBinary.open(args.app)
    sigstruct = Sigstruct.from_bytes(_read_file(args.sig)) if args.sig else None
    variants = ("sgx1", "edmm") if args.variant == "both" else (args.variant,)
    report = check_drift(binary, os.environ, sigstruct=sigstruct, variants=variants,
                         on_progress=out.progress("measuring"))
    out.emit(check_json(report), check_lines(report))
    return EXIT_OK if report.ok else EXIT_NO


def check_json(report: Any) -> dict[str, Any]:
    """The ``--json`` document of ``check``."""

    def variable(item: Any) -> dict[str, Any]:
        return {"parameter": item.parameter, "variable": item.variable, "value": item.value,
                "runtime": item.runtime, "signed": item.signed, "affects_mrenclave": item.affects_mrenclave}

    return {
        "file": report.path,
        "ok": report.ok,
        "drifting": [variable(item) for item in report.drifting],
        "sigstruct_only": [variable(item) for item in report.sigstruct_only],
        "mrenclave": [{"variant": c.variant, "runtime": c.runtime.hex(), "signed": c.signed.hex(),
                       "matches": c.matches} for c in report.checks],
        "runtime_params": report.runtime.to_dict(),
        "signed_params": report.signed.to_dict() if report.signed is not None else None,
        "first_changed_page": _location_json(report.changed_page),
    }


def check_lines(report: Any) -> list[str]:
    """The text output of ``check``."""
    if report.ok:
        lines = [f"OK: {report.path} would start with its signed MRENCLAVE in this environment"]
        lines.extend(f"  MRENCLAVE ({c.variant.upper()})  {c.runtime.hex()}" for c in report.checks)
        if report.sigstruct_only:
            lines.append("  (differences that do not change MRENCLAVE: "
                         + "; ".join(item.describe() for item in report.sigstruct_only) + ")")
        return lines
    lines = [f"DRIFT: {report.path} would not start with its signed MRENCLAVE in this environment"]
    if report.drifting:
        lines.append("variables that drift:")
        lines.extend(f"  {item.describe()}" for item in report.drifting)
        lines.append("  set them to the signed values, or re-sign with this environment (ensign sign --env)")
    elif report.signed is None:
        lines.append("the SIGSTRUCT does not record the signed parameters: set SCONE_* to the values it was signed "
                     "with, or run 'ensign explain --sig FILE APP'")
    else:
        lines.append("no SCONE_* variable drifts: the program itself changed since it was signed")
        if report.changed_page is not None:
            lines.append(f"  first changed image {report.changed_page.describe()}")
    for check in report.checks:
        mark = "matches" if check.matches else "differs"
        lines.append(f"MRENCLAVE ({check.variant.upper()})  runtime {check.runtime.hex()}  {mark}")
        lines.append(f"{'':<17} signed  {check.signed.hex()}")
    return lines
