"""Text and JSON rendering of ``ensign info`` for every container (headless: no Textual imports).

``describe_file`` opens any file ``core.containers.open_any`` reads and returns the JSON document
(schema ``ensign-info/1``, documented in docs/INFO-JSON.md and the same for every kind) and the
text lines. The text names every ATTRIBUTES, XFRM and MISCSELECT bit; masks list their named
bits and summarise the rest as ``+N reserved bits``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from core.containers import Container, LabeledSigstruct, find_companion_sigstruct, open_any
from core.errors import EnsignError
from core.params import PARAMETERS, format_size
from core.records import secinfo_text
from core.sdk import SdkEnclave
from core.sdk_config import compare_with_metadata, derive_layout, load_config, release_family
from core.sdk_loader import LayoutRow
from core.sdk_metadata import LayoutEntry, LayoutGroup, MetadataBlock, page_attr_names
from core.sigstruct import (
    ATTRIBUTE_FLAG_NAMES,
    MISCSELECT_NAMES,
    XFRM_NAMES,
    Sigstruct,
    decode_date,
)

SCHEMA = "ensign-info/1"
MAX_TEXT_ROWS = 300  # layout rows shown in text before eliding the middle

__all__ = ["SCHEMA", "bits_text", "describe_container", "describe_file", "mask_text", "sigstruct_lines"]


# --------------------------------------------------------------------------------------------
# Bit names
# --------------------------------------------------------------------------------------------


def _set_bits(value: int) -> Iterable[int]:
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            yield bit
        bit += 1


def bits_text(value: int, names: dict[int, str], *, reserved: str = "reserved bit") -> str:
    """Every set bit of a value by name (``'DEBUG, MODE64BIT'``); unnamed bits as ``'reserved bit N'``."""
    parts = [names.get(bit, f"{reserved} {bit}") for bit in _set_bits(value)]
    return ", ".join(parts) or "none"


def mask_text(value: int, names: dict[int, str]) -> str:
    """A mask's named bits, the rest summarised: ``'INIT, MODE64BIT, ... +53 reserved bits'``."""
    named = [names[bit] for bit in _set_bits(value) if bit in names]
    others = sum(1 for bit in _set_bits(value) if bit not in names)
    text = ", ".join(named) or "no named bits"
    if others:
        text += f" +{others} reserved bit" + ("s" if others != 1 else "")
    return text


# --------------------------------------------------------------------------------------------
# SIGSTRUCT
# --------------------------------------------------------------------------------------------


def sigstruct_lines(sig: Sigstruct, indent: str = "  ") -> list[str]:
    """Every SIGSTRUCT field decoded, one per line."""
    check = sig.check()
    date = decode_date(sig.date)
    date_line = f"DATE            {date.text}"  # binary y/m/d dates say so in their text
    lines = [
        f"ENCLAVEHASH     {sig.enclavehash.hex()}",
        f"MRSIGNER        {sig.mrsigner}",
        f"signature       {'valid' if check.signature_valid else 'INVALID'}"
        f" (Q1 {'ok' if check.q1_ok else 'wrong'}, Q2 {'ok' if check.q2_ok else 'wrong'})",
        date_line + f"  (raw {sig.date:08x})",
        f"VENDOR          {sig.vendor:#06x}" + (" (Intel)" if sig.vendor == 0x8086 else ""),
        f"SWDEFINED       {sig.swdefined:#x}",
        f"ISVPRODID       {sig.isvprodid}",
        f"ISVSVN          {sig.isvsvn}",
        f"ATTRIBUTES      {sig.attributes_flags:#018x} [{bits_text(sig.attributes_flags, ATTRIBUTE_FLAG_NAMES)}]",
        f"  XFRM          {sig.attributes_xfrm:#018x} [{bits_text(sig.attributes_xfrm, XFRM_NAMES)}]",
        f"ATTRIBUTEMASK   {sig.attributemask_flags:#018x} [{mask_text(sig.attributemask_flags, ATTRIBUTE_FLAG_NAMES)}]",
        f"  XFRM mask     {sig.attributemask_xfrm:#018x} [{mask_text(sig.attributemask_xfrm, XFRM_NAMES)}]",
        f"MISCSELECT      {sig.miscselect:#010x} [{bits_text(sig.miscselect, MISCSELECT_NAMES)}]",
        f"MISCMASK        {sig.miscmask:#010x} [{mask_text(sig.miscmask, MISCSELECT_NAMES)}]",
        f"CET             attributes {sig.cet_attributes:#04x}, mask {sig.cet_attributes_mask:#04x}",
        f"ISVFAMILYID     {sig.isvfamilyid.hex()}",
        f"ISVEXTPRODID    {sig.isvextprodid.hex()}",
        f"EXPONENT        {sig.exponent}",
        f"signed bytes    sha256 {hashlib.sha256(sig.signed_bytes()).hexdigest()}",
    ]
    lines += [f"problem         {problem}" for problem in check.problems]
    return [indent + line for line in lines]


