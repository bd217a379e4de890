"""Text and JSON rendering of ``ensign info`` (headless: no Textual imports).

``describe_file`` turns whatever core opened into a JSON-able dict and text lines; the
same dict is the documented ``info --json`` schema (docs/INFO-JSON.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ContainerError, EnsignError
from core.params import PARAMETERS, format_size
from core.sigstruct import (
    SIGSTRUCT_SIZE,
    Sigstruct,
    attribute_flag_names,
    decode_date,
    miscselect_names,
    xfrm_names,
)


def sigstruct_lines(sig: Sigstruct, indent: str = "  ") -> list[str]:
    """Every SIGSTRUCT field decoded, one per line."""
    check = sig.check()
    date = decode_date(sig.date)
    flags = ", ".join(attribute_flag_names(sig.attributes_flags)) or "none"
    mask_flags = ", ".join(attribute_flag_names(sig.attributemask_flags)) or "none"
    lines = [
        f"ENCLAVEHASH     {sig.enclavehash.hex()}",
        f"MRSIGNER        {sig.mrsigner}",
        f"signature       {'valid' if check.signature_valid else 'INVALID'}"
        f" (Q1 {'ok' if check.q1_ok else 'wrong'}, Q2 {'ok' if check.q2_ok else 'wrong'})",
        f"DATE            {date.text}",
        f"VENDOR          {sig.vendor:#06x}" + (" (Intel)" if sig.vendor == 0x8086 else ""),
        f"SWDEFINED       {sig.swdefined:#x}",
        f"ISVPRODID       {sig.isvprodid}",
        f"ISVSVN          {sig.isvsvn}",
        f"ATTRIBUTES      {sig.attributes_flags:#018x} [{flags}]",
        f"  XFRM          {sig.attributes_xfrm:#018x} [{', '.join(xfrm_names(sig.attributes_xfrm))}]",
        f"ATTRIBUTEMASK   {sig.attributemask_flags:#018x} [{mask_flags}]",
        f"  XFRM mask     {sig.attributemask_xfrm:#018x} [{', '.join(xfrm_names(sig.attributemask_xfrm))}]",
        f"MISCSELECT      {sig.miscselect:#010x} [{', '.join(miscselect_names(sig.miscselect)) or 'none'}]",
        f"MISCMASK        {sig.miscmask:#010x}",
        f"ISVFAMILYID     {sig.isvfamilyid.hex()}",
        f"ISVEXTPRODID    {sig.isvextprodid.hex()}",
        f"EXPONENT        {sig.exponent}",
        f"signed bytes    sha256 {__import__('hashlib').sha256(sig.signed_bytes()).hexdigest()}",
    ]
    lines += [f"problem         {problem}" for problem in check.problems]
    return [indent + line for line in lines]


def describe_file(path: str) -> tuple[dict[str, Any], list[str]]:
    """Open ``path`` and describe it for ``ensign info``.

    Returns:
        (JSON dict, text lines).

    Raises:
        EnsignError: unreadable, or none of the formats ensign reads.
    """
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as error:
        raise EnsignError(f"{path}: {error.strerror}") from None
    if file.is_dir():
        raise EnsignError(f"{path}: is a directory")
    with file.open("rb") as handle:
        head = handle.read(4)
    if size == SIGSTRUCT_SIZE and head != b"\x7fELF":
        sig = Sigstruct.from_bytes(file.read_bytes())
        return {"file": path, "kind": "sigstruct", "sigstruct": sig.to_dict()}, [
            f"{path}: SIGSTRUCT (1808 bytes)", *sigstruct_lines(sig)]
    if head == b"\x7fELF":
        from core.enclave import EnclaveBinary

        binary = EnclaveBinary.open(path)
        signature = binary.signature
        if signature is None:
            raise ContainerError(f"{path}: an ELF file without an ensign signature (.ensign section); "
                                 "run 'ensign hash' to see its MRENCLAVE")
        params = signature.params
        data = {
            "file": path,
            "kind": "ensign-signed-binary",
            "params": {spec.name: getattr(params, spec.name) for spec in PARAMETERS if spec.name != "key"},
            "date": f"{signature.date:08x}",
            "sigstructs": {"sgx1": signature.sgx1.to_dict(), "edmm": signature.edmm.to_dict()},
            "image_pages": len(signature.digests) // 8,
        }
        lines = [f"{path}: ensign-signed ELF ({binary.image.elf_type}, {size} bytes)", "signed parameters:"]
        for spec in PARAMETERS:
            if spec.name == "key":
                continue
            value = getattr(params, spec.name)
            shown = format_size(value) if spec.kind == "size" else (
                f"{value:#x}" if spec.kind == "xfrm" else str(int(value)))
            lines.append(f"  {spec.name:<10} {shown}")
        lines.append("SGX1 SIGSTRUCT:")
        lines += sigstruct_lines(signature.sgx1)
        lines.append("EDMM SIGSTRUCT:")
        lines += sigstruct_lines(signature.edmm)
        return data, lines
    raise ContainerError(f"{path}: not a SIGSTRUCT or an ensign-signed ELF ({size} bytes, starts {head!r})")
