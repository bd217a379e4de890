"""Production signing commands: ``attach`` (two-step signing), ``pkcs11-keygen`` and ``pkcs11-list``.

Also what ``sign`` uses for production: the ``--pkcs11-*`` options and the PKCS#11 signer
(``resign`` uses them too), and ``sign --export-signing-data/--export-digest``
(:func:`cmd_export`). ``sign --export-*`` and ``attach`` handle ensign programs and Intel SDK
enclaves (detected by their ``.note.sgxmeta``). Headless: no Textual import. PINs and
passphrases are read from files or prompted for without echo, and never printed. Errors are
:class:`~core.errors.EnsignError` subclasses (one line, exit 2). docs/PRODUCTION.md is the guide.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import sys
from collections.abc import Callable
from typing import Any

from core.errors import ParamError, Pkcs11Error, SigningKeyError

EXIT_OK = 0


# --------------------------------------------------------------------------------------------
# --pkcs11-* options (shared with `sign`)
# --------------------------------------------------------------------------------------------

PKCS11_OPTIONS = ("pkcs11_module", "pkcs11_token", "pkcs11_key_label", "pkcs11_key_id", "pkcs11_pin_file",
                  "pkcs11_uri")


def add_pkcs11_flags(parser: argparse.ArgumentParser, *, for_keygen: bool = False) -> None:
    """The options that select a key in a PKCS#11 token (python-pkcs11: ``pip install 'ensign[pkcs11]'``)."""
    group = parser.add_argument_group(
        "PKCS#11 token" + ("" if for_keygen else " (sign with a key held in an HSM, smart card or SoftHSM2)"))
    group.add_argument("--pkcs11-module", metavar="PATH",
                       help="PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so")
    group.add_argument("--pkcs11-token", metavar="LABEL", help="token label (default: the only token)")
    group.add_argument("--pkcs11-key-label", metavar="LABEL",
                       help="label of the new key" if for_keygen else "key label (default: the only RSA key)")
    group.add_argument("--pkcs11-key-id", metavar="HEX",
                       help="id of the new key (default: 8 random bytes)" if for_keygen else
                       "key id (CKA_ID) in hex, e.g. 0102")
    group.add_argument("--pkcs11-pin-file", metavar="FILE",
                       help="read the user PIN from FILE (default: ask without echo)")
    group.add_argument("--pkcs11-uri", metavar="URI",
                       help="RFC 7512 URI, e.g. 'pkcs11:token=prod;object=sgx?module-path=/usr/lib/...&"
                            "pin-source=file:/run/pin' (options given as well must agree with it)")


def pkcs11_requested(args: argparse.Namespace) -> bool:
    """True when any --pkcs11-* option is given."""
    return any(getattr(args, name, None) for name in PKCS11_OPTIONS)


def _prompt_pin(description: str) -> str:
    """Ask for a PIN on the terminal without echo."""
    if not sys.stdin.isatty():
        raise Pkcs11Error(f"{description} needs a PIN: give --pkcs11-pin-file FILE (no terminal to ask on)",
                          title="PIN needed")
    return getpass.getpass(f"PIN for {description}: ")


def pkcs11_selection(args: argparse.Namespace) -> Any:
    """The :class:`core.pkcs11.KeySelection` the --pkcs11-* options name."""
    from core import pkcs11

    return pkcs11.selection_from(
        module=args.pkcs11_module, token=args.pkcs11_token, key_label=args.pkcs11_key_label,
        key_id=args.pkcs11_key_id, pin_file=args.pkcs11_pin_file, uri=args.pkcs11_uri,
    )


def open_pkcs11_signer(args: argparse.Namespace) -> Any:
    """Open the :class:`core.pkcs11.Pkcs11Signer` the options name (the caller closes it)."""
    from core import pkcs11

    return pkcs11.Pkcs11Signer.open(pkcs11_selection(args), pin_callback=_prompt_pin)