def _sigstruct_json(item: LabeledSigstruct) -> dict[str, Any]:
    data = item.sigstruct.to_dict()
    data["attributemask_flags_names"] = mask_text(item.sigstruct.attributemask_flags, ATTRIBUTE_FLAG_NAMES)
    data["attributemask_xfrm_names"] = mask_text(item.sigstruct.attributemask_xfrm, XFRM_NAMES)
    data["miscmask_names"] = mask_text(item.sigstruct.miscmask, MISCSELECT_NAMES)
    return data


# --------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------


def _layout_item_json(item: LayoutEntry | LayoutGroup) -> dict[str, Any]:
    if isinstance(item, LayoutGroup):
        return {"index": item.index, "id": item.id, "name": item.name, "group": True,
                "entry_count": item.entry_count, "load_times": item.load_times, "load_step": item.load_step}
    return {"index": item.index, "id": item.id, "name": item.name, "group": False,
            "attributes": item.attributes, "attribute_names": page_attr_names(item.attributes),
            "page_count": item.page_count, "rva": item.rva, "content_size": item.content_size,
            "content_offset": item.content_offset, "si_flags": item.si_flags}


def _block_json(block: MetadataBlock) -> dict[str, Any]:
    data = block.header_dict()
    data.update(
        position=block.position,
        version_text=block.version_text,
        dir_count=block.dir_count,
        dirs=[list(item) for item in block.dirs[: block.dir_count]],
        patches=[{"dst": p.dst, "src": p.src, "size": p.size} for p in block.patches],
        layout_table=[_layout_item_json(item) for item in block.layout],
        elrange=None if block.elrange is None else {
            "enclave_image_address": block.elrange.enclave_image_address,
            "elrange_start_address": block.elrange.elrange_start_address,
            "elrange_size": block.elrange.elrange_size,
        },
        extends=[{"entry_id": e.entry_id, "size": e.size, "offset": e.offset} for e in block.extends],
        sigstruct_label=f"metadata[{block.position}]",
    )
    return data


def _row_json(row: LayoutRow) -> dict[str, Any]:
    return {"entry": row.entry_index, "repetition": row.repetition, "group": row.group_index, "id": row.id,
            "name": row.name, "kind": row.kind, "rva": row.rva, "pages": row.pages,
            "attributes": row.attribute_names, "si_flags": row.si_flags, "treatment": row.treatment,
            "thread": row.thread, "removed_after_init": row.removed_after_init}


def _sdk_json(sdk: SdkEnclave) -> dict[str, Any]:
    note = sdk.metadata
    data: dict[str, Any] = {
        "release": sdk.release,
        "rules": release_family(sdk.release),
        "signed": sdk.signed,
        "note": {"section_offset": note.section_offset, "section_size": note.section_size,
                 "descsz": note.descsz, "desc_offset": note.desc_offset},
        "metadata_versions": list(note.versions),
        "metadata_blocks": [_block_json(block) for block in sdk.blocks],
        "layout_rows": None,
        "measurement": None,
        "relocation_pages": [],
        "legacy_extra_pages": [],
        "loader_notes": [],
    }
    if sdk.signed:
        load = sdk.load()
        data["layout_rows"] = [_row_json(row) for row in load.rows]
        data["measurement"] = {"size": load.plan.size, "ssaframesize": load.plan.ssaframesize,
                               "records": load.plan.counts(), "stream_bytes": load.plan.stream_size}
        data["relocation_pages"] = list(load.relocation_pages)
        data["legacy_extra_pages"] = list(load.legacy_extra_pages)
        data["loader_notes"] = list(load.notes)
    return data


