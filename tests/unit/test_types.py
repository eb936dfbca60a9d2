"""The public API carries types a checker uses: mypy accepts src/ixypy and
examples/, and, through the .pyi stubs of the compiled fast path, refuses a
wrong call into it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mypy(tmp_path_factory):
    cache = tmp_path_factory.mktemp("mypy-cache")

    def run(*targets: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *targets], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "MYPYPATH": str(ROOT / "src")})
    return run


def test_mypy_accepts_the_package_and_the_examples(mypy):
    done = mypy("src/ixypy", "examples")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_refuses_wrong_calls_into_the_fast_path(mypy, tmp_path):
    """The negative control: were the compiled modules untyped (Any), these
    calls would pass."""
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import ixypy\n"
                     "batch = ixypy.PacketBatch('32')\n"
                     "dev = ixypy.open('sim:sink')\n"
                     "dev.rx_queue(0).rx(42)\n"
                     "pool: ixypy.Mempool = dev.mempool(1024)\n"
                     "pool.fill(3.5)\n")
    done = mypy(str(wrong))
    assert done.returncode == 1
    for line in (2, 4, 6):
        assert f"wrong.py:{line}: error" in done.stdout, done.stdout