# --------------------------------------------------------------------------------------------
# Intel SDK enclaves: the flags that apply to them
# --------------------------------------------------------------------------------------------

_SDK_FLAGS = frozenset({"isvsvn", "isvprodid", "production", "key"})


def open_sdk_enclave(path: str) -> Any:
    """The :class:`core.sdk.SdkEnclave` at ``path``, or None when it has no ``.note.sgxmeta`` (an ensign program).

    Raises:
        ElfFormatError: not an ELF file.
        SdkError: an SDK enclave with corrupt metadata.
    """
    from core.elf import load_elf
    from core.sdk import SdkEnclave
    from core.sdk_metadata import NOTE_SECTION

    image = load_elf(path)
    if image.section_by_name(NOTE_SECTION) is None:
        image.close()
        return None
    try:
        return SdkEnclave.from_image(image)
    except BaseException:
        image.close()
        raise


def sdk_signing_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``resign`` would change in an SDK enclave's SIGSTRUCT, from the scone-signer flags.

    ``--isvsvn``/``--isvprodid`` set those fields (default: keep); ``--production`` sets DEBUG in
    ATTRIBUTEMASK (``DisableDebug=1``; default: keep). Layout flags do not apply: an SDK
    enclave's layout is in its metadata.

    Raises:
        ParamError: a flag that does not apply to SDK enclaves.
    """
    from core.params import PARAMETERS, parse_value

    for spec in PARAMETERS:
        if spec.name not in _SDK_FLAGS and getattr(args, spec.name, None) is not None:
            raise ParamError(f"{spec.flag} does not apply to an Intel SGX SDK enclave (its layout is in its "
                             "metadata); only --date, --isvsvn, --isvprodid and --production do")
    if getattr(args, "env", False):
        raise ParamError("--env does not apply to an Intel SGX SDK enclave")
    return {
        "isvprodid": parse_value("isvprodid", args.isvprodid) if args.isvprodid is not None else None,
        "isvsvn": parse_value("isvsvn", args.isvsvn) if args.isvsvn is not None else None,
        "disable_debug": True if args.production else None,
    }


def _sdk_option_flags(options: dict[str, Any]) -> str:
    parts = []
    if options["isvsvn"] is not None:
        parts.append(f"--isvsvn {options['isvsvn']}")
    if options["isvprodid"] is not None:
        parts.append(f"--isvprodid {options['isvprodid']}")
    if options["disable_debug"]:
        parts.append("--production")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# sign --export-signing-data / --export-digest
# --------------------------------------------------------------------------------------------


def _expected_mrsigner(args: argparse.Namespace, key_path: str | None) -> str | None:
    """MRSIGNER of --key when given with an export (not needed to export; attach checks it)."""
    if not key_path:
        return None
    from core import signing
    from tui.cli import read_passphrase

    public = signing.load_public_key(key_path, passphrase_callback=read_passphrase(args, key_path))
    return signing.mrsigner_of_modulus(public.public_numbers().n)


def _write_exports(args: argparse.Namespace, request: Any) -> dict[str, list[str]]:
    from core import twostep

    written: dict[str, list[str]] = {}
    if args.export_signing_data:
        written["signing_data"] = list(twostep.export_signing_data(request, args.export_signing_data))
    if args.export_digest:
        written["digest"] = list(twostep.export_digest(request, args.export_digest))
    return written


def _next_steps(args: argparse.Namespace, request: Any, app: str, extra_flags: str) -> list[str]:
    """The commands that finish the job: sign each part with openssl, then attach."""
    from core import twostep

    several = len(request.variants) > 1

    def part(base: str, variant: str) -> str:
        return twostep.part_path(base, variant) if several else base

    lines = ["next: sign elsewhere, then attach, e.g."]
    if args.export_signing_data:
        base = args.export_signing_data
        lines += [f"  openssl dgst -sha256 -sign KEY.pem -out {variant}.sig {part(base, variant)}"
                  for variant in request.variants]
    else:
        base = args.export_digest
        lines += [f"  openssl pkeyutl -sign -inkey KEY.pem -pkeyopt digest:sha256 -in {part(base, variant)} "
                  f"-out {variant}.sig" for variant in request.variants]
    raw = request.date
    date_text = f"{raw >> 16:04x}-{(raw >> 8) & 0xFF:02x}-{raw & 0xFF:02x}"
    signatures = " ".join(f"-s {variant}.sig" for variant in request.variants)
    lines.append(f"  ensign attach {app} {signatures} --public-key PUB.pem --signing-data {base} --date {date_text}"
                 + (f" {extra_flags}" if extra_flags else ""))
    return lines


def cmd_export(args: argparse.Namespace, out: Any) -> int:
    """``ensign sign --export-signing-data FILE / --export-digest FILE``: what to sign elsewhere.

    Works for ensign programs (SGX1 and EDMM SIGSTRUCTs) and Intel SDK enclaves (the SIGSTRUCT
    ``ensign resign`` would write). Nothing is written to APP.
    """
    from core import twostep
    from core.enclave import EnclaveBinary, today_utc
    from core.params import PARAMETERS
    from tui.cli import params_from_args, params_lines, parse_date

    if getattr(args, "config", None):  # an SDK enclave.so signed from its Enclave.config.xml (sgx_sign gendata)
        from tui.cli_sdk_sign import cmd_export_sdk

        return cmd_export_sdk(args, out)
    if pkcs11_requested(args):
        raise ParamError("--export-signing-data/--export-digest sign nothing here; leave out --pkcs11-*")
    if args.output or args.sig_out:
        raise ParamError("--export-signing-data/--export-digest write no signature; "
                         "give --output/--sig-out to 'ensign attach'")
    if args.export_signing_data and args.export_signing_data == args.export_digest:
        raise ParamError("--export-signing-data and --export-digest need different files")
    date = parse_date(args.date) or today_utc()
    sdk = open_sdk_enclave(args.app)
    if sdk is not None:
        with sdk:
            options = sdk_signing_options(args)
            request = twostep.sdk_request(sdk, date=date, expected_mrsigner=_expected_mrsigner(args, args.key),
                                          on_progress=out.progress("measuring"), **options)
        template = request.templates[0]
        written = _write_exports(args, request)
        data: dict[str, Any] = {
            "file": args.app, "kind": "sdk", "exported": written, "mrenclave": template.enclavehash.hex(),
            "date": f"{request.date:08x}", "expected_mrsigner": request.expected_mrsigner,
            "sigstructs": [{"variant": twostep.SDK_VARIANT, "signed_sha256": request.digests()[0].hex()}],
            "isvprodid": template.isvprodid, "isvsvn": template.isvsvn,
            "attributemask_flags": f"0x{template.attributemask_flags:016x}",
        }
        lines = [f"exported signing data for Intel SGX SDK enclave {args.app} (not modified)"]
        lines += [f"  {'bytes to sign' if kind == 'signing_data' else 'SHA-256 digest'}: {', '.join(files)}"
                  for kind, files in written.items()]
        lines += [
            f"  signed bytes SHA-256 {request.digests()[0].hex()}",
            f"MRENCLAVE  {template.enclavehash.hex()}",
            f"DATE {template.date:08x}  ISVPRODID {template.isvprodid}  ISVSVN {template.isvsvn}  "
            f"ATTRIBUTEMASK {template.attributemask_flags:#018x}",
            *_next_steps(args, request, args.app, _sdk_option_flags(options)),
        ]
        out.emit(data, lines)
        return EXIT_OK
    binary = EnclaveBinary.open(args.app)
    params = params_from_args(args)
    pair = binary.measure_pair(params, on_progress=out.progress("measuring"))
    request = twostep.ensign_request(binary, pair, date, expected_mrsigner=_expected_mrsigner(args, params.key))
    written = _write_exports(args, request)
    data = {
        "file": args.app,
        "kind": "ensign",
        "exported": written,
        "mrenclave": {"sgx1": pair.sgx1_measurement.hex, "edmm": pair.edmm_measurement.hex},
        "date": f"{request.date:08x}",
        "expected_mrsigner": request.expected_mrsigner,
        "sigstructs": [{"variant": variant, "signed_sha256": digest.hex()}
                       for variant, digest in zip(request.variants, request.digests(), strict=True)],
        "size": pair.sgx1.size,
        "ssaframesize": pair.sgx1.ssaframesize,
        "params": params.to_dict(),
    }
    lines = [f"exported signing data for {args.app} (not modified)"]
    lines += [f"  {'bytes to sign' if kind == 'signing_data' else 'SHA-256 digests'}: {', '.join(files)}"
              for kind, files in written.items()]
    flags = " ".join(
        (spec.flag if spec.name == "production" else f"{spec.flag} {_flag_value(params, spec.name)}")
        for spec in PARAMETERS if spec.name != "key" and params.source(spec.name) != "default")
    lines += [
        *(f"  {variant.upper():<5} signed bytes SHA-256 {digest.hex()}"
          for variant, digest in zip(request.variants, request.digests(), strict=True)),
        f"MRENCLAVE (SGX1)  {pair.sgx1_measurement.hex}",
        f"MRENCLAVE (EDMM)  {pair.edmm_measurement.hex}",
        f"DATE {request.date:08x}",
        "parameters:",
        *(line for line in params_lines(params) if not line.startswith("  key ")),
        *_next_steps(args, request, args.app, flags),
    ]
    out.emit(data, lines)
    return EXIT_OK


def _flag_value(params: Any, name: str) -> str:
    """A parameter value as its flag's argument."""
    from core.params import SPECS, format_size

    value = getattr(params, name)
    if SPECS[name].kind == "size":
        return format_size(value)
    if SPECS[name].kind == "xfrm":
        return f"{value:#x}"
    return str(value)


