"""What the C headers of the fast path refuse at build time."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[2] / "csrc"


# the two system headers ixy_regs.h includes, freestanding, so the compiler
# can be told it targets no x86 without the C library's headers objecting
FREESTANDING = {
    "stdint.h": "typedef unsigned char uint8_t; typedef unsigned short uint16_t; typedef unsigned int uint32_t;\n",
    "stddef.h": "typedef unsigned long size_t;\n",
}


def compile_regs_h(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler: the package cannot be built either")
    for name, text in FREESTANDING.items():
        (tmp_path / name).write_text(text)
    return subprocess.run([cc, "-fsyntax-only", "-nostdinc", "-x", "c", *flags, "-I", str(tmp_path),
                           "-I", str(CSRC), "-"],
                          input='#include "ixy_regs.h"\n', capture_output=True, text=True)


def test_ixy_regs_builds_on_x86(tmp_path):
    done = compile_regs_h(tmp_path)
    assert done.returncode == 0, done.stderr


def test_ixy_regs_refuses_other_architectures(tmp_path):
    """Tail writes are ordered after descriptor stores by x86's store order
    alone; elsewhere the build must stop instead of running unordered."""
    done = compile_regs_h(tmp_path, "-U__x86_64__", "-U__i386__")
    assert done.returncode != 0
    assert "written for x86 memory ordering" in done.stderr
