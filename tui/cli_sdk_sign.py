"""``ensign sign --config Enclave.config.xml ENCLAVE.so``: sign an Intel SGX SDK enclave as ``sgx_sign`` does.

What ``sgx_sign sign -enclave enclave.so -config Enclave.config.xml -key key.pem -out
enclave.signed.so`` of the enclave's own SDK release writes, byte for byte, without the SDK
(``core.sdk_writer``): with a PEM key (``--key``), a PKCS#11 token (``--pkcs11-*``), or in two
steps (``--export-signing-data``/``--export-digest``, then ``ensign attach --config`` with the
signature made elsewhere, like ``sgx_sign gendata``/``catsig``).

:func:`add_sdk_sign_flags` adds ``--config``, ``--release``, ``--resign``, ``--ignore-rel-error``
and ``--ignore-init-sec-error`` to ``sign`` (and to ``attach``); ``tui/cli.py`` calls
:func:`cmd_sign_sdk` when ``--config`` is given, ``tui/cli_production.py`` calls
:func:`cmd_export_sdk`/:func:`cmd_attach_sdk` for the two-step path. Of the scone-signer flags only
``--key``, ``--date``, ``--production`` (= ``DisableDebug=1``), ``--isvsvn`` and ``--isvprodid``
(override ProdID/ISVSVN) apply. Headless: no Textual import. Errors are
:class:`~core.errors.EnsignError` subclasses (one line, exit 2). docs/SDK-SIGNING.md is the guide.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
from typing import Any

from core.errors import ParamError, SdkError, SigningKeyError

EXIT_OK = 0


def add_sdk_sign_flags(parser: argparse.ArgumentParser, *, for_attach: bool = False) -> None:
    """The options for Intel SGX SDK enclaves signed from their ``Enclave.config.xml``.

    Args:
        parser: the ``sign`` (or ``attach``) parser.
        for_attach: word the help for ``attach`` (the same configuration as at export).
    """
    group = parser.add_argument_group(
        "Intel SGX SDK enclaves (sgx_sign's output, without the SDK; see docs/SDK-SIGNING.md)")
    group.add_argument(
        "--config", metavar="XML",
        help=("the Enclave.config.xml given at export (sgx_sign catsig -config)" if for_attach else
              "sign an SDK enclave.so with this Enclave.config.xml, as sgx_sign sign -config does: the "
              ".note.sgxmeta section is rewritten, every other byte kept"))
    group.add_argument("--release", metavar="X.Y",
                       help="the SDK release whose sgx_sign to reproduce (default: the enclave's SGX_TSTDC_VERSION)")
    group.add_argument("--resign", action="store_true",
                       help="allow an enclave that is already signed (its metadata is replaced)")
    group.add_argument("--ignore-rel-error", action="store_true",
                       help="sign even with text relocations (sgx_sign -ignore-rel-error)")
    group.add_argument("--ignore-init-sec-error", action="store_true",
                       help="sign even with an .init section (sgx_sign -ignore-init-sec-error)")


# --------------------------------------------------------------------------------------------
# shared steps
# --------------------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> Any:
    """The SDK enclave named by APP (refusing anything else)."""
    from tui.cli_production import open_sdk_enclave

    enclave = open_sdk_enclave(args.app)
    if enclave is None:
        raise SdkError(f"{args.app} has no .note.sgxmeta section: --config signs Intel SGX SDK enclaves "
                       "(enclave.so as built with the SDK)")
    return enclave


def _plan(args: argparse.Namespace, out: Any, enclave: Any, date: _dt.date) -> Any:
    """Everything sgx_sign would write, from the flags (config refusals raise here)."""
    from core.sdk_config import load_config
    from core.sdk_writer import SgxSignOptions, plan_sdk_signing

    options = _sigstruct_flags(args)
    config = load_config(args.config)
    return plan_sdk_signing(
        enclave, config, date=date, release=args.release, production=options["production"],
        isvprodid=options["isvprodid"], isvsvn=options["isvsvn"],
        options=SgxSignOptions(resign=args.resign, ignore_rel_error=args.ignore_rel_error,
                               ignore_init_sec_error=args.ignore_init_sec_error),
        on_progress=out.progress("measuring"),
    )


_APPLICABLE_FLAGS = frozenset({"isvsvn", "isvprodid", "production", "key"})


def _sigstruct_flags(args: argparse.Namespace) -> dict[str, Any]:
    """--production, --isvsvn and --isvprodid (overriding the config); every layout flag is refused.

    Raises:
        ParamError: a scone-signer layout flag, or --env: the layout comes from the config.
    """
    from core.params import PARAMETERS, parse_value

    for spec in PARAMETERS:
        if spec.name not in _APPLICABLE_FLAGS and getattr(args, spec.name, None) is not None:
            raise ParamError(f"{spec.flag} does not apply with --config: an SDK enclave's layout comes from its "
                             "Enclave.config.xml (edit it there); only --key, --date, --isvsvn, --isvprodid and "
                             "--production do")
    if getattr(args, "env", False):
        raise ParamError("--env does not apply with --config: the configuration is Enclave.config.xml")
    return {
        "isvprodid": parse_value("isvprodid", args.isvprodid) if args.isvprodid is not None else None,
        "isvsvn": parse_value("isvsvn", args.isvsvn) if args.isvsvn is not None else None,
        "production": bool(args.production),
    }


def _signer(args: argparse.Namespace) -> tuple[Any, str]:
    """The signer: a PKCS#11 token key, or --key (sgx_sign -key); the SDK path has no built-in key."""
    from core import signing
    from tui.cli import read_passphrase
    from tui.cli_production import open_pkcs11_signer, pkcs11_requested

    if pkcs11_requested(args):
        if args.key:
            raise SigningKeyError(f"two signing keys given: --key ({args.key}) and --pkcs11-*; give one")
        signer = open_pkcs11_signer(args)
        return signer, signer.describe()
    if not args.key:
        raise SigningKeyError("signing an SDK enclave needs a key: give --key PEM (sgx_sign's -key) or --pkcs11-*, "
                              "or --export-signing-data to sign elsewhere")
    key = signing.load_private_key(args.key, passphrase_callback=read_passphrase(args, args.key))
    signing.check_signing_key(key, name=args.key)
    return signing.KeySigner(key), args.key


