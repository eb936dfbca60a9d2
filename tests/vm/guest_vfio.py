"""Guest-side VFIO smoke check (tests/vm is on the guest's PYTHONPATH; also
importable on the host as tests.vm.guest_vfio). Standard library + ixypy only.

    python -m guest_vfio ADDR [--release]

binds ADDR to vfio-pci, opens it, prints what VFIO reports (describe) and,
with --release, hands the NIC back to its kernel driver. Needs root and an
IOMMU.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence

from ixypy import pci, vfio


def describe(dev: vfio.VfioDevice) -> str:
    """A few lines about an open VFIO device (regions, MSI-X, IOVA width)."""
    lines = [repr(dev)]
    for i in list(range(6)) + [vfio.VFIO_PCI_CONFIG_REGION_INDEX]:
        r = dev.region_info(i)
        if r.size:
            kind = "config" if i == vfio.VFIO_PCI_CONFIG_REGION_INDEX else ("io" if dev.bar_is_io(i) else "mem")
            lines.append(f"  region {i}: {kind} size={r.size:#x} offset={r.offset:#x} flags={r.flags:#x}")
    lines.append(f"  msix vectors: {dev.irq_info(vfio.VFIO_PCI_MSIX_IRQ_INDEX).count}")
    lines.append(f"  iova width: {dev.container.iova_width}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    release = "--release" in args
    args = [a for a in args if a != "--release"]
    if len(args) != 1:
        print("usage: python -m guest_vfio ADDR [--release]", file=sys.stderr)
        return 2
    dev = vfio.open_device(args[0], "vfio")
    assert isinstance(dev, vfio.VfioDevice)
    print(describe(dev), flush=True)
    dev.close()
    vfio.get_container().close()
    if release:
        print(f"released to: {pci.PciDevice(args[0]).release()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
