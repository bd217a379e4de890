"""ensign's headless core: ELF loading, parameters, layout, measurement, SIGSTRUCT and signing.

Never imports textual, rich or tui, never prints; errors are EnsignError subclasses.
The names below are the public API used by the CLI, the TUI and the tests.
"""

from __future__ import annotations

from core.enclave import (
    EnclaveBinary,
    MeasuredPair,
    PageLocation,
    SignResult,
    VerifyResult,
    sign_enclave,
    verify_enclave,
)
from core.errors import EnsignError
from core.layout import VARIANT_EDMM, VARIANT_SGX1, Layout, Region, derive_layout
from core.measure import Measurement, Measurer
from core.params import PARAMETERS, Params, resolve_params
from core.records import MeasurementPlan, PageRun, Record
from core.sigstruct import Sigstruct

__all__ = [
    "EnclaveBinary", "EnsignError", "Layout", "MeasuredPair", "Measurement", "MeasurementPlan", "Measurer",
    "PARAMETERS", "PageLocation", "PageRun", "Params", "Record", "Region", "SignResult", "Sigstruct",
    "VARIANT_EDMM", "VARIANT_SGX1", "VerifyResult", "derive_layout", "resolve_params",
    "sign_enclave", "verify_enclave",
]
