"""A fake sysfs/procfs tree in a temp directory, and a fake kernel that
reacts to the writes ixypy makes (bind/unbind/driver_override/drivers_probe/
new_id) the way Linux does. Every write is logged as (path relative to the
sysfs root, text) so tests check the real interface: what was written where."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from ixypy import pci

IO, MEM = pci.IORESOURCE_IO, pci.IORESOURCE_MEM


class FakeSysfs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sys = root / "sys"
        self.proc = root / "proc"
        self.devices = self.sys / "bus/pci/devices"
        self.drivers = self.sys / "bus/pci/drivers"
        self.devices.mkdir(parents=True)
        self.drivers.mkdir(parents=True)
        (self.sys / "bus/pci/drivers_probe").write_text("")
        (self.proc / "net").mkdir(parents=True)
        self.set_routes([])
        self.writes: List[Tuple[str, str]] = []
        #: driver the kernel picks on drivers_probe without override, per device
        self.kernel_driver: Dict[str, str] = {}
        #: drivers whose probe fails (they never bind)
        self.refuse: Set[str] = set()
        #: (driver, "vvvv dddd") ids added through new_id
        self.new_ids: Set[Tuple[str, str]] = set()

    # ---- building the tree
    def add_driver(self, name: str) -> Path:
        d = self.drivers / name
        d.mkdir(exist_ok=True)
        for f in ("bind", "unbind", "new_id", "remove_id"):
            (d / f).touch()
        return d

    def add_device(self, addr: str, vendor: int = 0x8086, device: int = 0x10FB, cls: int = 0x020000,
                   driver: Optional[str] = "ixgbe", iommu_group: Optional[int] = 7,
                   net: Optional[Dict[str, str]] = None, override: bool = True,
                   bars: Optional[List[Tuple[int, int, int]]] = None) -> Path:
        """bars: [(start, size, flags)] for BAR0..; default one 128 KiB memory BAR."""
        d = self.devices / addr
        d.mkdir()
        (d / "vendor").write_text(f"{vendor:#06x}\n")
        (d / "device").write_text(f"{device:#06x}\n")
        (d / "class").write_text(f"{cls:#08x}\n")
        config = bytearray(256)
        config[0:2] = vendor.to_bytes(2, "little")
        config[2:4] = device.to_bytes(2, "little")
        config[4:6] = (0x0003).to_bytes(2, "little")  # I/O + memory space on, bus master off
        (d / "config").write_bytes(bytes(config))
        if override:
            (d / "driver_override").write_text("(null)\n")
        bars = [(0xFE000000, 0x20000, MEM)] if bars is None else bars
        lines = []
        for i in range(13):
            if i < len(bars) and bars[i][1]:
                start, size, flags = bars[i]
                lines.append(f"0x{start:016x} 0x{start + size - 1:016x} 0x{flags:016x}")
                with open(d / f"resource{i}", "wb") as f:
                    f.truncate(size)
            else:
                lines.append(f"0x{0:016x} 0x{0:016x} 0x{0:016x}")
        (d / "resource").write_text("\n".join(lines) + "\n")
        if driver is not None:
            self.kernel_driver[addr] = driver
            self.add_driver(driver)
            self._link_driver(addr, driver)
        if iommu_group is not None:
            g = self.sys / "kernel/iommu_groups" / str(iommu_group) / "devices"
            g.mkdir(parents=True, exist_ok=True)
            os.symlink(f"../../../../bus/pci/devices/{addr}", g / addr)
            os.symlink(f"../../../kernel/iommu_groups/{iommu_group}", d / "iommu_group")
        for name, state in (net or {}).items():
            # virtio-net hangs its interface off the virtio device: ADDR/virtio0/net/IF
            netdir = d / ("virtio0/net" if vendor == 0x1AF4 else "net") / name
            netdir.mkdir(parents=True)
            (netdir / "operstate").write_text(state + "\n")
        return d

    def set_routes(self, ifaces: List[str]) -> None:
        lines = ["Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"]
        for name in ifaces:
            lines.append(f"{name}\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0")
        (self.proc / "net/route").write_text("\n".join(lines) + "\n")

    # ---- state
    def _link_driver(self, addr: str, driver: str) -> None:
        os.symlink(f"../../drivers/{driver}", self.devices / addr / "driver")

    def bound(self, addr: str) -> Optional[str]:
        link = self.devices / addr / "driver"
        return os.path.basename(os.readlink(link)) if os.path.islink(link) else None

    def override(self, addr: str) -> str:
        return (self.devices / addr / "driver_override").read_text().strip()

    def written(self, suffix: str) -> List[str]:
        return [text for path, text in self.writes if path.endswith(suffix)]

    # ---- the fake kernel
    def _try_bind(self, addr: str, driver: str) -> None:
        if self.bound(addr) is None and driver not in self.refuse and (self.drivers / driver).is_dir():
            self._link_driver(addr, driver)

    def _ids(self, addr: str) -> str:
        d = self.devices / addr
        return f"{int((d / 'vendor').read_text(), 16):04x} {int((d / 'device').read_text(), 16):04x}"

    def react(self, path: Path, text: str) -> None:
        rel = str(Path(path).relative_to(self.sys))
        self.writes.append((rel, text))
        parts = rel.split("/")
        value = text.strip()
        if rel == "bus/pci/drivers_probe":
            addr = value
            if self.bound(addr) is not None:
                return
            ov_file = self.devices / addr / "driver_override"
            ov = ov_file.read_text().strip() if ov_file.exists() else ""
            if ov and ov != "(null)":
                self._try_bind(addr, ov)
                return
            ids = self._ids(addr)
            for drv, known in self.new_ids:
                if known == ids:
                    self._try_bind(addr, drv)
            if self.bound(addr) is None and addr in self.kernel_driver:
                self._try_bind(addr, self.kernel_driver[addr])
        elif parts[:3] == ["bus", "pci", "drivers"] and len(parts) == 5:
            drv, op = parts[3], parts[4]
            if op == "unbind":
                if self.bound(value) != drv:
                    raise OSError(19, "No such device")  # ENODEV, as the kernel says
                os.unlink(self.devices / value / "driver")
            elif op == "bind":
                if self.bound(value) is not None:
                    raise OSError(16, "Device or resource busy")
                self._try_bind(value, drv)
                if self.bound(value) != drv:
                    raise OSError(19, "No such device")
            elif op == "new_id":
                if (drv, value) in self.new_ids:
                    raise OSError(17, "File exists")
                self.new_ids.add((drv, value))
                for dev in self.devices.iterdir():
                    if self._ids(dev.name) == value:
                        self._try_bind(dev.name, drv)
            elif op == "remove_id":
                self.new_ids.discard((drv, value))
        elif parts[-1] == "driver_override":
            if not value:
                (self.devices / parts[3] / "driver_override").write_text("(null)\n")
