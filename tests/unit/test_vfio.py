"""ixypy.vfio on the host: ioctl numbers and struct layouts against
linux/vfio.h, and the container/group/device logic against a fake VFIO
kernel (fakevfio.py). The real ioctls run in the QEMU guest tests."""
import ctypes
import errno
import os
import shutil
import struct
import subprocess

import pytest

from .conftest import ADDR, SRC
from .fakevfio import REGION_SHIFT, FakeVfio
from ixypy import pci, vfio
from ixypy.bus import PciBus
from ixypy.drivers.igb import IgbDevice
from ixypy.drivers.ixgbe import IxgbeDevice
from ixypy.drivers.virtio import VirtioDevice
from ixypy.memory import HugepageAllocator, IdentityVfioAllocator, VfioAllocator
from ixypy.errors import (
    BarError,
    DeviceBusy,
    DriverUnavailable,
    InterruptsUnavailable,
    IommuError,
)

# Known values, from include/uapi/linux/vfio.h: _IO(';', 100 + n) = 0x3B00 | (100 + n)
KNOWN_IOCTLS = {
    "VFIO_GET_API_VERSION": 0x3B64,
    "VFIO_CHECK_EXTENSION": 0x3B65,
    "VFIO_SET_IOMMU": 0x3B66,
    "VFIO_GROUP_GET_STATUS": 0x3B67,
    "VFIO_GROUP_SET_CONTAINER": 0x3B68,
    "VFIO_GROUP_UNSET_CONTAINER": 0x3B69,
    "VFIO_GROUP_GET_DEVICE_FD": 0x3B6A,
    "VFIO_DEVICE_GET_INFO": 0x3B6B,
    "VFIO_DEVICE_GET_REGION_INFO": 0x3B6C,
    "VFIO_DEVICE_GET_IRQ_INFO": 0x3B6D,
    "VFIO_DEVICE_SET_IRQS": 0x3B6E,
    "VFIO_DEVICE_RESET": 0x3B6F,
    "VFIO_IOMMU_GET_INFO": 0x3B70,
    "VFIO_IOMMU_MAP_DMA": 0x3B71,
    "VFIO_IOMMU_UNMAP_DMA": 0x3B72,
}

# struct name -> (size, {field: offset})
KNOWN_LAYOUTS = {
    "vfio_group_status": (8, {"argsz": 0, "flags": 4}),
    "vfio_device_info": (20, {"flags": 4, "num_regions": 8, "num_irqs": 12, "cap_offset": 16}),
    "vfio_region_info": (32, {"flags": 4, "index": 8, "cap_offset": 12, "size": 16, "offset": 24}),
    "vfio_irq_info": (16, {"flags": 4, "index": 8, "count": 12}),
    "vfio_irq_set": (20, {"flags": 4, "index": 8, "start": 12, "count": 16}),
    "vfio_iommu_type1_info": (24, {"flags": 4, "iova_pgsizes": 8, "cap_offset": 16}),
    "vfio_iommu_type1_dma_map": (32, {"flags": 4, "vaddr": 8, "iova": 16, "size": 24}),
    "vfio_iommu_type1_dma_unmap": (24, {"flags": 4, "iova": 8, "size": 16}),
    "vfio_info_cap_header": (8, {"id": 0, "version": 2, "next": 4}),
}


@pytest.mark.parametrize("name,value", sorted(KNOWN_IOCTLS.items()))
def test_ioctl_numbers(name, value):
    assert getattr(vfio, name) == value


def test_io_macro():
    assert vfio._IO(ord(";"), 100) == 0x3B64
    assert vfio._IOC(2, ord("T"), 1, 4) == 0x80045401  # an _IOR for comparison: dir and size land where they should


@pytest.mark.parametrize("name", sorted(KNOWN_LAYOUTS))
def test_struct_layouts(name):
    size, offsets = KNOWN_LAYOUTS[name]
    cls = getattr(vfio, name)
    assert ctypes.sizeof(cls) == size
    for field, off in offsets.items():
        assert getattr(cls, field).offset == off, field


