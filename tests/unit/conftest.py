import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest


from .fakesysfs import FakeSysfs  # noqa: E402
import ixypy  # noqa: E402
from ixypy import pci  # noqa: E402

ADDR = "0000:03:00.0"
#: the directory holding the ixypy package, for subprocesses
SRC = str(Path(ixypy.__file__).resolve().parents[1])


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake /sys + /proc with a fake kernel behind sysfs writes; vfio-pci and
    uio_pci_generic are loaded, one 82599 NIC at ADDR bound to ixgbe."""
    fs = FakeSysfs(tmp_path)
    fs.add_driver("vfio-pci")
    fs.add_driver("uio_pci_generic")
    real_write = pci.sysfs.write_sysfs

    def write(path, text):
        real_write(path, text)
        fs.react(path, text)

    monkeypatch.setattr(pci.sysfs, "write_sysfs", write)
    monkeypatch.setattr(pci.binding, "BIND_TIMEOUT", 0.05)
    return fs


@pytest.fixture
def nic(fake):
    fake.add_device(ADDR, net={"eth0": "down"})
    return pci.PciDevice(ADDR, sysfs_root=fake.sys, proc_root=fake.proc)


@pytest.fixture
def public_fake():
    """A fake tree in a directory user nobody can traverse."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to user nobody")
    top = Path(tempfile.mkdtemp(prefix="ixypy-perm-"))
    os.chmod(top, 0o755)
    fs = FakeSysfs(top)
    for p in [top, *top.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, 0o755)
    yield fs
    shutil.rmtree(top)