def _extra_flags(args: argparse.Namespace) -> str:
    """The flags that must be repeated at attach (they change what is signed)."""
    parts = [f"--config {args.config}"]
    for flag, value in (("--release", args.release), ("--isvsvn", args.isvsvn), ("--isvprodid", args.isvprodid)):
        if value is not None:
            parts.append(f"{flag} {value}")
    for flag, given in (("--production", args.production), ("--resign", args.resign),
                        ("--ignore-rel-error", args.ignore_rel_error),
                        ("--ignore-init-sec-error", args.ignore_init_sec_error)):
        if given:
            parts.append(flag)
    return " ".join(parts)


def _plan_lines(plan: Any) -> list[str]:
    template = plan.template
    layout = plan.layout
    lines = [
        f"MRENCLAVE  {plan.mrenclave}",
        f"SDK {plan.release} (sgx_sign rules {plan.family}{'' if plan.verified else ', not validated'}): "
        f"metadata {', '.join(plan.versions)}" + (
            f" (MRENCLAVE measured from the unwritten primary {plan.primary_version})"
            if plan.primary_version not in plan.versions else ""),
        f"SIZE {layout.enclave_size:#x}  SSAFRAMESIZE {layout.ssa_frame_size}  DATE {template.date:08x}  "
        f"ISVPRODID {template.isvprodid}  ISVSVN {template.isvsvn}",
        f"ATTRIBUTES {template.attributes_flags:#x}/{template.attributes_xfrm:#x}  ATTRIBUTEMASK "
        f"{template.attributemask_flags:#018x}/{template.attributemask_xfrm:#018x}  MISCSELECT "
        f"{template.miscselect:#x}/{template.miscmask:#x}"
        + ("  (DEBUG forbidden: DisableDebug=1)" if template.attributemask_flags & 0x2 else ""),
    ]
    return lines + [f"  note: {note}" for note in plan.notes]


def _plan_data(plan: Any) -> dict[str, Any]:
    template = plan.template
    return {
        "release": plan.release, "rules": plan.family, "verified": plan.verified, "metadata_versions": list(plan.versions),
        "primary_version": plan.primary_version, "mrenclave": plan.mrenclave,
        "enclave_size": f"{plan.layout.enclave_size:#x}", "ssa_frame_size": plan.layout.ssa_frame_size,
        "date": f"{template.date:08x}", "isvprodid": template.isvprodid, "isvsvn": template.isvsvn,
        "attributes_flags": f"0x{template.attributes_flags:016x}",
        "attributemask_flags": f"0x{template.attributemask_flags:016x}",
        "attributes_xfrm": f"0x{template.attributes_xfrm:016x}",
        "attributemask_xfrm": f"0x{template.attributemask_xfrm:016x}",
        "miscselect": f"0x{template.miscselect:08x}", "miscmask": f"0x{template.miscmask:08x}",
        "config": plan.config.origin, "notes": list(plan.notes),
    }


def _write(args: argparse.Namespace, out: Any, enclave: Any, plan: Any, signed: Any, signer_text: str,
           extra: dict[str, Any] | None = None, first_line: str = "signed") -> int:
    from core.elfedit import atomic_write_bytes
    from core.sdk_writer import write_sdk_enclave

    result = write_sdk_enclave(enclave, plan, signed, output=args.output)
    if args.sig_out:
        atomic_write_bytes(args.sig_out, signed.to_bytes())
    data = {"file": result.output, "kind": "sdk", **_plan_data(plan), "mrsigner": result.mrsigner,
            "signer": signer_text, "section": {"offset": result.section_offset, "size": result.section_size,
                                               "sha256": result.section_sha256},
            "file_sha256": result.file_sha256, "sig_out": args.sig_out, **(extra or {})}
    lines = [
        f"{first_line} {result.output}" + ("" if args.output else " (in place)")
        + f" as sgx_sign of SDK {plan.release} would: .note.sgxmeta rewritten, every other byte unchanged",
        *_plan_lines(plan),
        f"MRSIGNER   {result.mrsigner}",
        f"signer     {signer_text}",
        f"file SHA-256 {result.file_sha256}",
    ]
    if args.sig_out:
        lines.append(f"SIGSTRUCT written to {args.sig_out}")
    out.emit(data, lines)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------


