"""The ``ensign`` command line: scone-signer compatible ``sign`` plus hash, info, verify, keygen, inspect.

Headless commands never import Textual; ``inspect`` imports the app lazily. Every command
takes ``--json``. Bad input is one line on stderr (``ensign: <message>``) and exit 2,
never a traceback; ``verify``/``check`` exit 1 when the answer is "no".
"""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from core.errors import EnsignError, ParamError, SigningKeyError
from core.params import PARAMETERS, SPECS, Params, format_size, resolve_params

# Modules that add subcommands: each has ``register(subparsers, command)`` where
# ``command(name, help, description)`` returns a parser that already has --json, and sets
# ``handler=fn(args, out) -> exit code`` on it.
COMMAND_MODULES: tuple[str, ...] = ("tui.cli_production", "tui.cli_formats", "tui.cli_diagnose", "tui.cli_sdk")

EXIT_OK = 0
EXIT_NO = 1
EXIT_USAGE = 2

PROG_DESCRIPTION = """\
ensign inspects, diagnoses and signs Intel SGX enclaves.

Signing is compatible with SCONE's `scone-signer sign [flags] APP`: the same flags,
sizes with K/M/G suffixes, SCONE_* environment variables when --env is given (flags
override them), and a built-in debug key when no --key is given."""

EPILOG = """\
examples:
  ensign hash --heap 128M --tcs 4 ./app          MRENCLAVE this binary would have
  ensign sign --env --key signer.pem ./app       sign in place (SCONE_* variables read)
  ensign verify ./app                            re-measure and check the signature
  ensign info ./app                              every SIGSTRUCT field, decoded
  ensign inspect ./app                           the terminal UI (live MRENCLAVE)
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"ensign: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


class Output:
    """Where results go: text lines or one JSON document, plus a progress bar on stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.show_progress = not as_json and sys.stderr.isatty()

    def emit(self, data: dict[str, Any], lines: Sequence[str]) -> None:
        """Print ``data`` as JSON or ``lines`` as text."""
        if self.as_json:
            print(json.dumps(data, indent=2, sort_keys=False))
        else:
            for line in lines:
                print(line)

    def progress(self, label: str) -> Callable[[int, int], None] | None:
        """A progress callback drawing a bar on stderr once work takes longer than 0.3 s."""
        if not self.show_progress:
            return None
        started = time.monotonic()
        state = {"drawn": False}

        def callback(done: int, total: int) -> None:
            if time.monotonic() - started < 0.3 and done < total:
                return
            if done >= total and not state["drawn"]:
                return
            width = 30
            filled = int(width * done / total) if total else width
            bar = "█" * filled + "░" * (width - filled)
            sys.stderr.write(f"\r{label} {bar} {100 * done // max(total, 1):3d}%")
            state["drawn"] = True
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        return callback


# --------------------------------------------------------------------------------------------
# argument handling
# --------------------------------------------------------------------------------------------


def add_param_flags(parser: argparse.ArgumentParser) -> None:
    """The scone-signer flags, each defaulting to None (= not given)."""
    group = parser.add_argument_group("enclave parameters (scone-signer compatible)")
    for spec in PARAMETERS:
        default_text = (
            format_size(spec.default) if spec.kind == "size" else
            ("built-in debug key" if spec.kind == "path" else str(spec.default))
        )
        help_text = f"{spec.help} [default {default_text}; env {spec.env}]"
        if spec.kind == "bool":
            group.add_argument(spec.flag, dest=spec.name, action="store_true", default=None, help=help_text)
        else:
            metavar = {"size": "SIZE", "path": "PEM"}.get(spec.kind, "N")
            group.add_argument(spec.flag, dest=spec.name, metavar=metavar, default=None, help=help_text)
    group.add_argument("--env", action="store_true",
                       help="also read the SCONE_* environment variables (flags override them)")


def params_from_args(args: argparse.Namespace, base: Params | None = None) -> Params:
    """Effective parameters from flags (+ environment with --env)."""
    flags = {spec.name: getattr(args, spec.name, None) for spec in PARAMETERS}
    return resolve_params(flags, environ=os.environ, use_env=bool(getattr(args, "env", False)), base=base)


def parse_date(text: str | None) -> _dt.date | None:
    """``--date YYYY-MM-DD`` (or YYYYMMDD)."""
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return _dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ParamError(f"--date: '{text}' is not a date (use YYYY-MM-DD)")