def _sdk_lines(sdk: SdkEnclave) -> list[str]:
    note = sdk.metadata
    lines = [
        f"SDK release       {sdk.release or 'unknown'} (sgx_sign rules of SDK {release_family(sdk.release)})",
        f"metadata note     {note.section_offset:#x}, {note.section_size:#x} bytes, desc {note.descsz:#x} bytes, "
        f"{len(note.blocks)} block(s): {', '.join(note.versions) or 'none (not signed)'}",
    ]
    for block in sdk.blocks:
        lines += [
            f"metadata block {block.position}  version {block.version_text} at file offset {block.file_offset:#x}, "
            f"{block.size} bytes, {block.dir_count} dirs",
            f"  TCS policy      {block.tcs_policy} ({'UNBIND' if block.tcs_policy == 1 else 'BIND'})",
            f"  SSA frame size  {block.ssa_frame_size} page(s); XSAVE size {block.max_save_buffer_size} bytes",
            f"  enclave size    {block.enclave_size:#x} ({format_size(block.enclave_size)})",
            f"  attributes      FLAGS {block.attributes_flags:#x} [{bits_text(block.attributes_flags, ATTRIBUTE_FLAG_NAMES)}]"
            f", XFRM {block.attributes_xfrm:#x} [{bits_text(block.attributes_xfrm, XFRM_NAMES)}]",
            f"  MISCSELECT      {block.desired_misc_select:#x} (desired); TCS min pool {block.tcs_min_pool}",
            "  patches         " + "; ".join(f"{p.size} bytes -> file {p.dst:#x}" for p in block.patches),
            f"  layout table    {sum(1 for i in block.layout if not i.is_group)} entries, "
            f"{sum(1 for i in block.layout if i.is_group)} groups",
        ]
        if block.elrange is not None:
            lines.append(f"  ELRANGE         image {block.elrange.enclave_image_address:#x}, start "
                         f"{block.elrange.elrange_start_address:#x}, size {block.elrange.elrange_size:#x}")
        for extend in block.extends:
            lines.append(f"  EXTEND          id {extend.entry_id:#x}, {extend.size} bytes")
    if not sdk.signed:
        return lines
    load = sdk.load()
    counts = load.plan.counts()
    lines.append(
        f"measurement       SIZE {load.plan.size:#x}, SSAFRAMESIZE {load.plan.ssaframesize}, {counts['EADD']} EADD, "
        f"{counts['EEXTEND']} EEXTEND ({load.plan.stream_size} bytes hashed; 'ensign verify' recomputes it)"
    )
    lines += [f"loader note       {text}" for text in load.notes]
    lines.append(f"layout (metadata {sdk.primary.version_text}, groups expanded):")
    lines.append(f"  {'offset':>11} {'pages':>7}  {'entry':<38} {'SECINFO':<8} {'treatment':<11} attributes")
    rows = [_image_row_lines(sdk)] + [[_row_line(row)] for row in load.rows if row.pages]
    flat = [line for group in rows for line in group]
    if len(flat) > MAX_TEXT_ROWS:
        flat = flat[: MAX_TEXT_ROWS - 20] + [f"  ... {len(flat) - MAX_TEXT_ROWS} rows not shown (see --json) ..."] + flat[-20:]
    return lines + flat


