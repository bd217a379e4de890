"""Subcommands for real-world enclave formats: ``resign``, ``sdk-config`` and ``sdk-diff``.

* ``ensign resign``: re-sign an Intel SGX SDK enclave with another key, date, ISVPRODID/ISVSVN or
  DEBUG policy; the new SIGSTRUCT goes into every metadata block, every other byte is kept.
* ``ensign sdk-config``: read an ``Enclave.config.xml`` as ``sgx_sign`` does, derive the layout
  table for an enclave and say which entries of its metadata differ (exit 1 when any does).
* ``ensign sdk-diff``: name what differs between two SDK enclaves: metadata fields, SIGSTRUCT
  fields, layout entries, measured pages with their sections and symbols (exit 1 when any does).

Headless: no Textual import. Errors are :class:`~core.errors.EnsignError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import datetime as _dt
from collections.abc import Callable
from typing import Any

from core.errors import ParamError, SdkError, SigningKeyError

EXIT_OK = 0
EXIT_NO = 1


def _date_argument(text: str | None) -> _dt.date | int | None:
    """``--date``: YYYY-MM-DD / YYYYMMDD, ``keep`` (None) or ``today``."""
    from tui.cli import parse_date

    if text is None or text == "today":
        return _dt.datetime.now(_dt.UTC).date()
    if text == "keep":
        return None
    try:
        return parse_date(text)
    except ParamError:
        raise ParamError(f"--date: '{text}' is not a date (use YYYY-MM-DD, 'today' or 'keep')") from None


def _small_int(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 0)
    except ValueError:
        raise ParamError(f"{flag}: '{text}' is not a number") from None
    if not 0 <= value <= 0xFFFF:
        raise ParamError(f"{flag}: {value} is outside 0..65535")
    return value


def _signer(args: argparse.Namespace) -> Any:
    from core import signing

    try:
        from tui.cli_production import open_pkcs11_signer, pkcs11_requested
    except ImportError:  # pragma: no cover - the production commands are optional
        pkcs11_requested = None  # type: ignore[assignment]
    if pkcs11_requested is not None and pkcs11_requested(args):
        if args.key:
            raise SigningKeyError("two signing keys given: --key and --pkcs11-*; give one")
        return open_pkcs11_signer(args)
    if not args.key:
        raise SigningKeyError("resign needs the new key: give --key PEM (or --pkcs11-*)")
    from tui.cli import read_passphrase

    key = signing.load_private_key(args.key, passphrase_callback=read_passphrase(args, args.key))
    signing.check_signing_key(key, name=args.key)
    return signing.KeySigner(key)


def cmd_resign(args: argparse.Namespace, out: Any) -> int:
    """``ensign resign``."""
    from core.sdk import SdkEnclave
    from core.sdk_sign import resign_sdk_enclave

    date = _date_argument(args.date)
    disable_debug = True if args.disable_debug else (False if args.enable_debug else None)
    signer = _signer(args)
    try:
        with SdkEnclave.open(args.enclave) as enclave:
            if not enclave.signed:
                raise SdkError(f"{args.enclave}: not signed yet (empty metadata note): sign it with sgx_sign first")
            result = resign_sdk_enclave(
                enclave,
                signer,
                output=args.output,
                date=date,
                isvprodid=_small_int(args.isvprodid, "--isvprodid"),
                isvsvn=_small_int(args.isvsvn, "--isvsvn"),
                disable_debug=disable_debug,
                on_progress=out.progress("measuring"),
            )
    finally:
        close = getattr(signer, "close", None)
        if close is not None:
            close()
    sig = result.sigstruct
    data = {
        "file": result.output,
        "blocks": result.blocks,
        "mrenclave": result.mrenclave,
        "previous_enclavehash": result.previous_enclavehash,
        "enclavehash_changed": result.enclavehash_changed,
        "mrsigner": result.mrsigner,
        "date": f"{sig.date:08x}",
        "isvprodid": sig.isvprodid,
        "isvsvn": sig.isvsvn,
        "attributemask_flags": f"0x{sig.attributemask_flags:016x}",
    }
    lines = [
        f"re-signed {result.output}" + ("" if args.output else " (in place)")
        + f": new SIGSTRUCT in {result.blocks} metadata block(s), every other byte unchanged",
        f"MRENCLAVE  {result.mrenclave}",
        f"MRSIGNER   {result.mrsigner}",
        f"DATE {sig.date:08x}  ISVPRODID {sig.isvprodid}  ISVSVN {sig.isvsvn}  "
        f"ATTRIBUTEMASK {sig.attributemask_flags:#018x}",
    ]
    if result.enclavehash_changed:
        lines.append(f"note: the old ENCLAVEHASH was {result.previous_enclavehash}; the pages changed since it was signed")
    out.emit(data, lines)
    return EXIT_OK


def cmd_sdk_config(args: argparse.Namespace, out: Any) -> int:
    """``ensign sdk-config``."""
    from tui.info import describe_file

    data, lines = describe_file(args.enclave, config=args.config, release=args.release)
    report = data.get("config") or {}
    out.emit(report | {"enclave": args.enclave}, _config_lines(lines))
    comparisons = report.get("comparison", [])
    return EXIT_OK if all(item["equal"] for item in comparisons) else EXIT_NO


def _config_lines(lines: list[str]) -> list[str]:
    """The ``configuration ...`` part of the info text."""
    start = next((index for index, line in enumerate(lines) if line.startswith("configuration ")), None)
    if start is None:
        return lines
    end = next((index for index in range(start + 1, len(lines)) if not lines[index].startswith("  ")), len(lines))
    return [lines[0], *lines[start:end]]


def cmd_sdk_diff(args: argparse.Namespace, out: Any) -> int:
    """``ensign sdk-diff``."""
    from core.sdk import SdkEnclave, compare_sdk_enclaves

    if args.config:
        from tui.cli_sdk import cmd_sdk_diff_configs  # two configurations of one enclave (what-if)

        return cmd_sdk_diff_configs(args, out)
    if args.b is None:
        raise SdkError("sdk-diff: give two enclaves (A B), or --config A.xml [--config B.xml] ENCLAVE")
    with SdkEnclave.open(args.a) as first, SdkEnclave.open(args.b) as second:
        result = compare_sdk_enclaves(first, second, limit=args.limit)
    data = {
        "a": result.path_a,
        "b": result.path_b,
        "identical": result.identical,
        "mrenclave": {"a": result.mrenclave_a, "b": result.mrenclave_b},
        "metadata": list(result.metadata),
        "sigstruct": list(result.sigstruct),
        "layout": list(result.layout),
        "page_count": result.page_count,
        "pages": [{"offset": p.offset, "pages": p.pages, "change": p.change, "a": p.where_a, "b": p.where_b}
                  for p in result.pages],
        "sections": list(result.sections),
        "symbols": list(result.symbols),
    }
    lines = [f"A: {result.path_a}", f"B: {result.path_b}"]
    if result.identical:
        lines.append("identical: same measured pages, metadata and SIGSTRUCT fields")
    else:
        lines.append(f"MRENCLAVE  A {result.mrenclave_a or '-'}")
        lines.append(f"           B {result.mrenclave_b or '-'}")
        for title, items in (("metadata", result.metadata), ("SIGSTRUCT", result.sigstruct), ("layout", result.layout)):
            if items:
                lines.append(f"{title} differences:")
                lines += [f"  {item}" for item in items]
        if result.page_count:
            lines.append(f"{result.page_count} measured page(s) differ"
                         + (f" (first {len(result.pages)} listed)" if len(result.pages) < result.page_count else "") + ":")
            for page in result.pages:
                lines.append(f"  {page.offset:#10x} {page.change:<18} A: {page.where_a or '-'}")
                if page.where_b and page.where_b != page.where_a:
                    lines.append(f"  {'':>10} {'':<18} B: {page.where_b}")
            if result.sections:
                lines.append("sections: " + ", ".join(result.sections))
            if result.symbols:
                lines.append("symbols: " + ", ".join(result.symbols))
    out.emit(data, lines)
    return EXIT_OK if result.identical else EXIT_NO


def register(sub: Any, command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add ``resign``, ``sdk-config`` and ``sdk-diff`` to the ensign CLI."""
    p = command(
        "resign",
        "re-sign an Intel SGX SDK enclave (new key, date, ISVPRODID/ISVSVN)",
        "Measure ENCLAVE as the SDK loader does, sign a new SIGSTRUCT and write it into every\n"
        "metadata block of .note.sgxmeta; every other byte stays the same (atomic write). With the\n"
        "enclave's own key and date the result is byte-identical to what sgx_sign wrote.",
    )
    p.add_argument("--key", metavar="PEM", help="the new signing key (RSA-3072, e=3)")
    p.add_argument("--passphrase-file", metavar="FILE", help="read the key's passphrase from FILE")
    p.add_argument("--date", help="SIGSTRUCT DATE: YYYY-MM-DD, 'today' (default) or 'keep'")
    p.add_argument("--isvprodid", metavar="N", help="new ISVPRODID (default: keep)")
    p.add_argument("--isvsvn", metavar="N", help="new ISVSVN (default: keep)")
    debug = p.add_mutually_exclusive_group()
    debug.add_argument("--disable-debug", action="store_true",
                       help="enforce DEBUG=0 through ATTRIBUTEMASK (as DisableDebug=1; MRENCLAVE unchanged)")
    debug.add_argument("--enable-debug", action="store_true", help="stop enforcing DEBUG in ATTRIBUTEMASK")
    p.add_argument("--output", "-o", metavar="FILE", help="write the re-signed enclave to FILE (default: in place)")
    try:
        from tui.cli_production import add_pkcs11_flags

        add_pkcs11_flags(p)
    except ImportError:  # pragma: no cover
        pass
    p.add_argument("enclave", metavar="ENCLAVE", help="a signed SDK enclave (enclave.signed.so)")
    p.set_defaults(handler=cmd_resign)

    p = command(
        "sdk-config",
        "derive an SDK enclave's layout from Enclave.config.xml and compare",
        "Read Enclave.config.xml as sgx_sign does (strtoull values, unknown elements refused), show\n"
        "the parameters, derive the layout table for ENCLAVE with the sgx_sign rules of its SDK\n"
        "release, and name the metadata entries that differ. Exit 0 when every block matches, 1 when not.",
    )
    p.add_argument("--config", required=True, metavar="XML", help="the Enclave.config.xml")
    p.add_argument("--release", metavar="X.Y", help="apply the rules of this SDK release (default: the enclave's)")
    p.add_argument("enclave", metavar="ENCLAVE", help="an SDK enclave (signed or not)")
    p.set_defaults(handler=cmd_sdk_config)

    p = command(
        "sdk-diff",
        "name what differs between two SDK enclaves, or two configs of one",
        "Compare two signed SDK enclaves (e.g. two builds of the same source): metadata fields,\n"
        "SIGSTRUCT fields, layout entries, and the measured pages that differ with their sections\n"
        "and symbols. With --config A.xml --config B.xml ENCLAVE: the predicted MRENCLAVEs and the\n"
        "ECREATE values, layout entries and g_global_data fields the two configurations set\n"
        "differently (one --config: against the configuration ENCLAVE was signed with).\n"
        "Exit 0 when identical (same MRENCLAVE), 1 when not.",
    )
    p.add_argument("--limit", type=int, default=200, help="list at most this many pages (default 200)")
    p.add_argument("--config", action="append", metavar="XML",
                   help="compare what-if predictions for this Enclave.config.xml (give it once or twice)")
    p.add_argument("--release", metavar="X.Y", help="with --config: the SDK release that signs (default: detected)")
    p.add_argument("a", metavar="A", help="an SDK enclave (with --config: the enclave, signed or not)")
    p.add_argument("b", metavar="B", nargs="?", help="the second SDK enclave")
    p.set_defaults(handler=cmd_sdk_diff)
