"""Runtime drift check: would this signed program start with its signed MRENCLAVE here?

A SCONE-style runtime sizes the enclave from the ``SCONE_*`` environment it starts in
(unset variables take the defaults), exactly as ``ensign sign --env`` reads them. If that
configuration differs from the signed one in any value that reaches MRENCLAVE, the runtime
computes another MRENCLAVE and EINIT refuses the signature. :func:`check_drift` derives the
runtime's parameters from an environment mapping, names the variables that drift, and
measures what the runtime would compute against the signed ENCLAVEHASHes.

This module reads only the mapping it is given (never ``os.environ`` itself), never prints
and never imports a UI.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.diagnose import value_text
from core.enclave import EnclaveBinary, PageLocation
from core.errors import ContainerError
from core.layout import VARIANT_EDMM, VARIANT_SGX1, VARIANTS
from core.measure import ProgressCallback
from core.params import PARAMETERS, Params, resolve_params
from core.signed import SECTION_NAME
from core.sigstruct import Sigstruct


@dataclass(frozen=True, slots=True)
class DriftVariable:
    """A parameter whose runtime value (from the environment) differs from the signed one."""

    parameter: str  # e.g. 'heap'
    variable: str  # e.g. 'SCONE_HEAP'
    value: str | None  # the variable's text in the environment; None when unset
    runtime: str  # the value the runtime uses (display text)
    signed: str  # the signed value (display text)
    affects_mrenclave: bool  # False: only SIGSTRUCT fields (the runtime does not re-sign)

    def describe(self) -> str:
        """``SCONE_HEAP=64M: the runtime uses 64M, signed 2G`` or ``SCONE_HEAP unset: …``."""
        setting = f"{self.variable}={self.value}" if self.value is not None else f"{self.variable} unset"
        return f"{setting}: the runtime uses {self.parameter} {self.runtime}, signed {self.signed}"


@dataclass(frozen=True, slots=True)
class VariantCheck:
    """One measurement variant: what was signed and what the runtime would compute."""

    variant: str  # 'sgx1' | 'edmm'
    signed: bytes  # the signed ENCLAVEHASH
    runtime: bytes  # MRENCLAVE under the runtime parameters

    @property
    def matches(self) -> bool:
        """True when the runtime would reproduce the signed hash."""
        return self.signed == self.runtime


@dataclass(frozen=True, slots=True)
class DriftReport:
    """The answer of :func:`check_drift`."""

    path: str
    signed: Params | None  # None with a bare SIGSTRUCT (signed values unknown)
    runtime: Params  # defaults + SCONE_* environment
    drifting: tuple[DriftVariable, ...]  # MRENCLAVE-relevant differences
    sigstruct_only: tuple[DriftVariable, ...]  # differences that do not change MRENCLAVE
    checks: tuple[VariantCheck, ...]
    changed_page: PageLocation | None  # nothing drifts but the hash does: the first changed image page

    @property
    def ok(self) -> bool:
        """True when every checked variant would start with its signed MRENCLAVE."""
        return all(check.matches for check in self.checks)


def runtime_params(environ: Mapping[str, str]) -> Params:
    """The parameters a runtime uses in ``environ``: defaults, then the ``SCONE_*`` variables.

    Raises:
        ParamError: an invalid variable, named.
    """
    return resolve_params(None, environ=environ, use_env=True)


def drift_variables(signed: Params, runtime: Params, environ: Mapping[str, str]) -> list[DriftVariable]:
    """Every parameter whose runtime value differs from the signed one, with its variable."""
    out = []
    for spec in PARAMETERS:
        if spec.name == "key":
            continue
        signed_value, runtime_value = getattr(signed, spec.name), getattr(runtime, spec.name)
        if signed_value == runtime_value:
            continue
        text = environ.get(spec.env)
        out.append(DriftVariable(spec.name, spec.env, text if text not in (None, "") else None,
                                 value_text(spec.name, runtime_value), value_text(spec.name, signed_value),
                                 spec.affects_mrenclave))
    return out


def check_drift(
    binary: EnclaveBinary,
    environ: Mapping[str, str],
    *,
    sigstruct: Sigstruct | None = None,
    variants: Sequence[str] = VARIANTS,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> DriftReport:
    """Would ``binary`` start with its signed MRENCLAVE in ``environ``?

    Args:
        binary: an ensign-signed program (or any program, with ``sigstruct``).
        environ: the environment the runtime would see (``os.environ`` for "here").
        sigstruct: check against this SIGSTRUCT instead of the embedded signature (its
            variant is found by matching either measurement).
        variants: which signed measurements to check (default both).
        on_progress: ``(done, total)`` bytes over all measurements.
        cancel: stops the measurement (raises MeasurementCancelled).

    Returns:
        The :class:`DriftReport`.

    Raises:
        ContainerError: nothing to check against.
        ParamError: an invalid ``SCONE_*`` value.
    """
    signature = binary.signature
    if signature is None and sigstruct is None:
        raise ContainerError(f"{binary.path}: not signed by ensign (no {SECTION_NAME} section); give --sig FILE")
    runtime = runtime_params(environ)
    signed = signature.params if signature is not None else None
    drifting: list[DriftVariable] = []
    other: list[DriftVariable] = []
    if signed is not None:
        for variable in drift_variables(signed, runtime, environ):
            (drifting if variable.affects_mrenclave else other).append(variable)

    checks: list[VariantCheck] = []
    if sigstruct is not None:
        pair = binary.measure_pair(runtime, on_progress=on_progress, cancel=cancel)
        expected = sigstruct.enclavehash
        measured = pair.edmm_measurement if expected == pair.edmm_measurement.mrenclave else pair.sgx1_measurement
        variant = VARIANT_EDMM if measured is pair.edmm_measurement else VARIANT_SGX1
        checks.append(VariantCheck(variant, expected, measured.mrenclave))
    else:
        assert signature is not None
        wanted = [v for v in VARIANTS if v in variants]
        signed_hashes = {VARIANT_SGX1: signature.sgx1.enclavehash, VARIANT_EDMM: signature.edmm.enclavehash}
        for variant in wanted:
            _layout, measurement = binary.measure(runtime, variant, on_progress=on_progress, cancel=cancel)
            checks.append(VariantCheck(variant, signed_hashes[variant], measurement.mrenclave))

    changed = None
    if any(not check.matches for check in checks) and not drifting and signature is not None:
        changed = binary.first_changed_image_page(signature.digests)
    return DriftReport(path=binary.path, signed=signed, runtime=runtime, drifting=tuple(drifting),
                       sigstruct_only=tuple(other), checks=tuple(checks), changed_page=changed)


__all__ = ["DriftReport", "DriftVariable", "VariantCheck", "check_drift", "drift_variables", "runtime_params"]
