"""ixypy.pci against a fake sysfs tree (see fakesysfs.py)."""
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, strategies as st

from .conftest import ADDR, SRC
from .fakesysfs import IO, MEM
from ixypy import pci
from ixypy.errors import (
    BarError,
    BindFailed,
    DeviceBusy,
    DeviceNotFound,
    DriverUnavailable,
    InvalidAddress,
    IommuError,
    PermissionDenied,
    UnsupportedDevice,
)



# ---------------------------------------------------------------- addresses

@pytest.mark.parametrize("text,expected", [
    ("0000:03:00.0", "0000:03:00.0"),
    ("03:00.0", "0000:03:00.0"),
    ("0000:AF:1F.7", "0000:af:1f.7"),
    ("  0001:00:10.3\n", "0001:00:10.3"),
    ("ffff:ff:1f.7", "ffff:ff:1f.7"),
])
def test_address_good(text, expected):
    assert pci.normalize_address(text) == expected
    assert str(pci.PciAddress.parse(text)) == expected


@pytest.mark.parametrize("text", [
    "", "0000:03:00", "0000:03:00.8", "0000:03:20.0", "000:03:00.0", "00000:03:00.0",
    "0000:3:00.0", "0000-03-00.0", "0000:03:00.0.0", "0000:0g:00.0", "eth0", "0000:03:00.0\x00",
    "０３:00.0",  # full-width digits are not hex digits
])
def test_address_bad_names_the_string(text):
    with pytest.raises(InvalidAddress) as e:
        pci.normalize_address(text)
    assert repr(text) in str(e.value)


def test_address_not_a_string():
    with pytest.raises(InvalidAddress):
        pci.normalize_address(0x300)


@given(st.text())
def test_address_random_strings_only_raise_invalid_address(text):
    try:
        out = pci.normalize_address(text)
    except InvalidAddress:
        return
    assert pci.normalize_address(out) == out and len(out) == 12


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, 0x1F), st.integers(0, 7))
def test_address_roundtrip(domain, bus, dev, fn):
    a = pci.PciAddress(domain, bus, dev, fn)
    assert pci.PciAddress.parse(str(a).upper()) == a


# ---------------------------------------------------------------- identity

def test_device_absent(fake):
    with pytest.raises(DeviceNotFound, match="0000:04:00.0"):
        pci.PciDevice("04:00.0", sysfs_root=fake.sys)


def test_reads_ids(nic):
    assert (nic.vendor_id, nic.device_id, nic.class_code) == (0x8086, 0x10FB, 0x020000)
    assert nic.is_network and nic.require_network() is nic
    assert nic.driver == "ixgbe"
    assert nic.iommu_group == 7
    assert nic.interfaces == ["eth0"]


def test_non_nic_class_named(fake):
    fake.add_device("0000:00:1f.2", vendor=0x8086, device=0x2922, cls=0x010601, driver="ahci")
    dev = pci.PciDevice("00:1f.2", sysfs_root=fake.sys)
    assert not dev.is_network
    with pytest.raises(UnsupportedDevice, match="0x010601"):
        dev.require_network()
    with pytest.raises(UnsupportedDevice):
        dev.bind_vfio()
    assert fake.writes == []


def test_no_driver_no_group(fake):
    fake.add_device(ADDR, driver=None, iommu_group=None)
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    assert dev.driver is None and dev.iommu_group is None and dev.interfaces == []
    assert dev.unbind() is None and fake.writes == []


def test_list_devices_filters_network_and_supported(fake):
    fake.add_device("0000:00:1f.2", cls=0x010601, driver="ahci")
    fake.add_device("0000:00:10.0", vendor=0x1AF4, device=0x1000, driver="virtio-pci")
    fake.add_device(ADDR)
    (fake.devices / "not-an-address").mkdir()
    assert [d.address for d in pci.list_devices(fake.sys)] == ["0000:00:10.0", ADDR]
    only_virtio = pci.list_devices(fake.sys, supported={(0x1AF4, 0x1000)})
    assert [d.address for d in only_virtio] == ["0000:00:10.0"]
    assert pci.list_devices(fake.root / "nowhere") == []


