"""The counting allocator of test_allocations.py: countalloc.c, compiled at
test time with the C compiler Python was built with (the one that builds
ixypy's extensions) into a temporary directory, and loaded with
ctypes.PyDLL (its calls hold the GIL)."""
from __future__ import annotations

import ctypes
import gc
import shlex
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from ..conftest import require

SOURCE = Path(__file__).with_name("countalloc.c")


class AllocationCounter:
    """Counts the Python allocator calls (object and PyMem domains) a call
    makes in this thread."""

    def __init__(self, lib: ctypes.PyDLL) -> None:
        self.lib = lib
        lib.count_install.restype = ctypes.c_int
        lib.count_uninstall.restype = ctypes.c_int
        lib.count_start.restype = None
        lib.count_stop.restype = ctypes.c_longlong
        self._start, self._stop = lib.count_start, lib.count_stop

    def __call__(self, fn, *args) -> int:
        """Allocations made by fn(*args). gc.collect() first empties the
        free lists (tuples, floats, lists, dicts...), so even an object type
        that recycles its memory costs at least one counted allocation the
        first time it is made in the window."""
        gc.collect()
        self._start()
        fn(*args)
        return self._stop()


@pytest.fixture(scope="session")
def count_allocations(tmp_path_factory) -> AllocationCounter:
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    require(shutil.which(cc[0]) is not None, f"no C compiler ({cc[0]}) to build the counting allocator")
    out = tmp_path_factory.mktemp("countalloc") / "countalloc.so"
    cmd = cc + ["-shared", "-fPIC", "-O2", "-Wall", "-I", sysconfig.get_paths()["include"],
                str(SOURCE), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"building the counting allocator failed: {shlex.join(cmd)}\n{done.stderr}")
    counter = AllocationCounter(ctypes.PyDLL(str(out)))
    assert counter.lib.count_install() == 0
    yield counter
    counter.lib.count_uninstall()
