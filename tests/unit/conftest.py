import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakesysfs import FakeSysfs  # noqa: E402
from ixypy import pci  # noqa: E402

ADDR = "0000:03:00.0"


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake /sys + /proc with a fake kernel behind sysfs writes; vfio-pci and
    uio_pci_generic are loaded, one 82599 NIC at ADDR bound to ixgbe."""
    fs = FakeSysfs(tmp_path)
    fs.add_driver("vfio-pci")
    fs.add_driver("uio_pci_generic")
    real_write = pci._write_sysfs

    def write(path, text):
        real_write(path, text)
        fs.react(path, text)

    monkeypatch.setattr(pci, "_write_sysfs", write)
    monkeypatch.setattr(pci, "BIND_TIMEOUT", 0.05)
    return fs


@pytest.fixture
def nic(fake):
    fake.add_device(ADDR, net={"eth0": "down"})
    return pci.PciDevice(ADDR, sysfs_root=fake.sys, proc_root=fake.proc)