# ---------------------------------------------------------------- binding

def test_bind_vfio_writes_override_then_probe(fake, nic):
    nic.bind_vfio()
    assert nic.driver == "vfio-pci"
    assert fake.writes == [
        ("bus/pci/drivers/ixgbe/unbind", ADDR),
        (f"bus/pci/devices/{ADDR}/driver_override", "vfio-pci"),
        ("bus/pci/drivers_probe", ADDR),
    ]


def test_bind_uio(fake, nic):
    nic.bind_uio()
    assert nic.driver == "uio_pci_generic"
    assert fake.override(ADDR) == "uio_pci_generic"


def test_bind_same_driver_is_noop(fake, nic):
    nic.bind_vfio()
    n = len(fake.writes)
    nic.bind_vfio()
    assert len(fake.writes) == n


def test_bind_unbound_device_skips_unbind(fake):
    fake.add_device(ADDR, driver=None)
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    dev.bind_uio()
    assert fake.written("unbind") == [] and dev.driver == "uio_pci_generic"


def test_new_id_fallback_without_driver_override(fake):
    fake.add_device(ADDR, override=False)
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    dev.bind_uio()
    assert dev.driver == "uio_pci_generic"
    assert fake.written("uio_pci_generic/new_id") == ["8086 10fb"]
    assert fake.written("drivers_probe") == []
    # release removes the id again, or uio_pci_generic would grab the NIC back
    assert dev.release() == "ixgbe"
    assert fake.written("uio_pci_generic/remove_id") == ["8086 10fb"]


def test_new_id_already_known_uses_bind(fake):
    fake.add_device(ADDR, override=False)
    fake.new_ids.add(("uio_pci_generic", "8086 10fb"))
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    dev.bind_uio()
    assert fake.written("uio_pci_generic/bind") == [ADDR] and dev.driver == "uio_pci_generic"


def test_release_hands_back_to_kernel_driver(fake, nic):
    nic.bind_vfio()
    fake.writes.clear()
    assert nic.unbind_to_kernel() == "ixgbe"
    assert fake.writes == [
        ("bus/pci/drivers/vfio-pci/unbind", ADDR),
        (f"bus/pci/devices/{ADDR}/driver_override", "\n"),
        ("bus/pci/drivers_probe", ADDR),
    ]
    assert fake.override(ADDR) == "(null)"


def test_release_without_kernel_driver_leaves_unbound(fake, nic):
    nic.bind_uio()
    fake.kernel_driver.pop(ADDR)
    assert nic.release(timeout=0.01) is None


@pytest.mark.parametrize("autoprobe, reason", [("0", "its PF's sriov_drivers_autoprobe is 0"),
                                               ("1", "kernel module not loaded?"),
                                               (None, "kernel module not loaded?")])
def test_why_no_driver_names_a_pf_that_keeps_its_vfs_from_the_kernel(fake, nic, autoprobe, reason):
    """A VF (a physfn link) of a PF with sriov_drivers_autoprobe 0 is probed
    by no kernel driver on release: the reason says so and how to change
    it; with autoprobe 1, or for a device that is no VF, the module is the
    likely cause."""
    nic.bind_uio()
    fake.kernel_driver.pop(ADDR)
    if autoprobe is not None:
        pf = fake.add_device("0000:00:07.0")
        (pf / "sriov_drivers_autoprobe").write_text(autoprobe + "\n")
        (nic.path / "physfn").symlink_to(pf)
    assert nic.release(timeout=0.01) is None
    assert pci.binding.why_no_driver(nic).startswith(reason)


def test_unbind(fake, nic):
    assert nic.unbind() == "ixgbe"
    assert fake.writes == [("bus/pci/drivers/ixgbe/unbind", ADDR)]
    assert nic.driver is None


def test_failed_bind_restores_previous_driver(fake, nic):
    fake.refuse.add("vfio-pci")
    with pytest.raises(BindFailed) as e:
        nic.bind_vfio()
    assert "restored ixgbe" in str(e.value)
    assert nic.driver == "ixgbe"
    assert fake.override(ADDR) == "(null)"
    assert fake.writes[-2:] == [
        (f"bus/pci/devices/{ADDR}/driver_override", "\n"),
        ("bus/pci/drivers/ixgbe/bind", ADDR),
    ]


