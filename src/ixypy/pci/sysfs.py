"""sysfs I/O and kernel modules: reading and writing attributes, loading a
PCI driver's module.

Every path is taken relative to a ``sysfs_root`` (default ``/sys``) and a
``proc_root`` (default ``/proc``), so tests run on a fake tree. Writes go
through :func:`write_sysfs`, one ``write`` per file, as ``echo`` would do;
that is the kernel interface. Callers use these through the module
(``sysfs.write_sysfs(...)``), so a test can stand in for the kernel by
replacing one name here.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import PermissionDenied

SYSFS = Path("/sys")
PROC = Path("/proc")

ROOT_HINT = "binding drivers and reading device files needs root: run with sudo (or bind once with `sudo ixypy bind ADDR --vfio` and use VFIO as a user)"


def permission_denied(action: str, path: Path, err: OSError) -> PermissionDenied:
    """The error for a sysfs or device file this process may not use: run as root."""
    return PermissionDenied(f"cannot {action} {path}: {err.strerror}", hint=ROOT_HINT)


def read_sysfs(path: Path) -> str:
    """Read a small sysfs attribute; PermissionError becomes PermissionDenied."""
    try:
        with open(path, "r") as f:
            return f.read().strip()
    except PermissionError as e:
        raise permission_denied("read", path, e) from None
    except IsADirectoryError:
        raise PermissionDenied(f"cannot read {path}: it is a directory, not a sysfs attribute", hint=ROOT_HINT) from None


def write_sysfs(path: Path, text: str) -> None:
    """One write of ``text`` to a sysfs attribute (like ``echo text > path``).
    OSErrors other than EACCES/EPERM propagate for the caller to interpret."""
    data = text.encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    except PermissionError as e:
        raise permission_denied("write", path, e) from None
    try:
        n = os.write(fd, data)
        if n != len(data):
            raise OSError(errno.EIO, f"short write to {path}")
    except PermissionError as e:
        raise permission_denied("write", path, e) from None
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