def cmd_sign_sdk(args: argparse.Namespace, out: Any) -> int:
    """``ensign sign --config XML ENCLAVE.so``: what sgx_sign of the enclave's release writes.

    Raises:
        SdkError: not an SDK enclave, a configuration or enclave sgx_sign refuses.
        SigningKeyError / Pkcs11Error: no usable key.
        WriteError: the output could not be written.
    """
    from core.enclave import today_utc
    from core.signing import sign_sigstruct_with
    from tui.cli import parse_date

    date = parse_date(args.date) or today_utc()
    with _open(args) as enclave:
        plan = _plan(args, out, enclave, date)
        with contextlib.ExitStack() as stack:
            signer, signer_text = _signer(args)
            if hasattr(signer, "close"):
                stack.callback(signer.close)
            signed = sign_sigstruct_with(plan.template, signer)
        return _write(args, out, enclave, plan, signed, signer_text)


def cmd_export_sdk(args: argparse.Namespace, out: Any) -> int:
    """``ensign sign --config XML --export-signing-data FILE ENCLAVE.so`` (``sgx_sign gendata``): nothing is signed."""
    from core.enclave import today_utc
    from core.sdk_writer import config_signing_request
    from tui.cli import parse_date
    from tui.cli_production import _expected_mrsigner, _next_steps, _write_exports, pkcs11_requested

    if pkcs11_requested(args):
        raise ParamError("--export-signing-data/--export-digest sign nothing here; leave out --pkcs11-*")
    if args.output or args.sig_out:
        raise ParamError("--export-signing-data/--export-digest write no signature; "
                         "give --output/--sig-out to 'ensign attach'")
    if args.export_signing_data and args.export_signing_data == args.export_digest:
        raise ParamError("--export-signing-data and --export-digest need different files")
    date = parse_date(args.date) or today_utc()
    with _open(args) as enclave:
        plan = _plan(args, out, enclave, date)
    request = config_signing_request(plan, expected_mrsigner=_expected_mrsigner(args, args.key))
    written = _write_exports(args, request)
    digest = request.digests()[0].hex()
    data = {"file": args.app, "kind": "sdk", "exported": written, **_plan_data(plan),
            "expected_mrsigner": request.expected_mrsigner, "signed_sha256": digest}
    lines = [f"exported signing data for Intel SGX SDK enclave {args.app} (not modified)"]
    lines += [f"  {'bytes to sign (as sgx_sign gendata)' if kind == 'signing_data' else 'SHA-256 digest'}: "
              f"{', '.join(files)}" for kind, files in written.items()]
    lines += [f"  signed bytes SHA-256 {digest}", *_plan_lines(plan),
              *_next_steps(args, request, args.app, _extra_flags(args))]
    out.emit(data, lines)
    return EXIT_OK


def cmd_attach_sdk(args: argparse.Namespace, out: Any) -> int:
    """``ensign attach --config XML ENCLAVE.so -s SIG --public-key PUB`` (``sgx_sign catsig``)."""
    from core import signing, twostep
    from core.sdk_writer import attach_signature
    from tui.cli import read_passphrase
    from tui.cli_production import _attach_date, _expected_mrsigner

    exported = twostep.read_exported(args.signing_data) if args.signing_data else None
    date, date_source = _attach_date(args, exported)
    signatures = twostep.signatures_from_files(args.signature)
    public_path = args.public_key or args.key
    if not public_path:
        raise SigningKeyError("attach needs the signer's public key: give --public-key PEM|CERT")
    modulus = signing.load_public_key(
        public_path, passphrase_callback=read_passphrase(args, public_path)).public_numbers().n
    expected = args.expect_mrsigner or (_expected_mrsigner(args, args.key) if args.public_key else None)
    with _open(args) as enclave:
        plan = _plan(args, out, enclave, date)
        signed, attached = attach_signature(plan, modulus, signatures, exported=exported, expected_mrsigner=expected)
        match = attached.matches[0]
        extra = {"date_source": date_source, "public_key": public_path,
                 "signatures": [{"variant": m.variant, "file": m.source, "byte_order": m.byte_order}
                                for m in attached.matches]}
        text = f"signature {match.source} ({twostep.BYTE_ORDER_TEXT[match.byte_order]}), public key {public_path}"
        return _write(args, out, enclave, plan, signed, text, extra, first_line="attached the signature to")