def test_failed_new_id_bind_removes_the_id_again(fake):
    fake.add_device(ADDR, override=False)
    fake.refuse.add("vfio-pci")
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    with pytest.raises(BindFailed, match="restored ixgbe"):
        dev.bind_vfio()
    assert fake.written("vfio-pci/new_id") == ["8086 10fb"]
    assert fake.written("vfio-pci/remove_id") == ["8086 10fb"] and fake.new_ids == set()
    assert dev.driver == "ixgbe"


def test_failed_bind_of_unbound_device_leaves_it_unbound(fake):
    fake.add_device(ADDR, driver=None)
    fake.refuse.add("uio_pci_generic")
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    with pytest.raises(BindFailed, match="restored no driver"):
        dev.bind_uio()
    assert dev.driver is None and fake.override(ADDR) == "(null)"


def test_failed_bind_write_error_restores(fake, nic, monkeypatch):
    inner = pci.sysfs.write_sysfs

    def write(path, text):
        if str(path).endswith("drivers_probe") and text == ADDR and "vfio-pci" in fake.override(ADDR):
            raise OSError(22, "Invalid argument")
        inner(path, text)

    monkeypatch.setattr(pci.sysfs, "write_sysfs", write)
    with pytest.raises(BindFailed, match="Invalid argument"):
        nic.bind_vfio()
    assert nic.driver == "ixgbe"


def test_missing_driver_module(fake, nic):
    import shutil
    shutil.rmtree(fake.drivers / "vfio-pci")
    with pytest.raises(DriverUnavailable, match="vfio-pci") as e:
        nic.bind_vfio()
    assert "modprobe vfio-pci" in str(e.value)
    assert fake.writes == [] and nic.driver == "ixgbe"


def test_loadable_driver_module_is_loaded(fake, nic, monkeypatch):
    import shutil
    shutil.rmtree(fake.drivers / "vfio-pci")
    loaded = []

    def load(name, root):
        loaded.append(name)
        fake.add_driver(name)
        return True

    monkeypatch.setattr(pci.sysfs, "load_module", load)
    nic.bind_vfio()
    assert loaded == ["vfio-pci"] and nic.driver == "vfio-pci"


def test_fake_root_never_runs_modprobe(fake):
    assert pci.sysfs.load_module("surely-not-a-driver", fake.sys) is False
    assert pci.sysfs.module_available("surely-not-a-driver", fake.sys) is False
    assert pci.sysfs.module_available("vfio-pci", fake.sys) is True


def test_vfio_without_iommu_group(fake):
    fake.add_device(ADDR, iommu_group=None)
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    with pytest.raises(IommuError, match="no IOMMU group"):
        dev.bind_vfio()
    assert fake.writes == []


def test_busy_interface_with_route(fake):
    fake.add_device(ADDR, net={"enp3s0": "up"})
    fake.set_routes(["lo", "enp3s0"])
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys, proc_root=fake.proc)
    assert dev.busy_interfaces() == ["enp3s0"]
    with pytest.raises(DeviceBusy, match="enp3s0") as e:
        dev.bind_vfio()
    assert "force=True" in str(e.value)
    with pytest.raises(DeviceBusy):
        dev.unbind()
    assert fake.writes == [] and dev.driver == "ixgbe"
    dev.bind_vfio(force=True)
    assert dev.driver == "vfio-pci"


def test_busy_virtio_interface_under_virtio_dir(fake):
    d = fake.add_device(ADDR, vendor=0x1AF4, device=0x1000, driver="virtio-pci", net={"eth0": "up"})
    assert (d / "virtio0/net/eth0/operstate").exists()
    fake.set_routes(["eth0"])
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys, proc_root=fake.proc)
    assert dev.interfaces == ["eth0"]
    with pytest.raises(DeviceBusy, match="eth0"):
        dev.bind_uio()


@pytest.mark.parametrize("state,routes", [("down", ["enp3s0"]), ("up", ["other0"]), ("up", [])])
def test_not_busy(fake, state, routes):
    fake.add_device(ADDR, net={"enp3s0": state})
    fake.set_routes(routes)
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys, proc_root=fake.proc)
    dev.check_not_busy()


