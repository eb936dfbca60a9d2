"""ixypy as a user installs it: `python -m build` makes an sdist and, from it,
a wheel; each goes into a fresh virtualenv outside the checkout, where the
packet generator runs on a sim device."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what a user's environment has: none of the checkout's paths
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=CLEAN_ENV, **kw)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """The sdist, and the wheel built from it (python -m build does both)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    (sdist,) = out.glob("ixypy-*.tar.gz")
    (wheel,) = out.glob("ixypy-*.whl")
    return sdist, wheel


def fresh_venv(where: Path) -> Path:
    venv.create(where, with_pip=True)
    return where / "bin"


def test_sdist_has_the_sources(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for module in ("regs", "mempool", "batch", "queue", "intel", "virtio", "bench"):
        for ext in ("pyx", "pxd" if module != "bench" else "pyi", "pyi"):
            assert f"src/ixypy/fastpath/{module}.{ext}" in names
    assert {"src/ixypy/sim/_model.pyx", "csrc/ixy_mempool.h", "csrc/sim/virtio_model.c"} <= names
    assert not [n for n in names if n.endswith(".so") or n.startswith("src/") and n.endswith(".c")]


@pytest.mark.parametrize("kind", ["sdist", "wheel"])
def test_installed_pktgen_runs(dists, kind, tmp_path):
    """pip install of the sdist builds everything from scratch; the wheel
    installs as built. Then, from outside the checkout: ixypy pktgen."""
    dist = dists[0] if kind == "sdist" else dists[1]
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "python", "-m", "pip", "install", "-q", dist)
    done = run(bin_dir / "ixypy", "pktgen", "sim:sink", "-n", "100000", "--json", cwd=tmp_path)
    final = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")][-1]
    assert final["tx_packets"] >= 100000
    located = run(bin_dir / "python", "-c", "import ixypy.fastpath.batch as m; print(m.__file__)", cwd=tmp_path)
    assert located.stdout.startswith(str(tmp_path / "venv"))


USERS_TESTS = '''
import pytest
from ixypy import PacketBatch
from ixypy.errors import DeviceGone
from ixypy.packets import udp_frame
from ixypy.testing import faults


@pytest.mark.parametrize("ixypy_sim_kind", ["ixgbe", "igb"])
def test_my_pair(ixypy_pair):
    a, b = ixypy_pair
    pool = a.mempool(256)
    pool.fill(udp_frame())
    batch = PacketBatch(8)
    batch.alloc(pool, 8)
    assert a.tx_batch(0, batch) == 8
    a.flush_tx()
    faults(b).remove()
    with pytest.raises(DeviceGone):
        b.stats()


def test_my_sink(ixypy_sink, ixypy_source):
    assert ixypy_sink.link_speed() and ixypy_source.link_speed()
'''


def test_the_pytest_plugin_serves_a_users_suite(dists, tmp_path):
    """The wheel's pytest11 entry point: a user's tests, in a directory with
    no conftest, get the sim fixtures and faults. The negative control: the
    same suite with the plugin disabled finds no fixture."""
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "python", "-m", "pip", "install", "-q", dists[1], "pytest")
    suite = tmp_path / "users_suite"
    suite.mkdir()
    (suite / "test_users_app.py").write_text(USERS_TESTS)
    done = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", suite, cwd=suite)
    assert "3 passed" in done.stdout
    without = subprocess.run([bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "-p", "no:ixypy.testing", suite], cwd=suite, env=CLEAN_ENV, capture_output=True, text=True)
    # pytest stops at the first test: its parametrized fixture ixypy_sim_kind is nowhere
    assert without.returncode != 0 and "uses no argument 'ixypy_sim_kind'" in without.stdout