def _image_row_lines(sdk: SdkEnclave) -> list[str]:
    lines = []
    for segment in sdk.image.load_segments:
        start = segment.vaddr & ~0xFFF
        pages = (-(-(segment.vaddr + segment.memsz) // 4096) * 4096 - start) // 4096
        flags = 0x200 | (1 if segment.flags & 4 else 0) | (2 if segment.flags & 2 else 0) | (4 if segment.flags & 1 else 0)
        sections = ", ".join(segment.sections[:3]) + (" ..." if len(segment.sections) > 3 else "")
        lines.append(f"  {start:#11x} {pages:>7}  {f'LOAD[{segment.index}] {sections}':<38.38} "
                     f"{secinfo_text(flags):<8} {'measured':<11} segment")
    return lines


def _row_line(row: LayoutRow) -> str:
    name = row.name if row.thread is None else f"thread {row.thread} {row.name}"
    if row.repetition:
        name += f" (group {row.group_index} #{row.repetition})"
    secinfo = secinfo_text(row.si_flags) if row.si_flags else "-"
    attributes = "|".join(row.attribute_names) or "-"
    return f"  {row.rva:#11x} {row.pages:>7}  {name:<38.38} {secinfo:<8} {row.treatment:<11} {attributes}"


def _config_report(sdk: SdkEnclave, config_path: str, release: str | None) -> tuple[dict[str, Any], list[str]]:
    config = load_config(config_path)
    derived = derive_layout(sdk.image, config, release=release or sdk.release)
    sources = config.sources()
    comparisons = compare_with_metadata(derived, sdk.metadata)
    data = {
        "file": config_path,
        "rules": derived.family,
        "parameters": {name: {"value": value, "source": sources[name]} for name, value in derived.settings.items()},
        "enclave_size": derived.enclave_size,
        "ssa_frame_size": derived.ssa_frame_size,
        "sgx2_metadata": derived.sgx2,
        "layout_start": derived.image_end,
        "primary_layout": [_layout_item_json(item) for item in derived.primary],
        "compat_layout": None if derived.compat is None else [_layout_item_json(item) for item in derived.compat],
        "comparison": [
            {"block": item.block_position, "version": item.version, "compared_with": item.compared_with,
             "equal": item.equal, "differences": list(item.differences)}
            for item in comparisons
        ],
        "notes": list(derived.notes),
    }
    lines = [f"configuration {config_path} (sgx_sign rules of SDK {derived.family}):"]
    for name, value in derived.settings.items():
        lines.append(f"  {name:<22} {value:#x}" + ("" if sources[name] == "config" else "  (default)"))
    lines.append(f"  derived: enclave size {derived.enclave_size:#x}, SSA frame size {derived.ssa_frame_size}, "
                 f"layout from {derived.image_end:#x}, {len(derived.primary)} primary entries"
                 + (", SGX2 metadata" if derived.sgx2 else ""))
    for item in comparisons:
        if item.equal:
            lines.append(f"  metadata block {item.block_position} ({item.version}): equals the derived {item.compared_with} layout")
        else:
            lines.append(f"  metadata block {item.block_position} ({item.version}) differs from the derived "
                         f"{item.compared_with} layout:")
            lines += [f"    {difference}" for difference in item.differences]
    if not comparisons:
        lines.append("  the enclave is not signed: nothing to compare (derived layout in --json)")
    lines += [f"  note: {note}" for note in derived.notes]
    data["whatif"], whatif_lines = _whatif_report(sdk, config, release)
    lines += whatif_lines
    return data, lines


def _whatif_report(sdk: SdkEnclave, config: Any, release: str | None) -> tuple[dict[str, Any], list[str]]:
    """The predicted MRENCLAVE, derived layout table and g_global_data fields (``core.sdk_whatif``)."""
    from core.sdk_whatif import SdkWhatIf
    from tui.cli_sdk import global_data_lines, layout_table_lines, whatif_json

    try:
        result = SdkWhatIf(sdk, release=release).predict(config)
    except EnsignError as error:
        return {"refused": error.message}, [f"  what-if: {error.message}"]
    data = whatif_json(result)
    signed = sdk.sigstruct.enclavehash.hex() if sdk.signed else None
    data["signed_enclavehash"] = signed
    lines = [f"  predicted MRENCLAVE {result.mrenclave} (sgx_sign of {result.profile.label})"]
    if signed is not None:
        lines.append("  the signed ENCLAVEHASH " + ("is the same" if signed == result.mrenclave else f"differs: {signed}"))
    lines.append(f"  derived primary layout ({len(result.layout.primary)} entries, from {result.layout.image_end:#x}):")
    lines += layout_table_lines(result.layout.primary, indent="    ")
    symbol = result.global_data_symbol
    table_rows = [item for item in result.global_data_fields if item.name.startswith("layout_table[")]
    lines.append(f"  g_global_data ({len(result.global_data)} bytes at rva {symbol.rva:#x}, file offset "
                 f"{symbol.file_offset:#x}; {result.profile.struct} global_data_t, fields not listed are 0):")
    lines += global_data_lines([item for item in result.global_data_fields if item not in table_rows], indent="    ")
    if table_rows:
        lines.append(f"    +{table_rows[0].offset:<5} layout_table[{len(table_rows)}]        the derived primary layout "
                     f"above (TCS content_offset {result.tcs_content_offset:#x})")
    return data, lines


def _oe_lines(container: Container) -> list[str]:
    oe = container.oe
    assert oe is not None
    header, config = oe.header, oe.config
    lines = [
        f".oeinfo           file offset {oe.oeinfo_offset:#x}, {oe.oeinfo_size:#x} bytes; properties size "
        f"{oe.properties_size}; SIGSTRUCT at +{oe.sigstruct_offset}",
        f"settings          enclave type {header['enclave_type']}, {header['num_heap_pages']} heap pages, "
        f"{header['num_stack_pages']} stack pages, {header['num_tcs']} TCS",
        f"config            product id {config['product_id']}, security version {config['security_version']}, "
        f"attributes {config['attributes']:#x} [{bits_text(config['attributes'], ATTRIBUTE_FLAG_NAMES)}]",
    ]
    if "xfrm" in config:
        lines.append(f"                  flags {config['flags']:#x}, xfrm {config['xfrm']:#x}, start address "
                     f"{config['start_address']:#x}")
    return lines


def _sgxs_lines(container: Container) -> list[str]:
    stream = container.sgxs
    assert stream is not None
    counts = stream.counts
    lines = [
        f"ECREATE           SSAFRAMESIZE {stream.ssaframesize}, SIZE {stream.size:#x}"
        + (" (UNSIZED: not final)" if stream.unsized else ""),
        f"records           {counts['ECREATE']} ECREATE, {counts['EADD']} EADD, {counts['EEXTEND']} EEXTEND, "
        f"{counts['UNMEASRD']} UNMEASRD ({stream.stream_bytes} bytes)",
        f"canonical         {'yes' if stream.canonical else 'no'}",
        f"plan              {'yes' if stream.plan is not None else 'no: ' + (stream.plan_problem or '')}",
        "pages:",
    ]
    ranges = stream.ranges()
    shown = [f"  {item.describe()}" for item in ranges]
    if len(shown) > MAX_TEXT_ROWS:
        shown = shown[: MAX_TEXT_ROWS - 20] + [f"  ... {len(shown) - MAX_TEXT_ROWS} ranges not shown ..."] + shown[-20:]
    return lines + shown


def _sgxs_json(container: Container) -> dict[str, Any]:
    stream = container.sgxs
    assert stream is not None
    return {
        "ssaframesize": stream.ssaframesize,
        "size": stream.size,
        "unsized": stream.unsized,
        "records": stream.record_counts,
        "unmeasured_records": stream.counts["UNMEASRD"],
        "stream_bytes": stream.stream_bytes,
        "canonical": stream.canonical,
        "plan": stream.plan is not None,
        "plan_problem": stream.plan_problem,
        "ranges": [{"start": r.start, "pages": r.pages, "flags": r.flags, "status": r.status} for r in stream.ranges()],
        "problems": list(stream.problems),
    }


def _token_lines(container: Container) -> tuple[list[str], dict[str, Any] | None]:
    token = container.token
    assert token is not None
    lines = [
        f"VALID             {token.valid}" + ("" if token.valid & 1 else " (dummy token)"),
        f"ATTRIBUTES        {token.attributes_flags:#018x} [{bits_text(token.attributes_flags, ATTRIBUTE_FLAG_NAMES)}]",
        f"  XFRM            {token.attributes_xfrm:#018x} [{bits_text(token.attributes_xfrm, XFRM_NAMES)}]",
        f"MRENCLAVE         {token.mrenclave.hex()}",
        f"MRSIGNER          {token.mrsigner.hex()}",
        f"CPUSVNLE          {token.cpusvnle.hex()}",
        f"ISVPRODIDLE       {token.isvprodidle}",
        f"ISVSVNLE          {token.isvsvnle}",
        f"MASKEDMISCSELECTLE {token.maskedmiscselectle:#010x}",
        f"MASKEDATTRIBUTESLE {token.maskedattributesle.hex()}",
        f"KEYID             {token.keyid.hex()}",
        f"MAC               {token.mac.hex()}",
    ]
    if token.trailing_nonzero:
        lines.append("note              non-zero bytes after the 304 token bytes")
    companion = find_companion_sigstruct(container.path)
    match_data = None
    if companion is not None:
        from core.token import match_token

        try:
            with open_any(companion) as other:
                sigstruct = other.sigstruct
        except EnsignError:
            sigstruct = None
        if sigstruct is not None:
            match = match_token(token, sigstruct)
            match_data = {"sigstruct_file": companion, "mrenclave": match.mrenclave, "mrsigner": match.mrsigner,
                          "attributes": match.attributes, "valid": match.valid, "ok": match.ok}
            lines.append(
                f"matches {companion}: MRENCLAVE {'yes' if match.mrenclave else 'NO'}, MRSIGNER "
                f"{'yes' if match.mrsigner else 'NO'}, ATTRIBUTES {'yes' if match.attributes else 'NO'}"
            )
    return lines, match_data


def _region_json(container: Container) -> list[dict[str, Any]] | None:
    try:
        regions = container.regions()
    except EnsignError:
        return None
    if not regions:
        return None
    return [{"name": r.name, "kind": r.kind, "offset": r.offset, "pages": r.pages, "flags": r.flags,
             "treatment": r.treatment, "thread": r.thread} for r in regions]


def describe_container(
    container: Container, *, config: str | None = None, release: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """JSON document and text lines for an opened container.

    Args:
        container: what ``open_any`` returned.
        config: an ``Enclave.config.xml`` to read, derive and compare (SDK enclaves only).
        release: SDK release whose sgx_sign rules to apply with ``config`` (default: the enclave's).

    Raises:
        EnsignError: ``config`` given for a non-SDK file, or invalid.
    """
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "file": container.path,
        "kind": container.kind,
        "title": container.title,
        "file_size": container.file_size,
        "sigstruct": _sigstruct_json(container.sigstructs[0]) if container.sigstructs else None,
        "sigstructs": {item.label: _sigstruct_json(item) for item in container.sigstructs},
        "sigstruct_sources": {item.label: item.description for item in container.sigstructs},
        "params": None,
        "ensign": None,
        "sdk": None,
        "oe": None,
        "sgxs": None,
        "token": None,
        "layout": _region_json(container),
        "config": None,
        "notes": list(container.notes),
    }
    lines = [f"{container.path}: {container.title}"]
    signature = container.ensign.signature if container.ensign is not None else None
    if signature is not None:
        params = signature.params
        data["params"] = {spec.name: getattr(params, spec.name) for spec in PARAMETERS if spec.name != "key"}
        data["ensign"] = {"date": f"{signature.date:08x}", "image_pages": len(signature.digests) // 8}
        lines.append("signed parameters:")
        for spec in PARAMETERS:
            if spec.name == "key":
                continue
            value = getattr(params, spec.name)
            shown = format_size(value) if spec.kind == "size" else (
                f"{value:#x}" if spec.kind == "xfrm" else str(int(value)))
            lines.append(f"  {spec.name:<10} {shown}")
    if container.sdk is not None:
        data["sdk"] = _sdk_json(container.sdk)
        lines += _sdk_lines(container.sdk)
        if config is not None:
            data["config"], config_lines = _config_report(container.sdk, config, release)
            lines += config_lines
    elif config is not None:
        raise EnsignError(f"--config applies to Intel SGX SDK enclaves; {container.path} is a {container.kind}")
    if container.oe is not None:
        data["oe"] = container.oe.to_dict()
        lines += _oe_lines(container)
    if container.sgxs is not None:
        data["sgxs"] = _sgxs_json(container)
        lines += _sgxs_lines(container)
    if container.token is not None:
        token_lines, match = _token_lines(container)
        data["token"] = container.token.to_dict()
        data["token"]["match"] = match
        lines += token_lines
    lines += [f"note              {note}" for note in container.notes]
    for index, item in enumerate(container.sigstructs):
        if index and item.sigstruct == container.sigstructs[0].sigstruct and container.sdk is not None:
            lines.append(f"SIGSTRUCT {item.label}: identical to {container.sigstructs[0].label}")
            continue
        lines.append(f"SIGSTRUCT {item.label} ({item.description}):")
        lines += sigstruct_lines(item.sigstruct)
    return data, lines


def describe_file(path: str, *, config: str | None = None, release: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Open ``path`` and describe it for ``ensign info``.

    Args:
        path: any file ``core.containers.open_any`` reads.
        config: an ``Enclave.config.xml`` to compare with (SDK enclaves).
        release: SDK release for the config rules (default: the enclave's own).

    Returns:
        (JSON dict, text lines).

    Raises:
        EnsignError: unreadable, or none of the formats ensign reads (the message says what it looked like).
    """
    with open_any(path) as container:
        return describe_container(container, config=config, release=release)