# ---------------------------------------------------------------- access method

def test_choose_method(fake, monkeypatch):
    fake.add_device(ADDR)
    fake.add_device("0000:05:00.0", iommu_group=None)
    with_group = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    no_group = pci.PciDevice("05:00.0", sysfs_root=fake.sys)
    assert pci.choose_method(with_group, "auto") == "vfio"
    assert pci.choose_method(no_group, "auto") == "uio"
    assert pci.choose_method(with_group, "uio") == "uio"
    with pytest.raises(IommuError):
        pci.choose_method(no_group, "vfio")
    with pytest.raises(ValueError):
        pci.choose_method(with_group, "dpdk")
    # vfio-pci neither loaded nor loadable -> UIO
    monkeypatch.setattr(pci.sysfs, "module_available", lambda name, root: False)
    assert pci.choose_method(with_group, "auto") == "uio"
    # a device already bound keeps its method
    with_group.bind_vfio()
    assert pci.choose_method(with_group, "auto") == "vfio"
    with_group.bind_uio()
    monkeypatch.setattr(pci.sysfs, "module_available", lambda name, root: True)
    assert pci.choose_method(with_group, "auto") == "uio"


# ---------------------------------------------------------------- config space

def test_config_read_write_and_bus_master(nic, fake):
    assert nic.config_read(0, 2) == 0x8086
    assert nic.config_read(2, 2) == 0x10FB
    assert nic.config_read(0, 4) == 0x10FB8086
    assert nic.config_read(0, 1) == 0x86
    assert nic.config_read(4, 2) & pci.PCI_COMMAND_MASTER == 0
    nic.enable_bus_master()
    cfg = (fake.devices / ADDR / "config").read_bytes()
    assert int.from_bytes(cfg[4:6], "little") == 0x0007
    assert len(cfg) == 256 and cfg[6:] == bytes(250)
    nic.config_write(0x3C, 1, 0xAB)
    assert nic.config_read(0x3C, 1) == 0xAB and nic.config_read(0x3D, 1) == 0


def test_msix_enabled_walks_the_capability_list(nic):
    assert pci.msix_enabled(nic) is False                       # no capability list at all
    nic.config_write(pci.PCI_STATUS, 2, pci.PCI_STATUS_CAP_LIST)
    nic.config_write(pci.PCI_CAP_PTR, 1, 0x40)
    nic.config_write(0x40, 1, 0x05)                             # MSI first, pointing at MSI-X
    nic.config_write(0x41, 1, 0x70)
    nic.config_write(0x70, 1, pci.PCI_CAP_ID_MSIX)
    assert pci.msix_enabled(nic) is False
    nic.config_write(0x72, 2, pci.MSIX_ENABLE | 0x3F)           # enable bit and table size
    assert pci.msix_enabled(nic) is True
    nic.config_write(0x41, 1, 0x40)                             # a loop in the list ends, no hang
    nic.config_write(0x70, 1, 0x09)
    assert pci.msix_enabled(nic) is False


def test_config_bad_width(nic):
    with pytest.raises(ValueError):
        nic.config_read(0, 3)
    with pytest.raises(ValueError):
        nic.config_write(0, 1, 0x100)


def test_config_short_read(nic):
    from ixypy.errors import DeviceError
    with pytest.raises(DeviceError, match="short read"):
        nic.config_read(255, 4)


# ---------------------------------------------------------------- BARs

def test_resource_flags(fake):
    fake.add_device(ADDR, vendor=0x1AF4, device=0x1000, driver=None,
                    bars=[(0xC000, 32, IO | 0x40000), (0xFEBD1000, 0x1000, MEM | 0x40000)])
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    b0, b1 = dev.bar_info(0), dev.bar_info(1)
    assert (b0.is_io, b0.is_memory, b0.size, b0.start) == (True, False, 32, 0xC000)
    assert (b1.is_io, b1.is_memory, b1.size) == (False, True, 0x1000)
    with pytest.raises(BarError, match="not implemented"):
        dev.bar_info(2)
    with pytest.raises(BarError, match="out of range"):
        dev.bar_info(6)
    with pytest.raises(BarError, match=r"I/O-port BAR.*ioport\(0\)"):
        dev.map_bar(0)
    with pytest.raises(BarError, match=r"memory BAR.*map_bar\(1\)"):
        dev.ioport(1)