# --------------------------------------------------------------------------------------------
# attach
# --------------------------------------------------------------------------------------------


def _attach_date(args: argparse.Namespace, exported: Any) -> tuple[_dt.date, str]:
    """DATE for attach: --date, else the exported one, else today (UTC); and where it came from."""
    from core import twostep
    from core.enclave import today_utc
    from tui.cli import parse_date

    given = parse_date(args.date)
    if given is not None:
        return given, "--date"
    if exported is not None:
        date = twostep.exported_date(exported)
        if date is not None:
            return date, f"from {exported.path}"
    return today_utc(), "today (UTC)"


def _public_modulus(args: argparse.Namespace, params: Any) -> tuple[int, str]:
    from core import signing
    from tui.cli import read_passphrase

    path = args.public_key or params.key
    if not path:
        raise SigningKeyError("attach needs the signer's public key: give --public-key PEM|CERT")
    key = signing.load_public_key(path, passphrase_callback=read_passphrase(args, path))
    return key.public_numbers().n, path


def cmd_attach(args: argparse.Namespace, out: Any) -> int:
    """``ensign attach``: store signatures made elsewhere, as ``sign`` stores its own."""
    from core import twostep
    from core.enclave import EnclaveBinary, write_signature
    from tui.cli import params_from_args, params_lines

    if getattr(args, "config", None):  # an SDK enclave.so signed from its Enclave.config.xml (sgx_sign catsig)
        from tui.cli_sdk_sign import cmd_attach_sdk

        return cmd_attach_sdk(args, out)
    exported = twostep.read_exported(args.signing_data) if args.signing_data else None
    date, date_source = _attach_date(args, exported)
    signatures = twostep.signatures_from_files(args.signature)
    sdk = open_sdk_enclave(args.app)
    if sdk is not None:
        with sdk:
            return _attach_sdk(args, out, sdk, exported, signatures, date, date_source)
    binary = EnclaveBinary.open(args.app)
    params = params_from_args(args)
    modulus, key_path = _public_modulus(args, params)
    pair = binary.measure_pair(params, on_progress=out.progress("measuring"))
    signature, plan = twostep.attach_ensign(binary, pair, date, modulus, signatures, exported=exported,
                                            expected_mrsigner=args.expect_mrsigner)
    target = write_signature(binary, signature, output=args.output, sig_out=args.sig_out)
    data = {
        "file": target,
        "mrenclave": {"sgx1": pair.sgx1_measurement.hex, "edmm": pair.edmm_measurement.hex},
        "mrsigner": plan.mrsigner,
        "public_key": key_path,
        "date": f"{signature.date:08x}",
        "date_source": date_source,
        "signatures": [{"variant": m.variant, "file": m.source, "byte_order": m.byte_order} for m in plan.matches],
        "params": params.to_dict(),
        "sig_out": args.sig_out,
    }
    lines = [
        f"attached {len(plan.matches)} signatures to {target}" + ("" if args.output else " (in place)"),
        *(f"  {m.variant.upper():<5} {m.source}: {twostep.BYTE_ORDER_TEXT[m.byte_order]}" for m in plan.matches),
        f"MRENCLAVE (SGX1)  {pair.sgx1_measurement.hex}",
        f"MRENCLAVE (EDMM)  {pair.edmm_measurement.hex}",
        f"MRSIGNER          {plan.mrsigner}",
        f"DATE {signature.date:08x} ({date_source})",
        "parameters:",
        *(line for line in params_lines(params) if not line.startswith("  key ")),
    ]
    if args.sig_out:
        lines.append(f"SGX1 SIGSTRUCT written to {args.sig_out}")
    out.emit(data, lines)
    return EXIT_OK


