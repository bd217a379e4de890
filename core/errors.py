"""The one error hierarchy of ensign.

Every problem with user input (files, flags, keys) is raised as a subclass of
:class:`EnsignError`. The CLI prints ``ensign: <message>`` and exits 2; the TUI shows
``title`` and ``message`` in a modal or toast. Nothing in ``core`` raises a bare
``ValueError``/``KeyError`` for bad input, and no message ever contains key material.
"""

from __future__ import annotations


class EnsignError(Exception):
    """Base class of every error ensign reports to a user.

    Args:
        message: one line naming the problem (and the file/flag it concerns).
        title: a short heading for dialogs; defaults to the class's ``default_title``.
    """

    default_title = "ensign error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.title = title or self.default_title

    def __str__(self) -> str:
        return self.message


class ElfFormatError(EnsignError):
    """The file is not an ELF64 x86-64 executable/shared object we can load."""

    default_title = "Not a usable ELF file"


class ParamError(EnsignError):
    """A parameter value (flag, environment variable, config element) is invalid."""

    default_title = "Invalid parameter"


class LayoutError(EnsignError):
    """The enclave layout cannot be derived (too large, overlapping, ...)."""

    default_title = "Layout error"


class MeasurementCancelled(EnsignError):
    """A measurement was cancelled through its cancel event."""

    default_title = "Measurement cancelled"


class SigstructFormatError(EnsignError):
    """A SIGSTRUCT is truncated or malformed."""

    default_title = "Malformed SIGSTRUCT"


class SigningKeyError(EnsignError):
    """A signing key cannot be used (wrong size/exponent, bad passphrase, unreadable)."""

    default_title = "Signing key error"


class SignatureError(EnsignError):
    """A signature does not verify or cannot be attached."""

    default_title = "Signature error"


class ContainerError(EnsignError):
    """A file is none of the containers ensign reads, or one of them is corrupt."""

    default_title = "Unrecognised file"


class SdkError(EnsignError):
    """Intel SGX SDK metadata or configuration problem (including sgx_sign refusals)."""

    default_title = "Intel SGX SDK enclave error"


class WriteError(EnsignError):
    """Writing an output file failed; the original is left intact."""

    default_title = "Write failed"


class Pkcs11Error(EnsignError):
    """A PKCS#11 module, token or key could not be used."""

    default_title = "PKCS#11 error"