def read_passphrase(args: argparse.Namespace, key_path: str) -> Callable[[], bytes]:
    """A callback giving the key's passphrase: from --passphrase-file, else a no-echo prompt."""

    def callback() -> bytes:
        if getattr(args, "passphrase_file", None):
            try:
                return Path(args.passphrase_file).read_bytes().rstrip(b"\r\n")
            except OSError as error:
                raise SigningKeyError(f"--passphrase-file: cannot read {args.passphrase_file}: {error.strerror}") from None
        if not sys.stdin.isatty():
            raise SigningKeyError(f"{key_path} is encrypted: give --passphrase-file (no terminal to prompt on)")
        return getpass.getpass(f"passphrase for {key_path}: ").encode()

    return callback


def load_signer(args: argparse.Namespace, params: Params):
    """The signer for ``sign``: a PKCS#11 token key, --key/SCONE_KEY, or the built-in debug key.

    Returns:
        ``(signer, debug_key)``. A PKCS#11 signer holds a session: close it (``signer.close()``)
        when done.

    Raises:
        SigningKeyError: --production with the debug key, or --key together with --pkcs11-*.
    """
    from core import signing
    from tui.cli_production import open_pkcs11_signer, pkcs11_requested

    if pkcs11_requested(args):
        if params.key:
            raise SigningKeyError(f"two signing keys given: --key/SCONE_KEY ({params.key}) and --pkcs11-*; give one")
        return open_pkcs11_signer(args), False
    if params.key:
        key = signing.load_private_key(params.key, passphrase_callback=read_passphrase(args, params.key))
        signing.check_signing_key(key, name=params.key)
        return signing.KeySigner(key), False
    if params.production:
        raise SigningKeyError(
            "--production with the built-in debug key is refused: its private key is public; give --key "
            "(or --pkcs11-*, or --export-signing-data to sign elsewhere)"
        )
    return signing.KeySigner(signing.load_debug_key()), True


def params_lines(params: Params) -> list[str]:
    """Effective parameters with their sources, one per line."""
    lines = []
    for spec in PARAMETERS:
        value = getattr(params, spec.name)
        if spec.kind == "size":
            shown = format_size(value)
        elif spec.kind == "xfrm":
            shown = f"{value:#x}"
        elif spec.kind == "path":
            shown = value or "(built-in debug key)"
        else:
            shown = str(int(value)) if isinstance(value, bool) else str(value)
        mark = "" if spec.affects_mrenclave else "  (SIGSTRUCT only)"
        lines.append(f"  {spec.name:<10} {shown:<22} {params.source(spec.name)}{mark}")
    return lines


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


def cmd_hash(args: argparse.Namespace, out: Output) -> int:
    from core.enclave import EnclaveBinary
    from core.layout import VARIANT_EDMM, VARIANT_SGX1

    if args.config:
        from tui.cli_sdk import cmd_hash_sdk  # what-if: the MRENCLAVE sgx_sign would produce

        return cmd_hash_sdk(args, out)
    fixed = _hash_container(args, out)  # SDK enclaves, .sgxs streams: their layout is not ours to choose
    if fixed is not None:
        return fixed
    binary = EnclaveBinary.open(args.app)
    params = params_from_args(args)
    variant = VARIANT_EDMM if args.edmm else VARIANT_SGX1
    layout = binary.layout(params, variant)
    if args.sgxs_out:
        from core import elfedit
        from core.measure import Measurer

        written = []
        elfedit.atomic_write(args.sgxs_out, lambda handle: written.append(
            Measurer().measure(layout.plan, sgxs_out=handle, on_progress=out.progress("measuring"))))
        measurement = written[0]
    else:
        measurement = binary.measurer.measure(layout.plan, on_progress=out.progress("measuring"))
    data = {
        "file": args.app,
        "variant": variant,
        "mrenclave": measurement.hex,
        "size": layout.size,
        "ssaframesize": layout.ssaframesize,
        "records": measurement.counts,
        "params": params.to_dict(),
    }
    if args.sgxs_out:
        data["sgxs_out"] = args.sgxs_out
    lines = [measurement.hex] if args.quiet else [
        f"MRENCLAVE ({variant.upper()})  {measurement.hex}",
        f"SIZE {layout.size:#x}  SSAFRAMESIZE {layout.ssaframesize}  "
        f"records: {measurement.counts['EADD']} EADD, {measurement.counts['EEXTEND']} EEXTEND",
        "parameters:",
        *params_lines(params),
    ]
    if args.sgxs_out and not args.quiet:
        lines.append(f"record stream written to {args.sgxs_out}")
    out.emit(data, lines)
    return EXIT_OK


