"""PCI devices through sysfs: find NICs, read their ids, bind and unbind
drivers (uio_pci_generic, vfio-pci), config space and BARs.

Every path is taken relative to a ``sysfs_root`` (default ``/sys``) and a
``proc_root`` (default ``/proc``), so tests run on a fake tree. Writes to
sysfs go through :func:`_write_sysfs`, one ``write`` per file, as ``echo``
would do; that is the kernel interface.

Binding (see Documentation/ABI/testing/sysfs-bus-pci):

- unbind: write the address to ``bus/pci/drivers/NAME/unbind``;
- bind: write the driver name to ``bus/pci/devices/ADDR/driver_override``,
  then the address to ``bus/pci/drivers_probe``; on kernels without
  ``driver_override`` (before 3.16), write "vvvv dddd" to
  ``bus/pci/drivers/NAME/new_id`` (and the address to ``.../bind`` if the id
  was already known);
- release: unbind, clear ``driver_override`` (write a newline), write the
  address to ``drivers_probe``: the kernel's own driver takes the NIC back.

BARs: a memory BAR is mapped from ``resourceN`` and returned as a
:class:`MappedBar` ``(mmap, address, length)``; ``MappedBar.bar()`` wraps it
in a fast-path ``Bar``. An I/O-port BAR cannot be mapped: :meth:`PciDevice.ioport`
returns a fast-path ``PortIo`` that does exact-width pread/pwrite on it.
The same convention holds for :class:`ixypy.vfio.VfioDevice`.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, NamedTuple, Optional, Set, Tuple

from .errors import (
    BarError,
    BindFailed,
    DeviceBusy,
    DeviceError,
    DeviceNotFound,
    DriverUnavailable,
    InvalidAddress,
    IommuError,
    IxyError,
    PermissionDenied,
    UnsupportedDevice,
)

SYSFS = Path("/sys")
PROC = Path("/proc")

UIO_DRIVER = "uio_pci_generic"
VFIO_DRIVER = "vfio-pci"
METHODS = ("auto", "uio", "vfio")

#: resource-file flags (include/linux/ioport.h)
IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200

#: PCI config space (include/uapi/linux/pci_regs.h)
PCI_COMMAND = 0x04
PCI_COMMAND_MASTER = 0x4
PCI_CLASS_NETWORK = 0x02

#: how long bind/unbind wait for the ``driver`` link to show the new state
BIND_TIMEOUT = 2.0

_ADDR_RE = re.compile(r"(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")

_ROOT_HINT = "binding drivers and reading device files needs root: run with sudo (or bind once with `sudo ixypy bind ADDR --vfio` and use VFIO as a user)"


# --------------------------------------------------------------------------- addresses

@dataclass(frozen=True, order=True)
class PciAddress:
    """A PCI address ``DDDD:BB:DD.F``; :meth:`parse` accepts ``BB:DD.F`` too."""

    domain: int
    bus: int
    device: int
    function: int

    @classmethod
    def parse(cls, text: object) -> "PciAddress":
        if isinstance(text, PciAddress):
            return text
        if not isinstance(text, str):
            raise InvalidAddress(f"invalid PCI address {text!r}: expected a string like 0000:03:00.0")
        m = _ADDR_RE.fullmatch(text.strip())
        if m is None:
            raise InvalidAddress(f"invalid PCI address {text!r}: expected DDDD:BB:DD.F, e.g. 0000:03:00.0")
        domain, bus, dev, fn = (int(g, 16) if g else 0 for g in m.groups())
        if dev > 0x1F:
            raise InvalidAddress(f"invalid PCI address {text!r}: device number {dev:#x} is above 0x1f")
        return cls(domain, bus, dev, fn)

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}.{self.function:x}"


def normalize_address(text: object) -> str:
    """``"03:00.0"`` -> ``"0000:03:00.0"``; raises :class:`InvalidAddress`."""
    return str(PciAddress.parse(text))


# --------------------------------------------------------------------------- sysfs I/O

def _read_sysfs(path: Path) -> str:
    """Read a small sysfs attribute; PermissionError becomes PermissionDenied."""
    try:
        with open(path, "r") as f:
            return f.read().strip()
    except PermissionError as e:
        raise PermissionDenied(f"cannot read {path}: {e.strerror}", hint=_ROOT_HINT) from None
    except IsADirectoryError:
        raise PermissionDenied(f"cannot read {path}: it is a directory, not a sysfs attribute", hint=_ROOT_HINT) from None


def _write_sysfs(path: Path, text: str) -> None:
    """One write of ``text`` to a sysfs attribute (like ``echo text > path``).
    OSErrors other than EACCES/EPERM propagate for the caller to interpret."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except PermissionError as e:
        raise PermissionDenied(f"cannot write {path}: {e.strerror}", hint=_ROOT_HINT) from None
    try:
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(errno.EIO, f"short write to {path}")
    except PermissionError as e:
        raise PermissionDenied(f"cannot write {path}: {e.strerror}", hint=_ROOT_HINT) from None
    finally:
        os.close(fd)


