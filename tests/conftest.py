"""Shared pytest fixtures for ensign's tests.

Session-scoped, so expensive things (compiling test programs) happen once per run. Add new shared
fixtures below in their own section; keep fixtures that only one test module uses in that module.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
SAMPLE_BINARY = REPO_ROOT / "tui" / "sample" / "sample-enclave"

# --- ELF test programs ----------------------------------------------------------------------------

# A tiny program with what the ELF tests look for: several functions, .data, .bss and thread-local
# storage (.tdata/.tbss, hence a PT_TLS segment). It prints one line and exits 0.
TEST_PROGRAM_SOURCE = r"""
#include <stdio.h>

int lookup_table[16] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
char work_buffer[8192];
__thread int thread_counter = 7;
__thread char thread_scratch[32];

__attribute__((noinline)) int checksum(const int *values, int count)
{
    int sum = 0;
    for (int i = 0; i < count; i++) {
        sum = sum * 31 + values[i];
    }
    return sum;
}

int main(void)
{
    thread_counter += checksum(lookup_table, 16) & 0xff;
    work_buffer[0] = (char)thread_counter;
    thread_scratch[0] = work_buffer[0];
    printf("ensign test program %d\n", thread_counter + thread_scratch[1]);
    return 0;
}
"""


def _compile(tmp_path_factory: pytest.TempPathFactory, name: str, flags: list[str]) -> Path:
    """Compile TEST_PROGRAM_SOURCE with gcc, skipping the test if gcc or its libraries are missing."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed: cannot build ELF test programs")
    directory = tmp_path_factory.mktemp(name)
    source = directory / "program.c"
    source.write_text(TEST_PROGRAM_SOURCE)
    output = directory / name
    result = subprocess.run(
        [gcc, "-O2", *flags, "-o", str(output), str(source)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"gcc {' '.join(flags)} failed (missing static glibc/libc6-dev?): {last_line}")
    return output


@pytest.fixture(scope="session")
def gcc_static_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static, non-PIE x86-64 executable (ET_EXEC) with .data, .bss and PT_TLS, built by gcc."""
    return _compile(tmp_path_factory, "static-program", ["-static", "-no-pie"])


@pytest.fixture(scope="session")
def gcc_pie_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dynamically linked position-independent executable (ET_DYN) with PT_TLS, built by gcc."""
    return _compile(tmp_path_factory, "pie-program", ["-fPIE", "-pie"])


@pytest.fixture(scope="session")
def sample_binary() -> Path:
    """The bundled sample enclave program, tui/sample/sample-enclave (scripts/build_sample.sh)."""
    if not SAMPLE_BINARY.is_file():
        pytest.skip(f"bundled sample {SAMPLE_BINARY} missing: run scripts/build_sample.sh")
    return SAMPLE_BINARY


# --- shared fixtures folder -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """../shared/fixtures: real SGX artifacts with expected values (read-only)."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("shared fixtures folder ../shared/fixtures not present")
    return SHARED_FIXTURES