def _attach_sdk(args: argparse.Namespace, out: Any, enclave: Any, exported: Any, signatures: list[tuple[str, bytes]],
                date: _dt.date, date_source: str) -> int:
    """``attach`` for an Intel SDK enclave: the SIGSTRUCT into every metadata block, as ``resign`` does."""
    from core import twostep
    from core.elfedit import atomic_write_bytes
    from core.errors import SdkError

    if not enclave.signed:
        raise SdkError(f"{args.app}: not signed yet (empty metadata note): sign it with sgx_sign first")
    options = sdk_signing_options(args)
    if not args.public_key:
        raise SigningKeyError("attach needs the signer's public key: give --public-key PEM|CERT")
    from core import signing
    from tui.cli import read_passphrase

    key = signing.load_public_key(args.public_key, passphrase_callback=read_passphrase(args, args.public_key))
    expected = args.expect_mrsigner or _expected_mrsigner(args, args.key)
    result, plan = twostep.attach_sdk(enclave, key.public_numbers().n, signatures, date=date, exported=exported,
                                      expected_mrsigner=expected, output=args.output,
                                      on_progress=out.progress("measuring"), **options)
    if args.sig_out:
        atomic_write_bytes(args.sig_out, result.sigstruct.to_bytes())
    sig = result.sigstruct
    match = plan.matches[0]
    data = {
        "file": result.output, "kind": "sdk", "blocks": result.blocks, "mrenclave": result.mrenclave,
        "mrsigner": result.mrsigner, "public_key": args.public_key, "date": f"{sig.date:08x}",
        "date_source": date_source,
        "signatures": [{"variant": m.variant, "file": m.source, "byte_order": m.byte_order} for m in plan.matches],
        "isvprodid": sig.isvprodid, "isvsvn": sig.isvsvn,
        "attributemask_flags": f"0x{sig.attributemask_flags:016x}", "sig_out": args.sig_out,
    }
    lines = [
        f"attached the signature to {result.output}" + ("" if args.output else " (in place)")
        + f": SIGSTRUCT in {result.blocks} metadata block(s), every other byte unchanged",
        f"  {match.source}: {twostep.BYTE_ORDER_TEXT[match.byte_order]}",
        f"MRENCLAVE  {result.mrenclave}",
        f"MRSIGNER   {result.mrsigner}",
        f"DATE {sig.date:08x} ({date_source})  ISVPRODID {sig.isvprodid}  ISVSVN {sig.isvsvn}  "
        f"ATTRIBUTEMASK {sig.attributemask_flags:#018x}",
    ]
    if args.sig_out:
        lines.append(f"SIGSTRUCT written to {args.sig_out}")
    out.emit(data, lines)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# pkcs11-keygen, pkcs11-list