def cmd_sign(args: argparse.Namespace, out: Output) -> int:
    import contextlib

    from core.enclave import EnclaveBinary, build_signature, today_utc, write_signature

    if args.export_signing_data or args.export_digest:
        from tui.cli_production import cmd_export

        return cmd_export(args, out)
    if args.config:
        from tui.cli_sdk_sign import cmd_sign_sdk  # Intel SGX SDK enclave signed like sgx_sign

        return cmd_sign_sdk(args, out)
    date = parse_date(args.date)
    binary = EnclaveBinary.open(args.app)
    params = params_from_args(args)
    with contextlib.ExitStack() as stack:
        signer, debug_key = load_signer(args, params)
        if hasattr(signer, "close"):
            stack.callback(signer.close)
        pair = binary.measure_pair(params, on_progress=out.progress("measuring"))
        signature = build_signature(binary, pair, signer, date or today_utc())
        describe = getattr(signer, "describe", None)
        signer_text = describe() if callable(describe) else (params.key or "built-in debug key")
    target = write_signature(binary, signature, output=args.output, sig_out=args.sig_out)
    mrsigner = signature.sgx1.mrsigner
    data = {
        "file": target,
        "mrenclave": {"sgx1": pair.sgx1_measurement.hex, "edmm": pair.edmm_measurement.hex},
        "mrsigner": mrsigner,
        "debug_key": debug_key,
        "signer": signer_text,
        "date": f"{signature.date:08x}",
        "size": pair.sgx1.size,
        "ssaframesize": pair.sgx1.ssaframesize,
        "params": params.to_dict(),
        "sig_out": args.sig_out,
    }
    lines = [
        f"signed {target}" + ("" if args.output else " (in place)"),
        f"MRENCLAVE (SGX1)  {pair.sgx1_measurement.hex}",
        f"MRENCLAVE (EDMM)  {pair.edmm_measurement.hex}",
        f"MRSIGNER          {mrsigner}" + ("  (built-in DEBUG key: not for production)" if debug_key else ""),
        f"SIZE {pair.sgx1.size:#x}  SSAFRAMESIZE {pair.sgx1.ssaframesize}  DATE {signature.date:08x}",
        f"signer            {signer_text}",
        "parameters:",
        *params_lines(params),
    ]
    if args.sig_out:
        lines.append(f"SGX1 SIGSTRUCT written to {args.sig_out}")
    out.emit(data, lines)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    from core.enclave import EnclaveBinary, verify_enclave
    from core.sigstruct import Sigstruct

    sigstruct = None
    if args.sig:
        sigstruct = Sigstruct.from_bytes(_read_file(args.sig))
    fixed = _verify_container(args, out, sigstruct)
    if fixed is not None:
        return fixed
    binary = EnclaveBinary.open(args.app)
    params = params_from_args(args) if binary.signature is None else None
    result = verify_enclave(binary, sigstruct=sigstruct, params=params, on_progress=out.progress("measuring"))
    data = {
        "file": args.app,
        "ok": result.ok,
        "variant": result.variant,
        "expected": result.expected,
        "computed": result.computed,
        "signature_valid": result.signature_valid,
        "mrsigner": result.mrsigner,
        "problems": list(result.problems),
        "first_changed_page": (
            {"offset": result.first_changed_page.offset, "description": result.first_changed_page.describe()}
            if result.first_changed_page else None
        ),
    }
    if result.ok:
        lines = [f"OK: {args.app} measures to its signed MRENCLAVE and the signature is valid",
                 f"MRENCLAVE ({result.variant.upper()})  {result.computed}", f"MRSIGNER          {result.mrsigner}"]
    else:
        lines = [f"FAILED: {args.app}", *(f"  {problem}" for problem in result.problems)]
    out.emit(data, lines)
    return EXIT_OK if result.ok else EXIT_NO


def cmd_info(args: argparse.Namespace, out: Output) -> int:
    from tui.info import describe_file

    data, lines = describe_file(args.file, config=args.config, release=args.release)
    out.emit(data, lines)
    return EXIT_OK