def _is_real_root(sysfs_root: Path) -> bool:
    try:
        return Path(sysfs_root).resolve() == SYSFS
    except OSError:
        return False


def load_module(name: str, sysfs_root: Path = SYSFS) -> bool:
    """Try ``modprobe name``; only on the real ``/sys`` (never for a fake tree).
    Returns whether the driver directory exists afterwards."""
    drv = Path(sysfs_root) / "bus/pci/drivers" / name
    if drv.is_dir():
        return True
    if not _is_real_root(sysfs_root) or shutil.which("modprobe") is None:
        return False
    try:
        subprocess.run(["modprobe", name], check=False, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return drv.is_dir()


def module_available(name: str, sysfs_root: Path = SYSFS) -> bool:
    """Whether the PCI driver ``name`` is loaded, or (on the real ``/sys``)
    present as a module of the running kernel, so modprobe would load it."""
    if (Path(sysfs_root) / "bus/pci/drivers" / name).is_dir():
        return True
    if not _is_real_root(sysfs_root):
        return False
    moddir = Path("/lib/modules") / os.uname().release
    wanted = {name.replace("-", "_") + ".ko", name.replace("_", "-") + ".ko"}
    for listing in ("modules.dep", "modules.builtin"):
        try:
            text = (moddir / listing).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            base = line.split(":", 1)[0].rsplit("/", 1)[-1]
            for suffix in ("", ".xz", ".zst", ".gz"):
                if suffix and base.endswith(suffix):
                    base = base[: -len(suffix)]
            if base in wanted:
                return True
    return False


# --------------------------------------------------------------------------- BARs

class BarInfo(NamedTuple):
    index: int
    start: int
    size: int
    flags: int

    @property
    def is_io(self) -> bool:
        return bool(self.flags & IORESOURCE_IO)

    @property
    def is_memory(self) -> bool:
        return bool(self.flags & IORESOURCE_MEM)


class MappedBar(NamedTuple):
    """A memory BAR mapped into this process: ``(mmap, address, length)``.
    The mapping lives as long as ``mmap`` is open; ``bar()`` wraps it in a
    fast-path ``Bar`` that keeps the mmap alive."""

    mmap: mmap.mmap
    address: int
    length: int

    def bar(self):
        from .fastpath.regs import Bar
        return Bar(address=self.address, length=self.length, keepalive=self.mmap)


def _mmap_address(mm: mmap.mmap) -> int:
    # The temporary c_char export is dropped at once, so mm.close() still works.
    return ctypes.addressof(ctypes.c_char.from_buffer(mm))


def map_fd(fd: int, length: int, offset: int = 0) -> MappedBar:
    """mmap ``length`` bytes of ``fd`` at ``offset``, shared, read/write."""
    mm = mmap.mmap(fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
    return MappedBar(mm, _mmap_address(mm), length)


def _check_width(size: int) -> None:
    if size not in (1, 2, 4):
        raise ValueError(f"config space access width must be 1, 2 or 4 bytes, not {size}")


def pread_exact(fd: int, size: int, offset: int, what: str) -> int:
    """Read an exact-width little-endian value (1, 2 or 4 bytes)."""
    _check_width(size)
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise DeviceError(f"short read of {what}: {len(data)} of {size} bytes at {offset:#x}",
                          hint="config space beyond 64 bytes is readable by root only")
    return int.from_bytes(data, "little")


def pwrite_exact(fd: int, size: int, offset: int, value: int, what: str) -> None:
    _check_width(size)
    if not 0 <= value < 1 << (8 * size):
        raise ValueError(f"value {value:#x} does not fit {size} bytes")
    n = os.pwrite(fd, value.to_bytes(size, "little"), offset)
    if n != size:
        raise DeviceError(f"short write of {what}: {n} of {size} bytes at {offset:#x}")


# --------------------------------------------------------------------------- devices

class PciDevice:
    """A PCI device seen through sysfs (``/sys/bus/pci/devices/ADDR``).

    Opened ports and mappings are owned by the device object: ``close()``
    (or leaving a ``with`` block) closes them.
    """

    def __init__(self, address: object, sysfs_root: Path = SYSFS, proc_root: Path = PROC) -> None:
        self.address = normalize_address(address)
        self.sysfs_root = Path(sysfs_root)
        self.proc_root = Path(proc_root)
        self.path = self.sysfs_root / "bus/pci/devices" / self.address
        self._fds: List[int] = []
        self._maps: List[mmap.mmap] = []
        if not self.path.exists():
            raise DeviceNotFound(f"no PCI device at {self.address} (no {self.path})")

    def __repr__(self) -> str:
        return f"PciDevice({self.address!r}, {self.vendor_id:04x}:{self.device_id:04x}, driver={self.driver!r})"

    # ---- identity
    def _hex_attr(self, name: str) -> int:
        path = self.path / name
        try:
            return int(_read_sysfs(path), 16)
        except FileNotFoundError:
            raise DeviceNotFound(f"{self.address}: no {path}; did the device go away?") from None
        except ValueError:
            raise DeviceError(f"{self.address}: unexpected content in {path}") from None

    @property
    def vendor_id(self) -> int:
        return self._hex_attr("vendor")

    @property
    def device_id(self) -> int:
        return self._hex_attr("device")

    @property
    def ids(self) -> Tuple[int, int]:
        return (self.vendor_id, self.device_id)

    @property
    def class_code(self) -> int:
        """The 24-bit class code, e.g. 0x020000 for an Ethernet controller."""
        return self._hex_attr("class")

    @property
    def is_network(self) -> bool:
        return self.class_code >> 16 == PCI_CLASS_NETWORK

    def require_network(self) -> "PciDevice":
        cls = self.class_code
        if cls >> 16 != PCI_CLASS_NETWORK:
            raise UnsupportedDevice(f"{self.address} is not a network controller (class {cls:#08x}, "
                                    f"a NIC is class 0x02xxxx)")
        return self

    @property
    def driver(self) -> Optional[str]:
        """Name of the bound driver, or None."""
        link = self.path / "driver"
        try:
            return os.path.basename(os.readlink(link))
        except FileNotFoundError:
            return None
        except PermissionError as e:
            raise PermissionDenied(f"cannot read {link}: {e.strerror}", hint=_ROOT_HINT) from None

    @property
    def iommu_group(self) -> Optional[int]:
        try:
            return int(os.path.basename(os.readlink(self.path / "iommu_group")))
        except (FileNotFoundError, ValueError):
            return None

    def _interface_dirs(self) -> List[Path]:
        # ixgbe/igb: ADDR/net/IF; virtio-net: ADDR/virtioN/net/IF
        dirs = []
        for net in [self.path / "net", *sorted(self.path.glob("virtio*/net"))]:
            try:
                dirs.extend(net.iterdir())
            except (FileNotFoundError, NotADirectoryError):
                continue
        return sorted(dirs, key=lambda p: p.name)

    @property
    def interfaces(self) -> List[str]:
        """Kernel network interfaces of this device (``net/*``, ``virtio*/net/*``)."""
        return [p.name for p in self._interface_dirs()]

    # ---- is the NIC carrying traffic?
    def _routed_interfaces(self) -> Set[str]:
        try:
            text = (self.proc_root / "net/route").read_text()
        except FileNotFoundError:
            return set()
        except PermissionError as e:
            raise PermissionDenied(f"cannot read {self.proc_root / 'net/route'}: {e.strerror}") from None
        return {line.split()[0] for line in text.splitlines()[1:] if line.strip()}

    def busy_interfaces(self) -> List[str]:
        """Interfaces of this NIC that are up and carry an IPv4 route."""
        routed = self._routed_interfaces()
        busy = []
        for d in self._interface_dirs():
            try:
                state = _read_sysfs(d / "operstate")
            except FileNotFoundError:
                continue
            if state in ("up", "unknown") and d.name in routed:
                busy.append(d.name)
        return busy

    def check_not_busy(self) -> None:
        busy = self.busy_interfaces()
        if busy:
            names = ", ".join(busy)
            raise DeviceBusy(f"{self.address} is in use by the kernel: interface {names} is up and carries a route",
                             hint=f"take it down first (`ip link set {busy[0]} down`), or pass force=True "
                                  f"(--force) if you really mean to cut it off")

    # ---- binding
    def _driver_dir(self, name: str) -> Path:
        return self.sysfs_root / "bus/pci/drivers" / name

    def _ensure_driver(self, name: str) -> None:
        if self._driver_dir(name).is_dir() or load_module(name, self.sysfs_root):
            return
        raise DriverUnavailable(f"kernel driver {name} is not available (no {self._driver_dir(name)}, "
                                f"and it could not be loaded)",
                                hint=f"load it with `modprobe {name}`; if that fails, the kernel lacks the module "
                                     f"(install your distribution's extra kernel modules)")

    def _wait_driver(self, expected: Optional[str], timeout: Optional[float]) -> bool:
        deadline = time.monotonic() + (BIND_TIMEOUT if timeout is None else timeout)
        while True:
            if self.driver == expected:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def _unbind_from(self, name: str) -> None:
        _write_sysfs(self._driver_dir(name) / "unbind", self.address)

    def _detach(self, current: str) -> None:
        """Write the address to the current driver's unbind file."""
        try:
            self._unbind_from(current)
        except PermissionDenied:
            raise
        except OSError as e:
            raise BindFailed(f"{self.address}: unbinding from {current} failed: {e.strerror or e}") from None

    def unbind(self, *, force: bool = False, timeout: Optional[float] = None) -> Optional[str]:
        """Detach the device from its driver; returns the driver it had (or None)."""
        current = self.driver
        if current is None:
            return None
        if not force:
            self.check_not_busy()
        self._detach(current)
        if not self._wait_driver(None, timeout):
            raise BindFailed(f"{self.address}: still bound to {self.driver} after unbind")
        return current

    def _attach(self, name: str) -> None:
        override = self.path / "driver_override"
        if override.exists():
            _write_sysfs(override, name)
            _write_sysfs(self.sysfs_root / "bus/pci/drivers_probe", self.address)
            return
        # kernels before 3.16: teach the driver this device's id
        try:
            _write_sysfs(self._driver_dir(name) / "new_id", f"{self.vendor_id:04x} {self.device_id:04x}")
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise
        if self.driver is None:
            _write_sysfs(self._driver_dir(name) / "bind", self.address)

    def _restore(self, previous: Optional[str], attempted: str) -> Optional[str]:
        """Undo a failed bind to ``attempted``: clear the override (or the
        new_id), detach whatever holds the device, re-attach ``previous``.
        Returns a problem description or None."""
        problems = []
        override = self.path / "driver_override"
        if override.exists():
            try:
                _write_sysfs(override, "\n")
            except (OSError, PermissionDenied) as e:
                problems.append(f"clear driver_override: {e}")
        else:
            try:
                _write_sysfs(self._driver_dir(attempted) / "remove_id", f"{self.vendor_id:04x} {self.device_id:04x}")
            except (OSError, PermissionDenied):
                pass  # the id was never added, or the driver is gone
        current = self.driver
        if current is not None and current != previous:
            try:
                self._unbind_from(current)
            except (OSError, PermissionDenied) as e:
                problems.append(f"unbind from {current}: {e}")
        if previous is not None and self.driver != previous:
            try:
                _write_sysfs(self._driver_dir(previous) / "bind", self.address)
            except (OSError, PermissionDenied):
                try:
                    _write_sysfs(self.sysfs_root / "bus/pci/drivers_probe", self.address)
                except (OSError, PermissionDenied) as e:
                    problems.append(f"re-bind to {previous}: {e}")
        if self.driver != previous:
            problems.append(f"device is bound to {self.driver or 'no driver'}, not {previous or 'no driver'}")
        return "; ".join(problems) or None

    def bind(self, driver: str, *, force: bool = False, timeout: Optional[float] = None) -> None:
        """Bind the NIC to ``driver`` (e.g. ``"vfio-pci"``). Refuses non-NICs,
        and NICs whose interface is up with a route unless ``force``. On
        failure the previous driver is restored and BindFailed raised."""
        self.require_network()
        previous = self.driver
        if previous == driver:
            return
        self._ensure_driver(driver)
        if driver == VFIO_DRIVER and self.iommu_group is None:
            raise IommuError(f"{self.address} has no IOMMU group, so vfio-pci cannot take it",
                             hint="boot with intel_iommu=on (or amd_iommu=on), or use UIO (--uio)")
        if not force:
            self.check_not_busy()
        try:
            if previous is not None:
                self._unbind_from(previous)
            self._attach(driver)
            if self._wait_driver(driver, timeout):
                return
            reason = f"the driver did not take it (now: {self.driver or 'no driver'})"
            error: IxyError = BindFailed(f"{self.address}: binding to {driver} failed: {reason}")
        except PermissionDenied as e:
            error = e
        except OSError as e:
            error = BindFailed(f"{self.address}: binding to {driver} failed: {e.strerror or e}")
        problem = self._restore(previous, driver)
        was = previous or "no driver"
        error.message += f"; restored {was}" if problem is None else f"; restoring {was} failed too: {problem}"
        raise error

    def bind_uio(self, *, force: bool = False) -> None:
        self.bind(UIO_DRIVER, force=force)

    def bind_vfio(self, *, force: bool = False) -> None:
        self.bind(VFIO_DRIVER, force=force)

    def release(self, *, timeout: Optional[float] = None) -> Optional[str]:
        """Hand the NIC back to its kernel driver: unbind, clear
        ``driver_override``, ``drivers_probe``. Returns the driver that took it
        (None if no kernel driver did, e.g. its module is not loaded)."""
        current = self.driver
        if current is not None:
            self._detach(current)
            self._wait_driver(None, timeout)
        override = self.path / "driver_override"
        if override.exists():
            _write_sysfs(override, "\n")
        elif current in (UIO_DRIVER, VFIO_DRIVER):
            # undo a new_id from an old kernel, or it grabs the device again
            try:
                _write_sysfs(self._driver_dir(current) / "remove_id", f"{self.vendor_id:04x} {self.device_id:04x}")
            except OSError:  # including PermissionDenied: the unbind above worked, so this is not it
                pass
        try:
            _write_sysfs(self.sysfs_root / "bus/pci/drivers_probe", self.address)
        except PermissionDenied:
            raise
        except OSError:
            pass  # no driver matched: the device stays unbound
        deadline = time.monotonic() + (BIND_TIMEOUT if timeout is None else timeout)
        while self.driver is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.driver

    unbind_to_kernel = release

    # ---- config space
    def _open(self, name: str, flags: int) -> int:
        path = self.path / name
        try:
            return os.open(path, flags)
        except PermissionError as e:
            raise PermissionDenied(f"cannot open {path}: {e.strerror}", hint=_ROOT_HINT) from None
        except FileNotFoundError:
            raise DeviceNotFound(f"{self.address}: no {path}") from None

    def config_read(self, offset: int, size: int) -> int:
        fd = self._open("config", os.O_RDONLY)
        try:
            return pread_exact(fd, size, offset, f"{self.address} config space")
        finally:
            os.close(fd)

    def config_write(self, offset: int, size: int, value: int) -> None:
        fd = self._open("config", os.O_RDWR)
        try:
            pwrite_exact(fd, size, offset, value, f"{self.address} config space")
        finally:
            os.close(fd)

    def enable_bus_master(self) -> None:
        set_bus_master(self, True)

    # ---- BARs
    def resources(self) -> List[BarInfo]:
        """All lines of the ``resource`` file: (index, start, size, flags)."""
        text = _read_sysfs(self.path / "resource")
        out = []
        for i, line in enumerate(text.splitlines()):
            start, end, flags = (int(x, 16) for x in line.split()[:3])
            size = end - start + 1 if end else 0
            out.append(BarInfo(i, start, size, flags))
        return out

    def bar_info(self, index: int) -> BarInfo:
        if not 0 <= index <= 5:
            raise BarError(f"BAR index {index} out of range 0..5")
        res = self.resources()
        if index >= len(res) or res[index].size == 0:
            raise BarError(f"{self.address}: BAR{index} is not implemented (size 0)")
        return res[index]

    def map_resource(self, index: int) -> MappedBar:
        """mmap memory BAR ``index`` (``resourceN``, O_RDWR|O_SYNC, MAP_SHARED)."""
        info = self.bar_info(index)
        if info.is_io or not info.is_memory:
            raise BarError(f"{self.address}: BAR{index} is an I/O-port BAR (flags {info.flags:#x}); "
                           f"it cannot be mapped, open it with ioport({index})")
        fd = self._open(f"resource{index}", os.O_RDWR | os.O_SYNC)
        try:
            mapped = map_fd(fd, info.size)
        finally:
            os.close(fd)
        self._maps.append(mapped.mmap)
        return mapped

    map_bar = map_resource

    def open_ioport(self, index: int):
        """A fast-path ``PortIo`` on I/O-port BAR ``index`` (``resourceN``).
        Valid until this device is closed."""
        from .fastpath.regs import PortIo
        info = self.bar_info(index)
        if not info.is_io:
            raise BarError(f"{self.address}: BAR{index} is a memory BAR (flags {info.flags:#x}), not I/O ports; "
                           f"map it with map_bar({index})")
        fd = self._open(f"resource{index}", os.O_RDWR)
        self._fds.append(fd)
        return PortIo(fd, 0, info.size)

    ioport = open_ioport

    def close(self) -> None:
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:
                pass  # a Bar still uses it; it is unmapped when that goes away
        for fd in self._fds:
            os.close(fd)
        self._maps.clear()
        self._fds.clear()

    def __enter__(self) -> "PciDevice":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def set_bus_master(dev, enabled: bool) -> None:
    """Set or clear COMMAND bit 2 (bus master: the device may DMA) through
    ``dev.config_read/config_write`` and read it back. Works for PciDevice,
    VfioDevice and a driver's Bus."""
    cmd = dev.config_read(PCI_COMMAND, 2)
    want = cmd | PCI_COMMAND_MASTER if enabled else cmd & ~PCI_COMMAND_MASTER
    if want != cmd:
        dev.config_write(PCI_COMMAND, 2, want)
    if bool(dev.config_read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) != enabled:
        raise DeviceError(f"{dev.address}: bus master bit did not {'stick' if enabled else 'clear'} "
                          f"in the COMMAND register",
                          hint="the device may be held by another driver; rebind it and retry")


# config space layout (PCI Local Bus 3.0, 6.2 and 6.7; MSI-X: 6.8.2)
PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_CAP_PTR = 0x34
PCI_CAP_ID_MSIX = 0x11
MSIX_ENABLE = 1 << 15            # in the MSI-X Message Control word


def msix_enabled(dev) -> bool:
    """Whether the MSI-X Enable bit of the function's MSI-X capability is
    set, walking the capability list through ``dev.config_read``. Works for
    PciDevice, VfioDevice and a driver's Bus."""
    if not dev.config_read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST:
        return False
    ptr = dev.config_read(PCI_CAP_PTR, 1) & 0xFC
    for _ in range(48):              # at most 48 capabilities fit; a loop in the list must end
        if ptr == 0:
            break
        if dev.config_read(ptr, 1) == PCI_CAP_ID_MSIX:
            return bool(dev.config_read(ptr + 2, 2) & MSIX_ENABLE)
        ptr = dev.config_read(ptr + 1, 1) & 0xFC
    return False


# --------------------------------------------------------------------------- discovery

def list_devices(sysfs_root: Path = SYSFS, supported: Optional[Iterable[Tuple[int, int]]] = None,
                 proc_root: Path = PROC) -> List[PciDevice]:
    """Network-class PCI devices, sorted by address; with ``supported`` (a set
    of (vendor, device) ids, as the drivers register them) only those."""
    base = Path(sysfs_root) / "bus/pci/devices"
    wanted = set(supported) if supported is not None else None
    out = []
    try:
        names = sorted(p.name for p in base.iterdir())
    except FileNotFoundError:
        return []
    except PermissionError as e:
        raise PermissionDenied(f"cannot list {base}: {e.strerror}") from None
    for name in names:
        try:
            dev = PciDevice(name, sysfs_root=sysfs_root, proc_root=proc_root)
            if not dev.is_network:
                continue
            if wanted is not None and dev.ids not in wanted:
                continue
        except (InvalidAddress, DeviceNotFound, DeviceError):
            continue
        out.append(dev)
    return out


def choose_method(dev: PciDevice, requested: str = "auto") -> str:
    """``"uio"`` or ``"vfio"`` for ``dev``. ``auto``: keep a device already
    bound to vfio-pci or uio_pci_generic as it is; else VFIO if the device has
    an IOMMU group and vfio-pci is loaded or loadable; else UIO."""
    if requested not in METHODS:
        raise ValueError(f"access method must be one of {', '.join(METHODS)}, not {requested!r}")
    if requested == "vfio":
        if dev.iommu_group is None:
            raise IommuError(f"{dev.address} has no IOMMU group: VFIO cannot drive it",
                             hint="boot with intel_iommu=on (or amd_iommu=on), or use --uio")
        return "vfio"
    if requested == "uio":
        return "uio"
    driver = dev.driver
    if driver == VFIO_DRIVER:
        return "vfio"
    if driver == UIO_DRIVER:
        return "uio"
    if dev.iommu_group is not None and module_available(VFIO_DRIVER, dev.sysfs_root):
        return "vfio"
    return "uio"


def _main() -> int:
    """``python -m ixypy.pci``: list network devices (read-only)."""
    for dev in list_devices():
        print(f"{dev.address} {dev.vendor_id:04x}:{dev.device_id:04x} driver={dev.driver} "
              f"iommu_group={dev.iommu_group} if={','.join(dev.interfaces) or '-'} "
              f"method={choose_method(dev)} busy={','.join(dev.busy_interfaces()) or 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