# --------------------------------------------------------------------------------------------


def cmd_pkcs11_keygen(args: argparse.Namespace, out: Any) -> int:
    """``ensign pkcs11-keygen``: an RSA-3072 e=3 key pair generated inside the token."""
    from core import pkcs11
    from core.elfedit import atomic_write_bytes

    if not args.pkcs11_key_label and not (args.pkcs11_uri and pkcs11.parse_pkcs11_uri(args.pkcs11_uri).object):
        raise ParamError("pkcs11-keygen: name the new key with --pkcs11-key-label (or object= in the URI)")
    selection = pkcs11_selection(args)
    if args.public_out:
        from pathlib import Path

        if Path(args.public_out).exists():
            raise ParamError(f"--public-out: {args.public_out} exists; refusing to overwrite")
    assert selection.key_label is not None
    key = pkcs11.generate_token_key(selection, label=selection.key_label, key_id=selection.key_id,
                                    pin_callback=_prompt_pin)
    if args.public_out:
        atomic_write_bytes(args.public_out, pkcs11.public_key_pem(key.modulus))
    data = {"token": selection.token_label, "label": key.label, "id": key.id.hex(), "bits": key.bits,
            "exponent": key.exponent, "mrsigner": key.mrsigner, "public_out": args.public_out}
    lines = [f"generated RSA-3072 (e=3) key '{key.label}' (id {key.id.hex()}) in the token; "
             "the private key is not extractable",
             f"MRSIGNER  {key.mrsigner}"]
    if args.public_out:
        lines.append(f"public key written to {args.public_out}")
    out.emit(data, lines)
    return EXIT_OK