def _hash_container(args: argparse.Namespace, out: Output) -> int | None:
    """``hash`` for files whose layout is fixed (SDK enclaves, .sgxs); None for ensign programs."""
    from core.containers import hash_file

    result = hash_file(args.app, sgxs_out=args.sgxs_out, on_progress=out.progress("measuring"))
    if result is None:
        return None
    measurement = result.measurement
    data = {"file": args.app, "kind": result.kind, "mrenclave": measurement.hex, "size": measurement.size,
            "ssaframesize": measurement.ssaframesize, "records": measurement.counts,
            "enclavehash": result.expected or None, "matches": result.matches}
    if args.sgxs_out:
        data["sgxs_out"] = args.sgxs_out
    lines = [measurement.hex] if args.quiet else [
        f"MRENCLAVE  {measurement.hex}",
        result.title,
        f"SIZE {measurement.size:#x}  SSAFRAMESIZE {measurement.ssaframesize}  records: "
        f"{measurement.counts['EADD']} EADD, {measurement.counts['EEXTEND']} EEXTEND",
    ]
    if not args.quiet and result.expected:
        lines.append("ENCLAVEHASH of its SIGSTRUCT " + ("matches" if result.matches else f"DIFFERS: {result.expected}"))
    if args.sgxs_out and not args.quiet:
        lines.append(f"record stream written to {args.sgxs_out}")
    out.emit(data, lines)
    return EXIT_OK


def _verify_container(args: argparse.Namespace, out: Output, sigstruct) -> int | None:
    """``verify`` for SDK/OE enclaves, .sgxs streams, SIGSTRUCTs and tokens; None for ensign programs."""
    from core.containers import verify_file

    result = verify_file(args.app, sigstruct=sigstruct, on_progress=out.progress("measuring"))
    if result is None:
        return None
    data = {"file": args.app, "kind": result.kind, "ok": result.ok, "measured": result.measured,
            "expected": result.expected, "computed": result.computed or None,
            "signature_valid": result.signature_valid, "mrsigner": result.mrsigner,
            "problems": list(result.problems), "notes": list(result.notes),
            "checks": [{"label": c.label, "enclavehash": c.enclavehash, "signature_valid": c.signature_valid,
                        "matches_measurement": c.matches_measurement, "warnings": list(c.warnings)}
                       for c in result.checks]}
    if result.ok:
        what = ("measures to its signed MRENCLAVE and the signature is valid" if result.measured
                else "the signature is valid (MRENCLAVE not recomputed for this kind of file)")
        lines = [f"OK: {args.app} {what}"]
        if result.measured:
            lines.append(f"MRENCLAVE  {result.computed}")
        lines.append(f"MRSIGNER   {result.mrsigner}")
    else:
        lines = [f"FAILED: {args.app}", *(f"  {problem}" for problem in result.problems)]
    lines += [f"  note: {note}" for note in result.notes]
    out.emit(data, lines)
    return EXIT_OK if result.ok else EXIT_NO


def cmd_keygen(args: argparse.Namespace, out: Output) -> int:
    from core import signing

    passphrase = None
    if args.passphrase_file:
        passphrase = _read_file(args.passphrase_file).rstrip(b"\r\n")
    key = signing.generate_key()
    signing.write_private_key(key, args.out, passphrase=passphrase)
    mrsigner = signing.mrsigner_of_modulus(key.public_key().public_numbers().n)
    out.emit({"file": args.out, "mrsigner": mrsigner, "bits": 3072, "exponent": 3, "mode": "0600"},
             [f"wrote {args.out} (RSA-3072, e=3, mode 0600)", f"MRSIGNER  {mrsigner}"])
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace, out: Output) -> int:
    from tui.app import run_app

    return run_app(args)


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise EnsignError(f"{path}: is a directory") from None
    except OSError as error:
        raise EnsignError(f"{path}: {error.strerror or error}") from None


# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by tests and docs)."""
    parser = _Parser(prog="ensign", description=PROG_DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version="ensign 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
        return p

    p = command("sign", "sign an enclave program (scone-signer compatible)",
                "Measure APP under the given parameters (SGX1 and EDMM), sign both SIGSTRUCTs and store them\n"
                "with the signed parameters in APP's non-loaded .ensign section (atomically; re-signing\n"
                "replaces it). MRENCLAVE does not change by signing.")
    add_param_flags(p)
    p.add_argument("--date", help="SIGSTRUCT DATE as YYYY-MM-DD (default: today, UTC) for reproducible output")
    p.add_argument("--output", "-o", metavar="FILE", help="write a signed copy to FILE instead of signing in place")
    p.add_argument("--sig-out", metavar="FILE", help="also write the SGX1 SIGSTRUCT as a raw 1808-byte .sig")
    p.add_argument("--passphrase-file", metavar="FILE", help="read the key's passphrase from FILE (never echoed)")
    group = p.add_argument_group(
        "two-step signing (sign elsewhere, then 'ensign attach'; APP is not modified)")
    group.add_argument("--export-signing-data", metavar="FILE",
                       help="write the 256 bytes each SIGSTRUCT's signature covers: FILE (SGX1 ‖ EDMM), "
                            "FILE.sgx1, FILE.edmm, and FILE.json (what went in)")
    group.add_argument("--export-digest", metavar="FILE",
                       help="write their SHA-256 instead (as 'oesign digest'): FILE, FILE.sgx1, FILE.edmm, "
                            "FILE.json")
    from tui.cli_production import add_pkcs11_flags

    add_pkcs11_flags(p)
    from tui.cli_sdk_sign import add_sdk_sign_flags

    add_sdk_sign_flags(p)  # --config XML and sgx_sign's options, for Intel SGX SDK enclaves
    p.add_argument("app", metavar="APP", help="ELF64 x86-64 program or shared object")
    p.set_defaults(handler=cmd_sign)

    p = command("hash", "print the MRENCLAVE a binary would have (no signing)",
                "Derive the enclave layout of APP under the given parameters and print its MRENCLAVE\n"
                "(SGX1 by default; --edmm for the EDMM measurement).")
    add_param_flags(p)
    p.add_argument("--edmm", action="store_true", help="the EDMM measurement (only --minheap of the heap added)")
    p.add_argument("--sgxs-out", metavar="FILE", help="also write the record stream as an .sgxs file")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the MRENCLAVE")
    from tui.cli_sdk import add_sdk_hash_flags

    add_sdk_hash_flags(p)  # --config XML / --release for Intel SGX SDK enclaves (what-if)
    p.add_argument("app", metavar="APP")
    p.set_defaults(handler=cmd_hash)

    p = command("info", "decode any SGX file: signed binary, SDK/OE enclave, .sig, .sgxs, token",
                "Show every SIGSTRUCT field decoded (attribute and XFRM bits by name, date), MRSIGNER and\n"
                "signature validity; for an ensign-signed binary also the signed parameters; for an Intel\n"
                "SDK enclave every metadata block and the layout table (docs/INFO-JSON.md has the --json schema).")
    p.add_argument("--config", metavar="XML", help="Intel SDK: derive the layout from this Enclave.config.xml")
    p.add_argument("--release", metavar="X.Y", help="Intel SDK release to derive the layout for (default: detected)")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(handler=cmd_info)

    p = command("verify", "re-measure a signed binary and check its signature",
                "Re-measure APP with its signed parameters and check ENCLAVEHASH and the RSA signature.\n"
                "Exit 0 only if both are right; exit 1 with the reason otherwise (naming the first\n"
                "changed page when the image changed).")
    add_param_flags(p)
    p.add_argument("--sig", metavar="FILE", help="check against this raw SIGSTRUCT instead of the embedded one")
    p.add_argument("app", metavar="APP")
    p.set_defaults(handler=cmd_verify)

    p = command("keygen", "create an RSA-3072 (e=3) signing key",
                "Write a new RSA-3072 key with exponent 3 as PEM, mode 0600. Refuses to overwrite.")
    p.add_argument("--passphrase-file", metavar="FILE", help="encrypt the key with the passphrase in FILE")
    p.add_argument("out", metavar="OUT.pem")
    p.set_defaults(handler=cmd_keygen)

    p = command("inspect", "open the terminal UI",
                "Open the Textual inspector on APP (or the bundled sample program): ELF segments, layout,\n"
                "records, live MRENCLAVE while editing parameters, compare with a SIGSTRUCT, sign.")
    add_param_flags(p)
    p.add_argument("--sig", metavar="FILE", help="a SIGSTRUCT to compare against")
    p.add_argument("--config", metavar="XML", help="Intel SGX SDK enclave: start from this Enclave.config.xml")
    p.add_argument("app", metavar="APP", nargs="?",
                   help="ELF program, Intel SDK/Open Enclave enclave, .sgxs, .sig or token (default: the bundled sample)")
    p.set_defaults(handler=cmd_inspect)

    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(sub, command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ensign`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    out = Output(bool(getattr(args, "json", False)))
    try:
        return int(args.handler(args, out))
    except EnsignError as error:
        sys.stderr.write(f"\nensign: {error.message}\n" if out.show_progress else f"ensign: {error.message}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("ensign: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as error:
        name = getattr(error, "filename", None)
        sys.stderr.write(f"ensign: {name + ': ' if name else ''}{error.strerror or error}\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["main", "build_parser", "SPECS"]
