"""Intel SGX SDK what-if on the command line: ``hash --config``, ``sdk-explain``, ``sdk-diff --config``.

* ``ensign hash ENCLAVE --config Enclave.config.xml [--release X.Y]``: the MRENCLAVE ``sgx_sign`` of
  the enclave's SDK release would produce, from the signed ``enclave.signed.so`` or the plain
  ``enclave.so`` (no SDK needed); ``--sgxs-out`` writes the record stream.
* ``ensign sdk-explain ENCLAVE [--mrenclave HEX] [--config XML]``: search TCSNum, HeapMaxSize,
  StackMaxSize, TCSPolicy, TCSMinPool/TCSMaxNum and heap min/init for a configuration that
  reproduces a target (default: the enclave's signed ENCLAVEHASH, starting from ``--config``).
* ``ensign sdk-diff --config A.xml --config B.xml ENCLAVE``: the ECREATE values, layout entries and
  ``g_global_data`` fields that differ between two configurations (registered by
  ``tui.cli_formats``, which hands over here when ``--config`` is given).

Headless: no Textual import. Errors are :class:`~core.errors.EnsignError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import EnsignError

EXIT_OK = 0
EXIT_NO = 1

__all__ = [
    "add_sdk_hash_flags",
    "cmd_hash_sdk",
    "cmd_sdk_diff_configs",
    "cmd_sdk_explain",
    "global_data_lines",
    "layout_table_lines",
    "register",
    "whatif_json",
]


def add_sdk_hash_flags(parser: argparse.ArgumentParser) -> None:
    """``--config XML`` and ``--release X.Y`` for ``ensign hash`` (Intel SGX SDK what-if)."""
    group = parser.add_argument_group(
        "Intel SGX SDK enclaves (what-if: the MRENCLAVE sgx_sign would produce; signed or unsigned enclave.so)")
    group.add_argument("--config", metavar="XML", help="the Enclave.config.xml to sign with")
    group.add_argument("--release", metavar="X.Y",
                       help="the SDK release whose sgx_sign signs (default: the enclave's SGX_TSTDC_VERSION)")


# --------------------------------------------------------------------------------------------
# Formatting shared with ``ensign info --config``
# --------------------------------------------------------------------------------------------


def layout_table_lines(items: Sequence[Any], indent: str = "  ") -> list[str]:
    """The derived primary layout table, one entry or group per line."""
    from core.records import secinfo_text
    from core.sdk_metadata import LayoutGroup, page_attr_names

    lines = [f"{indent}{'#':>3} {'entry':<16} {'rva':>12} {'pages':>9}  {'SECINFO':<8} attributes"]
    for item in items:
        if isinstance(item, LayoutGroup):
            lines.append(f"{indent}{item.index:>3} {item.name:<16} repeats the {item.entry_count} entries above "
                         f"x{item.load_times}, step {item.load_step:#x}")
            continue
        secinfo = secinfo_text(item.si_flags) if item.si_flags else "-"
        attributes = "|".join(page_attr_names(item.attributes)) or "-"
        extra = ""
        if item.content_offset:
            extra = f"  template @{item.content_offset:#x}"
        elif item.content_size:
            extra = f"  fill {item.content_size:#010x}"
        lines.append(f"{indent}{item.index:>3} {item.name:<16} {item.rva:>#12x} {item.page_count:>9}  "
                     f"{secinfo:<8} {attributes}{extra}")
    return lines


def global_data_lines(fields: Sequence[Any], indent: str = "  ", *, zeros: bool = False) -> list[str]:
    """``g_global_data`` fields with their offsets (zero integer fields only when ``zeros``)."""
    lines = []
    for item in fields:
        if isinstance(item.value, int) and not item.value and not zeros and not item.name.startswith("layout"):
            continue
        lines.append(f"{indent}+{item.offset:<5} {item.name:<24} {item.text}")
    return lines


def whatif_json(result: Any) -> dict[str, Any]:
    """The JSON form of a :class:`core.sdk_whatif.WhatIf` (shared by ``hash`` and ``info``)."""
    from tui.info import _layout_item_json

    plan = result.plan
    return {
        "release": result.profile.release,
        "rules": result.profile.family,
        "global_data_t": result.profile.struct,
        "verified": result.profile.verified,
        "mrenclave": result.mrenclave or None,
        "size": result.enclave_size,
        "ssaframesize": result.ssa_frame_size,
        "xsave_size": result.xsave_size,
        "sgx2_metadata": result.layout.sgx2,
        "records": plan.counts(),
        "stream_bytes": plan.stream_size,
        "settings": result.settings,
        "config": dict(result.config.values),
        "template_source": result.template_source,
        "global_data_symbol": {"rva": result.global_data_symbol.rva, "file_offset": result.global_data_symbol.file_offset,
                               "size": result.global_data_symbol.size},
        "global_data": result.global_data.hex(),
        "global_data_fields": [{"name": f.name, "offset": f.offset, "size": f.size,
                                "value": f.value if isinstance(f.value, int) else f.value.hex(), "text": f.text}
                               for f in result.global_data_fields],
        "tcs_template": result.tcs_template.hex(),
        "primary_layout": [_layout_item_json(item) for item in result.layout.primary],
        "notes": list(result.notes),
    }


# --------------------------------------------------------------------------------------------
# hash --config
# --------------------------------------------------------------------------------------------


def _reject_scone_flags(args: argparse.Namespace) -> None:
    from core.params import PARAMETERS

    given = [spec.flag for spec in PARAMETERS if getattr(args, spec.name, None) not in (None, False)]
    if getattr(args, "edmm", False):
        given.append("--edmm")
    if given:
        raise EnsignError(f"{', '.join(given)} do not apply to Intel SGX SDK enclaves: edit the Enclave.config.xml "
                          "given with --config instead")


def cmd_hash_sdk(args: argparse.Namespace, out: Any) -> int:
    """``ensign hash ENCLAVE --config XML``: the MRENCLAVE sgx_sign would produce."""
    from core import elfedit
    from core.measure import Measurer
    from core.sdk_config import load_config
    from core.sdk_whatif import SdkWhatIf

    _reject_scone_flags(args)
    config = load_config(args.config)
    with SdkWhatIf.open(args.app, release=args.release) as session:
        if args.sgxs_out:
            result = session.predict(config, measure=False)
            written = []
            elfedit.atomic_write(args.sgxs_out, lambda handle: written.append(
                Measurer().measure(result.plan, sgxs_out=handle, on_progress=out.progress("measuring"))))
            from dataclasses import replace

            result = replace(result, measurement=written[0])
        else:
            result = session.predict(config, on_progress=out.progress("measuring"))
        signed = session.enclave.sigstruct.enclavehash.hex() if session.enclave.signed else None
    data = {"file": args.app, "kind": "sdk-whatif", "config_file": args.config, **whatif_json(result),
            "signed_enclavehash": signed, "matches_signed": None if signed is None else signed == result.mrenclave}
    if args.sgxs_out:
        data["sgxs_out"] = args.sgxs_out
    counts = result.plan.counts()
    if args.quiet:
        lines = [result.mrenclave]
    else:
        lines = [
            f"MRENCLAVE  {result.mrenclave}",
            f"predicted: sgx_sign of {result.profile.label} with {args.config} "
            f"(release {result.profile.release}, rules of SDK {result.profile.family})",
            f"SIZE {result.enclave_size:#x}  SSAFRAMESIZE {result.ssa_frame_size}  records: {counts['EADD']} EADD, "
            f"{counts['EEXTEND']} EEXTEND",
        ]
        if signed is not None:
            lines.append("the enclave's signed ENCLAVEHASH " + ("is the same" if signed == result.mrenclave
                                                                  else f"differs: {signed}"))
        else:
            lines.append("the enclave is not signed: g_global_data and the TCS template were built from zero")
        if args.sgxs_out:
            lines.append(f"record stream written to {args.sgxs_out}")
        lines += [f"note: {note}" for note in result.notes]
    out.emit(data, lines)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# sdk-diff --config A --config B ENCLAVE
# --------------------------------------------------------------------------------------------


def cmd_sdk_diff_configs(args: argparse.Namespace, out: Any) -> int:
    """``ensign sdk-diff --config A.xml [--config B.xml] ENCLAVE``: what two configurations change.

    With one ``--config`` the other side is the configuration the enclave was signed with
    (recovered from its metadata).
    """
    from core.sdk_config import load_config
    from core.sdk_whatif import SdkWhatIf, compare_whatifs

    configs = list(args.config or [])
    if args.b is not None:
        raise EnsignError("sdk-diff --config compares configurations of one enclave: give one ENCLAVE")
    if not 1 <= len(configs) <= 2:
        raise EnsignError("sdk-diff: give --config once (against the signed configuration) or twice")
    with SdkWhatIf.open(args.a, release=args.release) as session:
        if len(configs) == 1:
            if not session.enclave.signed:
                raise EnsignError(f"{args.a} is not signed: give two --config files to compare")
            names = ("signed", configs[0])
            first = session.predict(session.baseline())
            second = session.predict(load_config(configs[0]))
        else:
            names = (configs[0], configs[1])
            first = session.predict(load_config(configs[0]))
            second = session.predict(load_config(configs[1]))
    diff = compare_whatifs(first, second)
    identical = not (diff.settings or diff.ecreate or diff.layout or diff.global_data) and diff.same_mrenclave
    data = {
        "enclave": args.a,
        "a": names[0],
        "b": names[1],
        "release": first.profile.release,
        "verified": first.profile.verified,
        "mrenclave": {"a": diff.mrenclave_a, "b": diff.mrenclave_b},
        "same_mrenclave": diff.same_mrenclave,
        "settings": list(diff.settings),
        "ecreate": list(diff.ecreate),
        "layout": list(diff.layout),
        "global_data": list(diff.global_data),
    }
    lines = [f"enclave {args.a} ({first.profile.label})", f"A: {names[0]}", f"B: {names[1]}",
             f"MRENCLAVE  A {diff.mrenclave_a}", f"           B {diff.mrenclave_b}"
             + ("  (same)" if diff.same_mrenclave else "")]
    if identical:
        lines.append("no difference in the configuration's effect")
    for title, items in (("configuration", diff.settings), ("ECREATE", diff.ecreate), ("layout entries", diff.layout),
                         ("g_global_data fields", diff.global_data)):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  {item}" for item in items]
    if diff.settings and not (diff.ecreate or diff.layout or diff.global_data):
        lines.append("only unmeasured elements differ (SIGSTRUCT fields or metadata only)")
    out.emit(data, lines)
    return EXIT_OK if diff.same_mrenclave else EXIT_NO


# --------------------------------------------------------------------------------------------
# sdk-explain
# --------------------------------------------------------------------------------------------

EXPLAIN_DESCRIPTION = """\
Search Intel SGX SDK configuration parameters for a configuration whose sgx_sign MRENCLAVE
is the target. The target is --mrenclave, else the enclave's signed ENCLAVEHASH. The search
starts from --config (default: the configuration the enclave was signed with, recovered from
its metadata, or the SDK defaults for an unsigned enclave.so) and changes at most
--max-changed of TCSNum, HeapMaxSize, StackMaxSize, TCSPolicy, TCSMinPool, TCSMaxNum,
HeapMinSize, HeapInitSize. Every candidate is predicted exactly, re-hashing only from
g_global_data on. Exit 0 when a configuration reproduces the target, 1 otherwise."""


def cmd_sdk_explain(args: argparse.Namespace, out: Any) -> int:
    """``ensign sdk-explain ENCLAVE``."""
    from core.sdk_config import load_config
    from core.sdk_whatif import SEARCH_ELEMENTS, SdkWhatIf, config_xml, search_sdk_parameters

    elements = tuple(name.strip() for name in args.vary.split(",") if name.strip()) if args.vary else SEARCH_ELEMENTS
    with SdkWhatIf.open(args.enclave, release=args.release) as session:
        if args.mrenclave:
            target = args.mrenclave
            origin = "--mrenclave"
        elif session.enclave.signed:
            target = session.enclave.sigstruct.enclavehash.hex()
            origin = "the enclave's signed ENCLAVEHASH"
        else:
            raise EnsignError(f"{args.enclave} is not signed: give the target with --mrenclave HEX")
        baseline = load_config(args.config) if args.config else None
        result = search_sdk_parameters(session, target, baseline=baseline, elements=elements,
                                       max_changed=args.max_changed, max_candidates=args.max_candidates,
                                       on_progress=out.progress("searching"))
        profile = session.profile
    data = {
        "enclave": args.enclave,
        "release": profile.release,
        "verified": profile.verified,
        "target": {"mrenclave": result.target, "origin": origin},
        "baseline": {"config": dict(result.baseline.values), "origin": result.baseline.origin,
                     "mrenclave": result.baseline_mrenclave},
        "match": None if result.match is None else dict(result.match.values),
        "changes": list(result.changes),
        "tried": result.tried,
        "refused": result.refused,
        "exhausted": result.exhausted,
        "elapsed": round(result.elapsed, 3),
    }
    lines = [f"target     {result.target} ({origin})",
             f"baseline   {result.baseline_mrenclave} ({result.baseline.origin}, {profile.label})"]
    if result.match is not None and not result.changes:
        lines.append("the baseline configuration already produces the target")
    elif result.match is not None:
        lines.append(f"FOUND after {result.tried} configurations ({result.elapsed:.1f} s): " + "; ".join(result.changes))
        lines.append("configuration:")
        lines += ["  " + line for line in config_xml(result.match).splitlines()]
    else:
        lines.append(f"no configuration found: {result.tried} tried, {result.refused} refused by sgx_sign's rules, "
                     f"{result.elapsed:.1f} s" + ("" if result.exhausted else " (stopped at --max-candidates)"))
        lines.append("the difference may lie elsewhere: code or data (the image), another SDK release, or "
                     "parameters not searched (use --vary, --max-changed)")
    out.emit(data, lines)
    return EXIT_OK if result.match is not None else EXIT_NO


def register(sub: Any, command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add ``sdk-explain`` to the ensign CLI (``sdk-diff --config`` lives in ``tui.cli_formats``)."""
    p = command("sdk-explain", "search SDK config parameters for a target MRENCLAVE", EXPLAIN_DESCRIPTION)
    p.add_argument("--mrenclave", metavar="HEX", help="the target MRENCLAVE (default: the signed ENCLAVEHASH)")
    p.add_argument("--config", metavar="XML", help="the configuration to start from")
    p.add_argument("--release", metavar="X.Y", help="the SDK release whose sgx_sign signs (default: detected)")
    p.add_argument("--vary", metavar="NAMES",
                   help="comma-separated elements to vary (default: TCSNum,HeapMaxSize,StackMaxSize,TCSPolicy,"
                        "TCSMinPool,TCSMaxNum,HeapMinSize,HeapInitSize)")
    p.add_argument("--max-changed", type=int, default=2, choices=(1, 2), help="elements changed at once (default 2)")
    p.add_argument("--max-candidates", type=int, default=5000, metavar="N", help="stop after N configurations (default 5000)")
    p.add_argument("enclave", metavar="ENCLAVE", help="an SDK enclave (enclave.signed.so or enclave.so)")
    p.set_defaults(handler=cmd_sdk_explain)