def cmd_pkcs11_list(args: argparse.Namespace, out: Any) -> int:
    """``ensign pkcs11-list``: tokens and their RSA keys, with MRSIGNER."""
    from core import pkcs11

    selection = pkcs11_selection(args)
    tokens = pkcs11.list_tokens(selection.module, pin_file=selection.pin_file, token_label=selection.token_label)
    data: dict[str, Any] = {"module": selection.module, "tokens": []}
    lines = [f"PKCS#11 module {selection.module}"]
    for token in tokens:
        keys = [{"label": k.label, "id": k.id.hex(), "kind": k.kind, "bits": k.bits, "exponent": k.exponent,
                 "mrsigner": k.mrsigner, "sgx_usable": k.usable} for k in token.keys]
        data["tokens"].append({"label": token.label, "serial": token.serial, "slot": token.slot_id,
                               "manufacturer": token.manufacturer, "model": token.model,
                               "login_required": token.login_required, "keys": keys})
        lines.append(f"token '{token.label}'  serial {token.serial}  slot {token.slot_id}  "
                     f"({token.manufacturer} {token.model})")
        if not token.keys:
            lines.append("  no RSA keys visible" + (" (give --pkcs11-pin-file to see private keys)"
                                                   if token.login_required and not selection.pin_file else ""))
        for key in token.keys:
            exponent = key.exponent if key.exponent is not None else "?"
            verdict = "SGX signing key" if key.usable else "not usable for SGX (needs RSA-3072, e=3)"
            lines.append(f"  {key.kind:<7} '{key.label}' id {key.id.hex() or '-'}  RSA-{key.bits} e={exponent}  "
                         f"{verdict}" + (f"\n           MRSIGNER {key.mrsigner}" if key.mrsigner else ""))
    if not tokens:
        lines.append("no initialised tokens")
    out.emit(data, lines)
    return EXIT_OK


# --------------------------------------------------------------------------------------------


