"""ixypy's PCI and VFIO layers against QEMU's emulated NICs: binding, BARs, DMA.

One guest for the module: two legacy virtio-net NICs wired together and an igb.
Every test hands its NICs back to their kernel drivers, so the tests are
independent of each other's order. A VfioDevice is closed before release():
the kernel's vfio-pci unbind waits, uninterruptibly once signalled, for every
fd and mapping of the device, so a process unbinding its own open device hangs.
"""
import json

import pytest

from .guest import Nic, guest_script

pytestmark = pytest.mark.vm

GUEST_NICS = [Nic("virtio", hub=0), Nic("virtio", hub=0), Nic("igb", hub=1, mac="52:54:00:ab:cd:ef")]

VIRTIO_NET_F_CSUM = 1 << 0
VIRTIO_NET_F_MAC = 1 << 5


def last_json_line(stdout: str) -> object:
    return json.loads(stdout.strip().splitlines()[-1])


def test_nics_at_expected_addresses(guest):
    result = guest.run(guest_script("""
        import json
        from ixypy.pci import list_devices
        print(json.dumps({d.address: [d.vendor_id, d.device_id, d.driver, d.iommu_group] for d in list_devices()}))
    """))
    seen = last_json_line(result.stdout)
    expected = {n.address: [n.vendor_id, n.device_id] for n in guest.placed}
    assert {addr: found[:2] for addr, found in seen.items()} == expected
    drivers = {addr: found[2] for addr, found in seen.items()}
    assert drivers == {n.address: "virtio-pci" if n.model == "virtio" else "igb" for n in guest.placed}
    groups = [found[3] for found in seen.values()]
    assert None not in groups and len(set(groups)) == len(groups), "each NIC needs its own IOMMU group"


def test_virtio_bar0_through_uio_and_vfio_then_back_to_kernel(guest):
    uio_nic, vfio_nic = guest.nic(0), guest.nic(1)
    result = guest.run(guest_script("""
        import ctypes, json, mmap
        from ixypy.pci import PciDevice
        from ixypy.vfio import VfioDevice

        HUGEPAGE = 2 << 20
        MAP_HUGETLB = 0x40000

        def read_bar0(io):
            return {"features": io.read32(0), "mac": ":".join(f"{io.read8(20 + i):02x}" for i in range(6))}

        uio, vfio = PciDevice(UIO_ADDR), PciDevice(VFIO_ADDR)
        out = {}
        try:
            uio.bind_uio()
            vfio.bind_vfio()
            out["bound"] = [uio.driver, vfio.driver]
            out["uio"] = read_bar0(uio.open_ioport(0))

            with VfioDevice(VFIO_ADDR) as dev:
                out["vfio"] = read_bar0(dev.ioport(0))
                out["msix_vectors"] = dev.irq_info(2).count  # VFIO_PCI_MSIX_IRQ_INDEX
                buf = mmap.mmap(-1, HUGEPAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_HUGETLB)
                buf[0:4] = b"ixy!"  # fault the page in
                dev.container.map_dma(ctypes.addressof(ctypes.c_char.from_buffer(buf)), 0x10000000, HUGEPAGE)
                out["dma_mapped"] = True
        finally:
            uio.close()
            out["released"] = [uio.release(), vfio.release()]
        print(json.dumps(out))
    """, UIO_ADDR=uio_nic.address, VFIO_ADDR=vfio_nic.address))
    out = last_json_line(result.stdout)
    assert out["bound"] == ["uio_pci_generic", "vfio-pci"]
    assert out["uio"]["mac"] == uio_nic.mac
    assert out["vfio"]["mac"] == vfio_nic.mac
    for access in ("uio", "vfio"):
        features = out[access]["features"]
        assert features & VIRTIO_NET_F_MAC, f"{access}: host features {features:#x} lack MAC"
        assert not features & VIRTIO_NET_F_CSUM, f"{access}: a hub backend offers no CSUM ({features:#x})"
    assert out["msix_vectors"] >= 1
    assert out["dma_mapped"]
    assert out["released"] == ["virtio-pci", "virtio-pci"]


def test_vfio_smoke_entry_point_describes_then_releases(guest):
    nic = guest.nic(1)
    result = guest.run(guest_script("""
        import guest_vfio
        raise SystemExit(guest_vfio.main([ADDR, "--release"]))   # as `python -m guest_vfio ADDR --release`
    """, ADDR=nic.address))
    out = result.stdout
    assert f"VfioDevice({nic.address!r}" in out
    assert "region 0: io size=" in out, out              # legacy virtio-net: I/O-port BAR0
    assert "region 7: config" in out, out
    vectors = int(out.split("msix vectors: ")[1].split()[0])
    width = int(out.split("iova width: ")[1].split()[0])
    assert vectors >= 1 and width >= 32, out
    assert out.strip().splitlines()[-1] == "released to: virtio-pci"


def test_igb_registers_through_vfio(guest):
    igb = guest.nic(2)
    result = guest.run(guest_script("""
        import json
        from ixypy.pci import PciDevice
        from ixypy.vfio import VfioDevice

        STATUS, RAL0, RAH0 = 0x0008, 0x5400, 0x5404
        pci = PciDevice(ADDR)
        out = {}
        try:
            pci.bind_vfio()
            with VfioDevice(ADDR) as dev:  # closed (and unmapped) before release()
                bar = dev.map_region(0).bar()
                out = {"status": bar.read32(STATUS), "ral": bar.read32(RAL0), "rah": bar.read32(RAH0)}
                del bar
        finally:
            out["released"] = pci.release()
        print(json.dumps(out))
    """, ADDR=igb.address))
    out = last_json_line(result.stdout)
    assert out["status"] != 0xFFFFFFFF, "BAR0 reads all ones: not mapped"
    mac = (out["ral"] | (out["rah"] & 0xFFFF) << 32).to_bytes(6, "little")
    assert ":".join(f"{b:02x}" for b in mac) == igb.mac
    assert out["rah"] & (1 << 31), "RAH0.AV (address valid) is not set"
    assert out["released"] == "igb"
