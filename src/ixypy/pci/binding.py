"""Which kernel driver holds a NIC: bind, unbind, release, and the choice
between UIO and VFIO.

The kernel interface (Documentation/ABI/testing/sysfs-bus-pci):

- unbind: write the address to ``bus/pci/drivers/NAME/unbind``;
- bind: write the driver name to ``bus/pci/devices/ADDR/driver_override``,
  then the address to ``bus/pci/drivers_probe``; on kernels without
  ``driver_override`` (before 3.16), write "vvvv dddd" to
  ``bus/pci/drivers/NAME/new_id`` (and the address to ``.../bind`` if the id
  was already known);
- release: unbind, clear ``driver_override`` (write a newline), write the
  address to ``drivers_probe``: the kernel's own driver takes the NIC back.

Every step waits (at most BIND_TIMEOUT) for the device's ``driver`` link to
show the new state; a failed bind restores the previous driver.
"""
from __future__ import annotations

import errno
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from ..errors import BindFailed, DriverUnavailable, IommuError, IxyError, PermissionDenied
from . import sysfs

if TYPE_CHECKING:
    from .device import PciDevice

UIO_DRIVER = "uio_pci_generic"
VFIO_DRIVER = "vfio-pci"
METHODS = ("auto", "uio", "vfio")

#: how long bind/unbind wait for the ``driver`` link to show the new state
BIND_TIMEOUT = 2.0


def _driver_dir(dev: "PciDevice", name: str) -> Path:
    return dev.sysfs_root / "bus/pci/drivers" / name


def _ensure_driver(dev: "PciDevice", name: str) -> None:
    if _driver_dir(dev, name).is_dir() or sysfs.load_module(name, dev.sysfs_root):
        return
    raise DriverUnavailable(f"kernel driver {name} is not available (no {_driver_dir(dev, name)}, "
                            f"and it could not be loaded)",
                            hint=f"load it with `modprobe {name}`; if that fails, the kernel lacks the module "
                                 f"(install your distribution's extra kernel modules)")


def _wait_driver(dev: "PciDevice", expected: Optional[str], timeout: Optional[float]) -> bool:
    deadline = time.monotonic() + (BIND_TIMEOUT if timeout is None else timeout)
    while True:
        if dev.driver == expected:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def _id_line(dev: "PciDevice") -> str:
    return f"{dev.vendor_id:04x} {dev.device_id:04x}"


def _unbind_from(dev: "PciDevice", name: str) -> None:
    sysfs.write_sysfs(_driver_dir(dev, name) / "unbind", dev.address)


def _detach(dev: "PciDevice", current: str) -> None:
    """Write the address to the current driver's unbind file."""
    try:
        _unbind_from(dev, current)
    except PermissionDenied:
        raise
    except OSError as e:
        raise BindFailed(f"{dev.address}: unbinding from {current} failed: {e.strerror or e}") from None


def unbind(dev: "PciDevice", *, force: bool = False, timeout: Optional[float] = None) -> Optional[str]:
    """Detach the device from its driver; returns the driver it had (or None)."""
    current = dev.driver
    if current is None:
        return None
    if not force:
        dev.check_not_busy()
    _detach(dev, current)
    if not _wait_driver(dev, None, timeout):
        raise BindFailed(f"{dev.address}: still bound to {dev.driver} after unbind")
    return current


def _attach(dev: "PciDevice", name: str) -> None:
    override = dev.path / "driver_override"
    if override.exists():
        sysfs.write_sysfs(override, name)
        sysfs.write_sysfs(dev.sysfs_root / "bus/pci/drivers_probe", dev.address)
        return
    # kernels before 3.16: teach the driver this device's id
    try:
        sysfs.write_sysfs(_driver_dir(dev, name) / "new_id", _id_line(dev))
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise
    if dev.driver is None:
        sysfs.write_sysfs(_driver_dir(dev, name) / "bind", dev.address)