def register(sub: Any, command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add ``attach``, ``pkcs11-keygen`` and ``pkcs11-list`` to the ``ensign`` parser."""
    from tui.cli import add_param_flags

    p = command(
        "attach", "attach signatures made elsewhere (two-step signing)",
        "Second step of offline signing. 'ensign sign --export-signing-data FILE' (or --export-digest)\n"
        "wrote what to sign; sign FILE.sgx1 and FILE.edmm elsewhere, e.g.\n"
        "  openssl dgst -sha256 -sign key.pem -out sgx1.sig FILE.sgx1\n"
        "  openssl pkeyutl -sign -inkey key.pem -pkeyopt digest:sha256 -in DIGEST.edmm -out edmm.sig\n"
        "then attach both with the same parameters. Each signature may be big- or little-endian (found\n"
        "by verifying) and the files may come in any order. The SIGSTRUCTs (with Q1/Q2) are stored as\n"
        "'sign' stores them. A signature that does not fit is rejected with the reason: wrong size,\n"
        "wrong key, or signed over other data (naming what changed since the export).\n"
        "For an Intel SGX SDK enclave (one SIGSTRUCT, exported to FILE alone) the signature goes into\n"
        "every metadata block, as 'ensign resign' writes it; only --date, --isvsvn, --isvprodid and\n"
        "--production apply. See docs/PRODUCTION.md.")
    add_param_flags(p)
    from tui.cli_sdk_sign import add_sdk_sign_flags

    add_sdk_sign_flags(p, for_attach=True)  # --config: an SDK enclave.so signed from its config (sgx_sign catsig)
    p.add_argument("--signature", "-s", metavar="SIG", action="append", required=True,
                   help="signature file: 384 bytes (or SGX1 ‖ EDMM, 768), raw, hex or base64; repeat for each")
    p.add_argument("--public-key", metavar="PEM|CERT",
                   help="the signer's public key, X.509 certificate or private key (default: --key)")
    p.add_argument("--signing-data", metavar="FILE",
                   help="the export the signatures were made from (FILE, FILE.<variant> or FILE.json): "
                        "its DATE is used unless --date, and a mismatch names what changed")
    p.add_argument("--expect-mrsigner", metavar="HEX", help="refuse unless the public key has this MRSIGNER")
    p.add_argument("--date", help="SIGSTRUCT DATE as YYYY-MM-DD (default: the exported date, else today UTC)")
    p.add_argument("--output", "-o", metavar="FILE", help="write a signed copy to FILE instead of APP")
    p.add_argument("--sig-out", metavar="FILE", help="also write the SGX1 SIGSTRUCT as a raw 1808-byte .sig")
    p.add_argument("--passphrase-file", metavar="FILE",
                   help="passphrase, if --public-key is an encrypted private key")
    p.add_argument("app", metavar="APP", help="the ELF program the signing data was exported from")
    p.set_defaults(handler=cmd_attach)

    p = command(
        "pkcs11-keygen", "create an RSA-3072 (e=3) signing key inside a PKCS#11 token",
        "Generate an SGX signing key pair in a PKCS#11 token (HSM, smart card, SoftHSM2). The private\n"
        "key is sensitive and not extractable; it can only sign. Prints its MRSIGNER; --public-out\n"
        "writes the public key for 'ensign attach' and verifiers. Refuses to reuse a label or id.")
    add_pkcs11_flags(p, for_keygen=True)
    p.add_argument("--public-out", metavar="PEM", help="write the public key here (PEM)")
    p.set_defaults(handler=cmd_pkcs11_keygen)

    p = command(
        "pkcs11-list", "list PKCS#11 tokens and their RSA keys with MRSIGNER",
        "Show the initialised tokens of a PKCS#11 module and their RSA keys, marking those SGX can use\n"
        "(RSA-3072, e=3) with their MRSIGNER. Private keys are listed only with a PIN file; never prompts.")
    add_pkcs11_flags(p)
    p.set_defaults(handler=cmd_pkcs11_list)
