"""The help screen: keys, what the marks and badges mean, and what each tab shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown

HELP_TEXT = """\
**ensign inspect** shows what an ELF program becomes inside an SGX enclave: edit a parameter
and both MRENCLAVEs (SGX1 and EDMM) are recomputed; only what changed is re-hashed.

| key | action |
|---|---|
| `e` | edit parameters (`tab` moves between fields, `esc` goes back) |
| `1` `2` `3` `4` | Segments, Layout, Records, Compare tab |
| `v` | show the SGX1 or the EDMM layout and records |
| `s` | sign (opens a dialog; nothing is written before you confirm) |
| `o` | open another binary |
| `l` | load a SIGSTRUCT to compare: a raw `.sig` or a signed binary |
| `w` | explain why the MRENCLAVE differs from the compared SIGSTRUCT |
| `d` | diff the record streams of the signed and the current parameters |
| `u` | use the parameters Explain found |
| `f` | save the edited `Enclave.config.xml` (Intel SGX SDK enclaves) |
| `c` | copy the MRENCLAVE shown |
| `x` | export the record stream as `.sgxs` |
| `k` | generate a signing key (RSA-3072, e=3) |
| `ctrl+p` | command palette |
| `?` / `f1` | this help |
| `q` | quit |

**Parameters.** `●` changes MRENCLAVE; `○` changes only SIGSTRUCT fields (ISVSVN,
ISVPRODID, production, key). Values take the command-line forms: `64M`, `0x1000`, `2G`.
The badge says where a value came from: `default`, `env` (SCONE_* with `--env`), `flag`,
`signed` (the binary's own signature) or `edited` (typed here). A bad value shows its error
under the field and the last good MRENCLAVE stays.

**Other files.** `o` opens any file ensign reads: Intel SGX SDK and Open Enclave enclaves,
`.sgxs` streams, raw SIGSTRUCTs and launch tokens. Their layout is fixed by the file, so the
parameters form is hidden and one MRENCLAVE is shown (or why there is none). An SDK enclave
shows its `Enclave.config.xml` instead (from `--config`, else recovered from the signed
metadata): an edit predicts the layout, records and MRENCLAVE `sgx_sign` would produce, and
values `sgx_sign` refuses are named under the field.

**Measurement.** While a new MRENCLAVE is being computed the old one is dimmed. The line
below says how much of the record stream was re-hashed and how long it took.

**Compare.** Field by field, a loaded SIGSTRUCT against what the current parameters and key
would produce (✓/✗), with signature validity and MRSIGNER; when ENCLAVEHASH differs the
parameters that differ from the signed ones are named. **Explain** (`w`) names each
parameter difference, checks the image against the signed page digests and, when needed,
searches parameters that reproduce the target (`u` applies a match). **Diff** (`d`) compares
the record streams of the signed and the current parameters; `enter` on a row shows that
record, marked, in the Records tab.

**Sign.** Four ways: a key file (or ensign's public debug key for debug enclaves) with its
passphrase; a PKCS#11 token (module, token, key label/id or a `pkcs11:` URI; the PIN is
asked for, masked); export the signing data (or digests) for an offline signer; and attach
the signatures made offline. The summary shows exactly what will be written. Production
with the debug key is refused.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and concepts."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "Close help", id="help-close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("ensign inspect — help", classes="dialog-title")
            with VerticalScroll():
                yield Markdown(HELP_TEXT)

    def action_close(self) -> None:
        """Close help."""
        self.dismiss(None)