def test_layouts_and_numbers_match_the_kernel_header(tmp_path):
    """Compile a probe against this machine's linux/vfio.h, if it has one."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not os.path.exists("/usr/include/linux/vfio.h"):
        pytest.skip("no C compiler or no linux/vfio.h (linux-libc-dev)")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/vfio.h>", "int main(void) {"]
    for name, (_, offsets) in KNOWN_LAYOUTS.items():
        lines.append(f'printf("size {name} %zu\\n", sizeof(struct {name}));')
        for field in offsets:
            lines.append(f'printf("off {name}.{field} %zu\\n", offsetof(struct {name}, {field}));')
    for name in KNOWN_IOCTLS:
        lines.append(f'printf("ioctl {name} %lu\\n", (unsigned long)({name}));')
    for name in ("VFIO_TYPE1_IOMMU", "VFIO_IRQ_SET_DATA_EVENTFD", "VFIO_IRQ_SET_ACTION_TRIGGER",
                 "VFIO_IRQ_SET_DATA_NONE", "VFIO_PCI_MSIX_IRQ_INDEX", "VFIO_PCI_CONFIG_REGION_INDEX",
                 "VFIO_REGION_INFO_FLAG_MMAP", "VFIO_GROUP_FLAGS_VIABLE", "VFIO_DEVICE_FLAGS_RESET",
                 "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", "VFIO_IOMMU_INFO_CAPS"):
        lines.append(f'printf("const {name} %lu\\n", (unsigned long)({name}));')
    lines.append("return 0; }")
    (tmp_path / "probe.c").write_text("\n".join(lines))
    subprocess.run([cc, "-o", str(tmp_path / "probe"), str(tmp_path / "probe.c")], check=True)
    out = subprocess.run([str(tmp_path / "probe")], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        kind, what, value = line.split()
        value = int(value)
        if kind == "size":
            assert ctypes.sizeof(getattr(vfio, what)) == value, what
        elif kind == "off":
            s, f = what.split(".")
            assert getattr(getattr(vfio, s), f).offset == value, what
        else:
            assert getattr(vfio, what) == value, what


def test_irq_set_buffer_layout():
    buf = vfio.irq_set_buffer(2, vfio.VFIO_IRQ_SET_DATA_EVENTFD | vfio.VFIO_IRQ_SET_ACTION_TRIGGER, 1, [10, -1, 12])
    raw = bytes(buf)
    assert len(raw) == 32
    assert struct.unpack("=5I3i", raw) == (32, 0x24, 2, 1, 3, 10, -1, 12)
    off = vfio.irq_set_buffer(2, vfio.VFIO_IRQ_SET_DATA_NONE | vfio.VFIO_IRQ_SET_ACTION_TRIGGER, 0, (), count=0)
    assert struct.unpack("=5I", bytes(off)) == (20, 0x21, 2, 0, 0)


def test_parse_iova_ranges_walks_cap_chain():
    head = b"\0" * 24
    other = struct.pack("=HHI", 2, 1, 24 + 16) + b"\0" * 8          # migration cap, skipped
    iova = struct.pack("=HHIII", 1, 1, 0, 2, 0) + struct.pack("=QQQQ", 0, 0xFEDFFFFF, 0xFEF00000, (1 << 39) - 1)
    assert vfio.parse_iova_ranges(head + other + iova, 24) == [(0, 0xFEDFFFFF), (0xFEF00000, (1 << 39) - 1)]
    loop = head + struct.pack("=HHI", 2, 1, 24)
    assert vfio.parse_iova_ranges(loop, 24) == []  # a self-loop does not hang
    assert vfio.parse_iova_ranges(head, 0) == []


def test_real_ioctl_errors_name_the_request(tmp_path):
    f = tmp_path / "plain"
    f.write_bytes(b"")
    fd = os.open(f, os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            vfio.ioctl(fd, vfio.VFIO_GET_API_VERSION)
        assert e.value.errno == errno.ENOTTY and "VFIO_GET_API_VERSION" in str(e.value)
        with pytest.raises(OSError):
            vfio.ioctl(fd, vfio.VFIO_DEVICE_GET_INFO, vfio.vfio_device_info())
        with pytest.raises(OSError):
            vfio.ioctl(fd, vfio.VFIO_GROUP_GET_DEVICE_FD, ADDR.encode())
    finally:
        os.close(fd)


def test_container_on_a_plain_file_is_not_a_container(tmp_path):
    (tmp_path / "vfio").mkdir()
    (tmp_path / "vfio/vfio").touch()
    with pytest.raises(IommuError, match="not a VFIO container"):
        vfio.VfioContainer(dev_root=tmp_path)


def test_no_vfio_module(tmp_path):
    with pytest.raises(DriverUnavailable, match="/vfio/vfio"):
        vfio.VfioContainer(dev_root=tmp_path)


# ---------------------------------------------------------------- against the fake VFIO kernel

@pytest.fixture
def fv(tmp_path, monkeypatch):
    f = FakeVfio(tmp_path / "vfiofake")
    monkeypatch.setattr(vfio, "ioctl", f.ioctl)
    monkeypatch.setattr(vfio, "_containers", {})
    return f


@pytest.fixture
def vdev(fake, fv):
    fake.add_device(ADDR, vendor=0x1AF4, device=0x1000, driver="vfio-pci")
    container = vfio.VfioContainer(dev_root=fv.dev, sysfs_root=fake.sys)
    d = vfio.VfioDevice(ADDR, container=container, sysfs_root=fake.sys)
    yield d
    d.close()
    container.close()


def test_open_sequence(vdev, fv):
    assert fv.names() == ["VFIO_GET_API_VERSION", "VFIO_CHECK_EXTENSION", "VFIO_GROUP_GET_STATUS",
                          "VFIO_GROUP_SET_CONTAINER", "VFIO_SET_IOMMU", "VFIO_GROUP_GET_DEVICE_FD",
                          "VFIO_DEVICE_GET_INFO"]
    assert fv.calls[1][1] == vfio.VFIO_TYPE1_IOMMU and fv.calls[4][1] == vfio.VFIO_TYPE1_IOMMU
    assert fv.calls[5][1] == ADDR.encode()
    assert (vdev.num_regions, vdev.num_irqs) == (9, 5)
    assert list(fv.containers.values()) == [vdev.container.fd]


def test_region_config_and_bus_master(vdev, fv):
    r = vdev.region_info(7)
    assert (r.size, r.offset) == (256, 7 << REGION_SHIFT)
    assert vdev.config_read(0, 2) == 0x1AF4 and vdev.config_read(2, 2) == 0x1000
    vdev.enable_bus_master()
    with open(fv.device_file, "rb") as f:
        f.seek((7 << REGION_SHIFT) + 4)
        assert int.from_bytes(f.read(2), "little") == 0x0007
    with pytest.raises(BarError):
        vdev.region_info(9)


def test_ioport_and_map_region(vdev, fv):
    assert vdev.bar_is_io(0) and not vdev.bar_is_io(1)
    port = vdev.ioport(0)
    assert (port.base, port.length) == (0, 32)
    port.write16(14, 0xBEEF)
    assert port.read16(14) == 0xBEEF
    with pytest.raises(BarError, match="I/O-port BAR"):
        vdev.map_bar(0)
    with pytest.raises(BarError, match="memory BAR"):
        vdev.ioport(1)
    with pytest.raises(BarError, match="not implemented"):
        vdev.map_bar(2)
    mm, address, length = m = vdev.map_bar(1)
    assert length == 4096 and address
    m.bar().write32(0x10, 0x12345678)
    mm.flush()
    with open(fv.device_file, "rb") as f:
        f.seek((1 << REGION_SHIFT) + 0x10)
        assert f.read(4) == b"\x78\x56\x34\x12"
    fv.regions[3] = (4096, vfio.VFIO_REGION_INFO_FLAG_READ)
    with open(fv.device_file, "r+b") as f:
        f.seek((7 << REGION_SHIFT) + 0x1C)
        f.write((0xFE000000).to_bytes(4, "little"))
    with pytest.raises(BarError, match="mmap"):
        vdev.map_bar(3)


def test_msix(vdev, fv):
    assert vdev.irq_info().count == 4
    vdev.enable_msix([30, 31])
    vdev.enable_msix([33], start=3)
    vdev.disable_msix()
    ev_trig = vfio.VFIO_IRQ_SET_DATA_EVENTFD | vfio.VFIO_IRQ_SET_ACTION_TRIGGER
    assert fv.irq_sets == [
        (ev_trig, 2, 0, 2, (30, 31)),
        (ev_trig, 2, 3, 1, (33,)),
        (vfio.VFIO_IRQ_SET_DATA_NONE | vfio.VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 0, ()),
    ]
    with pytest.raises(InterruptsUnavailable, match="has 4"):
        vdev.enable_msix([1, 2], start=3)
    fv.msix_count = 0
    with pytest.raises(InterruptsUnavailable, match="no MSI-X"):
        vdev.enable_msix([1])


def test_reset_and_close(vdev, fv):
    assert vdev.reset() is True
    fd = vdev.fd
    vdev.close()
    with pytest.raises(OSError):
        os.fstat(fd)
    assert vdev.group.fd >= 0  # the group stays attached: the DMA maps live on
    vdev.container.close()
    assert fv.names()[-1] == "VFIO_GROUP_UNSET_CONTAINER" and fv.containers == {}


def test_dma_map_deferred_until_first_group(fake, fv):
    fake.add_device(ADDR, driver="vfio-pci")
    c = vfio.VfioContainer(dev_root=fv.dev, sysfs_root=fake.sys)
    assert c.map_dma(0x7F0000000000, 0x10000000, 2 << 20) == 0x10000000
    assert fv.maps == {}  # no IOMMU yet: remembered
    c.group(7)
    assert fv.maps == {0x10000000: (0x7F0000000000, 2 << 20)}
    assert c.map_dma(0x7F0000200000, size=4096) == 0x7F0000200000  # iova defaults to vaddr
    c.unmap_dma(0x10000000, 2 << 20)
    assert list(fv.maps) == [0x7F0000200000]
    assert c.iova_ranges() == fv.iova_ranges and c.iova_width == 39
    with pytest.raises(ValueError):
        c.map_dma(0x1000, size=0)
    c.close()


def test_process_wide_container(fake, fv):
    a = vfio.get_container(fv.dev, fake.sys)
    assert vfio.get_container(fv.dev, fake.sys) is a
    a.close()
    assert vfio.get_container(fv.dev, fake.sys) is not a


def test_group_not_viable_names_the_other_devices(fake, fv):
    fake.add_device(ADDR, driver="vfio-pci", iommu_group=7)
    fake.add_device("0000:03:00.1", driver="ixgbe", iommu_group=7)
    assert vfio.group_blockers(7, fake.sys) == [("0000:03:00.1", "ixgbe")]
    fv.viable = False
    c = vfio.VfioContainer(dev_root=fv.dev, sysfs_root=fake.sys)
    with pytest.raises(IommuError, match=r"0000:03:00\.1 \(bound to ixgbe\)") as e:
        c.group(7)
    assert "/sys/kernel/iommu_groups/7/devices" in str(e.value)
    assert c.groups == {}
    c.close()


def test_group_file_missing(fake, fv):
    fake.add_device(ADDR, driver="vfio-pci", iommu_group=8)
    c = vfio.VfioContainer(dev_root=fv.dev, sysfs_root=fake.sys)
    with pytest.raises(IommuError, match="/vfio/8"):
        vfio.VfioDevice(ADDR, container=c, sysfs_root=fake.sys)
    c.close()


def test_group_busy(fake, fv, monkeypatch):
    real_open = os.open

    def busy_open(path, flags, *a):
        if str(path).endswith("/vfio/7"):
            raise OSError(errno.EBUSY, "Device or resource busy")
        return real_open(path, flags, *a)

    monkeypatch.setattr(vfio.os, "open", busy_open)
    with pytest.raises(DeviceBusy, match="another process"):
        vfio.VfioGroup(7, fv.dev, fake.sys)


def test_group_permission_denied_hint_as_nobody(public_fake):
    """The real thing: /dev/vfio/N mode 600 owned by root, opened as nobody."""
    top = public_fake.root
    (top / "vfio").mkdir(mode=0o755)
    (top / "vfio/7").touch(mode=0o600)
    code = f"""
