"""Another Cython module builds on the fast path: it cimports PacketBatch and
Queue from their .pxd files, reads the batch's C array and calls a queue's
per-batch C step, and is compiled here as a user's extension would be."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import ixypy
from ixypy import PacketBatch

from ..simdev import wait_until

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = """
# cython: language_level=3
from libc.stdint cimport uint32_t, uint64_t
from ixypy.fastpath.batch cimport PacketBatch
from ixypy.fastpath.queue cimport Queue

def receive(Queue rxq, PacketBatch batch):
    '''One rx step through the queue's inline C step, no Python entry point.'''
    return rxq._rx_into(batch)

def lengths(PacketBatch batch):
    '''The packets' lengths, read from the batch's C array of buffers.'''
    cdef uint64_t total = 0
    cdef uint32_t i
    for i in range(batch.count):
        total += batch.bufs[i].len
    return total, batch.count
"""


USER_SETUP = """
from Cython.Build import cythonize
from setuptools import Extension, setup
setup(ext_modules=cythonize([Extension("user_fast", ["user_fast.pyx"], include_dirs=[{csrc!r}])],
                            include_path=[{package_root!r}]))
"""


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    """user_fast.pyx built as a user's project would build it: cimports
    resolved from the .pxd files next to the installed ixypy package."""
    build = tmp_path_factory.mktemp("cimport")
    (build / "user_fast.pyx").write_text(USER_MODULE)
    (build / "setup.py").write_text(USER_SETUP.format(csrc=str(ROOT / "csrc"),
                                                      package_root=str(Path(ixypy.__file__).parents[1])))
    done = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=build,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    path = next(build.glob("user_fast*.so"))
    spec = importlib.util.spec_from_file_location("user_fast", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_user_module_receives_and_reads_a_batch(user_module):
    with ixypy.open("sim:source") as dev:
        rxq, batch = dev.rx_queue(0), PacketBatch(32)
        assert wait_until(lambda: user_module.receive(rxq, batch) > 0)
        total, count = user_module.lengths(batch)
        assert count == len(batch) > 0
        assert total == batch.total_bytes() == sum(len(batch[i]) for i in range(count))
        assert rxq.packets == count
        batch.free()
