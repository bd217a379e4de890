"""ensign's headless core: ELF loading, parameters, layout, measurement, SIGSTRUCT and signing.

Never imports textual, rich or tui, never prints; errors are EnsignError subclasses.
The names below are the public API used by the CLI, the TUI and the tests. They are
loaded on first use (PEP 562), so ``import core.errors`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "EnclaveBinary": "core.enclave",
    "MeasuredPair": "core.enclave",
    "PageLocation": "core.enclave",
    "SignResult": "core.enclave",
    "VerifyResult": "core.enclave",
    "sign_enclave": "core.enclave",
    "verify_enclave": "core.enclave",
    "EnsignError": "core.errors",
    "VARIANT_EDMM": "core.layout",
    "VARIANT_SGX1": "core.layout",
    "Layout": "core.layout",
    "Region": "core.layout",
    "derive_layout": "core.layout",
    "Measurement": "core.measure",
    "Measurer": "core.measure",
    "PARAMETERS": "core.params",
    "Params": "core.params",
    "resolve_params": "core.params",
    "MeasurementPlan": "core.records",
    "PageRun": "core.records",
    "Record": "core.records",
    "Sigstruct": "core.sigstruct",
    "open_any": "core.containers",
    "SdkEnclave": "core.sdk",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