import os, sys
sys.path.insert(0, {SRC!r})
from ixypy import vfio
from ixypy.errors import PermissionDenied
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    vfio.VfioGroup(7, dev_root={str(top)!r})
except PermissionDenied as e:
    print(e)
"""
    r = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "cannot open" in r.stdout and "chown $USER" in r.stdout and "/vfio/7" in r.stdout


def test_device_without_iommu_group(fake, fv):
    fake.add_device(ADDR, iommu_group=None)
    with pytest.raises(IommuError, match="no IOMMU group"):
        vfio.VfioDevice(ADDR, container=vfio.VfioContainer(dev_root=fv.dev), sysfs_root=fake.sys)


def test_open_device_binds_and_opens(fake, fv):
    fake.add_device(ADDR, vendor=0x1AF4, device=0x1000, driver="virtio-pci", net={"eth0": "down"})
    d = vfio.open_device(ADDR, "auto", sysfs_root=fake.sys, dev_root=fv.dev)
    assert isinstance(d, vfio.VfioDevice) and fake.bound(ADDR) == "vfio-pci"
    d.close()
    vfio.get_container(fv.dev).close()
    u = vfio.open_device(ADDR, "uio", sysfs_root=fake.sys, dev_root=fv.dev)
    assert isinstance(u, pci.PciDevice) and fake.bound(ADDR) == "uio_pci_generic"


def test_describe(vdev):
    from ..vm.guest_vfio import describe

    text = describe(vdev)
    assert "region 0: io size=0x20" in text and "region 1: mem size=0x1000" in text
    assert "region 7: config" in text and "msix vectors: 4" in text and "iova width: 39" in text


# ---------------------------------------------------------------- the bus a driver gets

@pytest.mark.parametrize("driver, allocator", [(VirtioDevice, IdentityVfioAllocator), (IxgbeDevice, VfioAllocator),
                                               (IgbDevice, VfioAllocator)])
def test_vfio_bus_takes_the_allocator_the_driver_declares(vdev, driver, allocator):
    """Legacy virtio bypasses the IOMMU (IOVA must equal physical); the Intel NICs get IOVAs."""
    bus = PciBus(vdev, driver)
    assert type(bus.dma) is allocator and bus.dma.container is vdev.container
    assert bus.ids == (0x1AF4, 0x1000) and bus.supports_interrupts and bus.msix_vectors() == 4
    assert bus.guard is None       # the kernel resets a VFIO device when its file closes


@pytest.mark.parametrize("driver", [VirtioDevice, IxgbeDevice])
def test_uio_bus_has_physical_addresses_and_no_interrupts(nic, driver):
    bus = PciBus(nic, driver)
    assert type(bus.dma) is HugepageAllocator
    assert bus.ids == (0x8086, 0x10FB) and not bus.supports_interrupts and bus.msix_vectors() == 0
    with pytest.raises(InterruptsUnavailable, match="UIO"):
        bus.attach_irqs([0])
    command = nic.config_read(4, 2)
    assert bus.guard.active        # nothing else would stop the NIC if this process died
    bus.close()
    assert not bus.guard.active and nic.config_read(4, 2) == command   # released, device untouched