def _restore(dev: "PciDevice", previous: Optional[str], attempted: str) -> Optional[str]:
    """Undo a failed bind to ``attempted``: clear the override (or the
    new_id), detach whatever holds the device, re-attach ``previous``.
    Returns a problem description or None."""
    problems: List[str] = []
    override = dev.path / "driver_override"
    if override.exists():
        try:
            sysfs.write_sysfs(override, "\n")
        except (OSError, PermissionDenied) as e:
            problems.append(f"clear driver_override: {e}")
    else:
        try:
            sysfs.write_sysfs(_driver_dir(dev, attempted) / "remove_id", _id_line(dev))
        except (OSError, PermissionDenied):
            pass  # the id was never added, or the driver is gone
    current = dev.driver
    if current is not None and current != previous:
        try:
            _unbind_from(dev, current)
        except (OSError, PermissionDenied) as e:
            problems.append(f"unbind from {current}: {e}")
    if previous is not None and dev.driver != previous:
        try:
            sysfs.write_sysfs(_driver_dir(dev, previous) / "bind", dev.address)
        except (OSError, PermissionDenied):
            try:
                sysfs.write_sysfs(dev.sysfs_root / "bus/pci/drivers_probe", dev.address)
            except (OSError, PermissionDenied) as e:
                problems.append(f"re-bind to {previous}: {e}")
    if dev.driver != previous:
        problems.append(f"device is bound to {dev.driver or 'no driver'}, not {previous or 'no driver'}")
    return "; ".join(problems) or None


def bind(dev: "PciDevice", driver: str, *, force: bool = False, timeout: Optional[float] = None) -> None:
    """Bind the NIC to ``driver`` (e.g. ``"vfio-pci"``). Refuses non-NICs,
    and NICs whose interface is up with a route unless ``force``. On
    failure the previous driver is restored and BindFailed raised."""
    dev.require_network()
    previous = dev.driver
    if previous == driver:
        return
    _ensure_driver(dev, driver)
    if driver == VFIO_DRIVER and dev.iommu_group is None:
        raise IommuError(f"{dev.address} has no IOMMU group, so vfio-pci cannot take it",
                         hint="boot with intel_iommu=on (or amd_iommu=on), or use UIO (--uio)")
    if not force:
        dev.check_not_busy()
    try:
        if previous is not None:
            _unbind_from(dev, previous)
        _attach(dev, driver)
        if _wait_driver(dev, driver, timeout):
            return
        reason = f"the driver did not take it (now: {dev.driver or 'no driver'})"
        error: IxyError = BindFailed(f"{dev.address}: binding to {driver} failed: {reason}")
    except PermissionDenied as e:
        error = e
    except OSError as e:
        error = BindFailed(f"{dev.address}: binding to {driver} failed: {e.strerror or e}")
    problem = _restore(dev, previous, driver)
    was = previous or "no driver"
    error.message += f"; restored {was}" if problem is None else f"; restoring {was} failed too: {problem}"
    raise error


def release(dev: "PciDevice", *, timeout: Optional[float] = None) -> Optional[str]:
    """Hand the NIC back to its kernel driver: unbind, clear
    ``driver_override``, ``drivers_probe``. Returns the driver that took it
    (None if no kernel driver did, e.g. its module is not loaded)."""
    current = dev.driver
    if current is not None:
        _detach(dev, current)
        _wait_driver(dev, None, timeout)
    override = dev.path / "driver_override"
    if override.exists():
        sysfs.write_sysfs(override, "\n")
    elif current in (UIO_DRIVER, VFIO_DRIVER):
        # undo a new_id from an old kernel, or it grabs the device again
        try:
            sysfs.write_sysfs(_driver_dir(dev, current) / "remove_id", _id_line(dev))
        except OSError:  # including PermissionDenied: the unbind above worked, so this is not it
            pass
    try:
        sysfs.write_sysfs(dev.sysfs_root / "bus/pci/drivers_probe", dev.address)
    except PermissionDenied:
        raise
    except OSError:
        pass  # no driver matched: the device stays unbound
    deadline = time.monotonic() + (BIND_TIMEOUT if timeout is None else timeout)
    while dev.driver is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return dev.driver


def why_no_driver(dev: "PciDevice") -> str:
    """Why no kernel driver took dev after release, as far as sysfs tells:
    a VF whose PF has sriov_drivers_autoprobe 0 is probed only with a
    driver_override; else its module is likely not loaded."""
    try:
        autoprobe = (dev.path / "physfn" / "sriov_drivers_autoprobe").read_text().strip()
    except OSError:
        autoprobe = None
    if autoprobe == "0":
        return ("its PF's sriov_drivers_autoprobe is 0, so the kernel probes none of its VFs: write 1 there, "
                "or the driver's name to the VF's driver_override, then the VF's address to drivers_probe")
    return "kernel module not loaded?"


def choose_method(dev: "PciDevice", requested: str = "auto") -> str:
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
    if dev.iommu_group is not None and sysfs.module_available(VFIO_DRIVER, dev.sysfs_root):
        return "vfio"
    return "uio"
