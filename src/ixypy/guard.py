"""A guard that stops a NIC's DMA when the processes driving it die, however
they die: SIGKILL, a segfault, the OOM killer.

Without an IOMMU (UIO) a NIC left running keeps writing received frames into
the hugepages of its rx ring after its process is gone, and the kernel hands
those pages to other processes. So opening a UIO-bound NIC starts a small
guard process: it opens the NIC's config-space file, then waits for the end
of a pipe whose write end only the owner holds. The owner's close() writes
"release" into the pipe first and the guard exits without touching the NIC.
If the pipe ends without it (every process holding its write end is gone,
whatever killed them), the guard clears Bus Master Enable (PCI COMMAND bit
2, PCI Local Bus 3.0 6.2.2): the NIC can no longer read or write memory.

The guard runs as a script (``python -I guard.py CONFIG``), so it imports
nothing of ixypy and starts in a few tens of milliseconds; it runs in its own
session, so a Ctrl-C or SIGTERM sent to the owner's process group leaves it
alone while the owner cleans up. VFIO needs no guard: the kernel resets the
device when its last file descriptor closes, which every exit does.
"""
from __future__ import annotations

import os
import subprocess
import sys

PCI_COMMAND = 0x04
PCI_COMMAND_MASTER = 0x4
READY = b"ready\n"
RELEASE = b"release\n"


def clear_bus_master(fd: int) -> None:
    """COMMAND &= ~MASTER through an open config-space file (two-byte access)."""
    cmd = int.from_bytes(os.pread(fd, 2, PCI_COMMAND), "little")
    os.pwrite(fd, (cmd & ~PCI_COMMAND_MASTER).to_bytes(2, "little"), PCI_COMMAND)


def _guard(config: str) -> int:
    """The guard process: stdin is the owner's pipe, stdout says ready."""
    fd = os.open(config, os.O_RDWR)
    os.write(1, READY)
    said = b""
    while chunk := os.read(0, 64):
        said += chunk
    if said != RELEASE:
        clear_bus_master(fd)
    return 0


class DmaGuard:
    """The owner's end of a guard for the NIC whose config space is the file
    `config` (sysfs ``/sys/bus/pci/devices/ADDR/config``)."""

    def __init__(self, config: os.PathLike | str) -> None:
        self.config = os.fspath(config)
        self._proc = subprocess.Popen([sys.executable, "-I", __file__, self.config],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      start_new_session=True)
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()
        self._proc.stdout.close()
        if ready != READY:
            self._proc.kill()
            self._proc.wait()
            from .errors import DeviceError
            raise DeviceError(f"the DMA guard for {self.config} did not start (it said {ready!r})",
                              hint="it needs to open the config file read-write: run as root")

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def active(self) -> bool:
        return self._proc.poll() is None

    def release(self) -> None:
        """Dismiss the guard (after the owner stopped the NIC's DMA itself)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.write(RELEASE)
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        self._proc.wait()


if __name__ == "__main__":
    raise SystemExit(_guard(sys.argv[1]))