def test_map_memory_bar(fake, nic):
    m = nic.map_resource(0)
    mm, address, length = m
    assert length == 0x20000 and address != 0
    bar = m.bar()
    bar.write32(0x8, 0xDEADBEEF)
    assert mm[8:12] == (0xDEADBEEF).to_bytes(4, "little")
    mm.flush()
    assert (fake.devices / ADDR / "resource0").read_bytes()[8:12] == b"\xef\xbe\xad\xde"
    assert bar.read32(0x8) == 0xDEADBEEF
    with pytest.raises(IndexError):
        bar.read32(0x20000)
    del bar
    nic.close()
    assert mm.closed


def test_ioport_exact_widths_on_plain_file(fake):
    fake.add_device(ADDR, vendor=0x1AF4, device=0x1000, driver=None, bars=[(0xC000, 32, IO)])
    with pci.PciDevice(ADDR, sysfs_root=fake.sys) as dev:
        port = dev.ioport(0)
        port.write32(0, 0x79BF8064)
        port.write16(14, 0x1234)
        port.write8(18, 0x7)
        for i, b in enumerate(b"\x52\x54\x00\x12\x34\x56"):
            port.write8(20 + i, b)
        raw = (fake.devices / ADDR / "resource0").read_bytes()
        assert raw[0:4] == (0x79BF8064).to_bytes(4, "little")
        assert raw[14:16] == b"\x34\x12" and raw[18] == 7 and raw[20:26] == b"RT\x00\x124V"
        assert port.read32(0) == 0x79BF8064 and port.read16(14) == 0x1234 and port.read8(18) == 7
        assert port.read16(0) == 0x8064 and port.read8(3) == 0x79
        assert len(raw) == 32
        with pytest.raises(IndexError):
            port.read32(30)
        fd = port.fd
    with pytest.raises(OSError):
        os.fstat(fd)  # closed with the device


# ---------------------------------------------------------------- permissions

def test_sysfs_attribute_that_is_a_directory(fake):
    d = fake.add_device(ADDR)
    (d / "vendor").unlink()
    (d / "vendor").mkdir()
    dev = pci.PciDevice(ADDR, sysfs_root=fake.sys)
    with pytest.raises(PermissionDenied, match="vendor"):
        dev.vendor_id


def _run_unprivileged(code: str) -> subprocess.CompletedProcess:
    """Run python ``code`` as user nobody (the real thing: chmod 000 stops
    nobody, not root)."""
    # import as root (the interpreter may live under /root), then drop privileges
    script = textwrap.dedent("""
        import os, sys
        sys.path.insert(0, {src!r})
        from ixypy import pci
        from ixypy.errors import PermissionDenied
        os.setgroups([]); os.setgid(65534); os.setuid(65534)
    """).format(src=SRC) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_unreadable_sysfs_is_permission_denied(public_fake):
    d = public_fake.add_device(ADDR)
    for p in d.rglob("*"):
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(d, 0o755)
    os.chmod(d / "vendor", 0)
    r = _run_unprivileged(f"""
        from ixypy import pci
        from ixypy.errors import PermissionDenied
        dev = pci.PciDevice({ADDR!r}, sysfs_root={str(public_fake.sys)!r})
        assert dev.device_id == 0x10fb
        try:
            dev.vendor_id
        except PermissionDenied as e:
            print("denied:", e)
        try:
            dev.unbind(force=True)
        except PermissionDenied as e:
            print("unbind denied:", e)
        try:
            dev.config_write(4, 2, 7)
        except PermissionDenied as e:
            print("config denied:", e)
    """)
    assert r.returncode == 0, r.stderr
    assert "denied: cannot read" in r.stdout and "/vendor" in r.stdout and "hint: " in r.stdout
    assert "unbind denied: cannot write" in r.stdout
    assert "config denied: cannot open" in r.stdout
