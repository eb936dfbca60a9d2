"""One exception hierarchy for everything ixypy raises on purpose.

Every error carries a ``hint``: what the user can do about it. ``str(err)`` is
the message followed by the hint, so a one-line CLI error is still actionable.
"""
from __future__ import annotations

from typing import Optional


class IxyError(Exception):
    """Base class of all ixypy errors."""

    default_hint: str = ""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        super().__init__(message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message


class InvalidAddress(IxyError, ValueError):
    """A PCI address that is not of the form DDDD:BB:DD.F, or a sim address
    with an option it does not take."""

    default_hint = "give the full PCI address as printed by `ixypy devices` or `lspci -D`, e.g. 0000:03:00.0"


class DeviceNotFound(IxyError):
    """No device at that PCI address (or no such sim device)."""

    default_hint = "list the network devices with `ixypy devices`"


class UnsupportedDevice(IxyError):
    """The device exists but is not a NIC ixypy drives."""

    default_hint = "`ixypy devices` lists the NICs on this machine and which ones ixypy drives"


class PermissionDenied(IxyError, PermissionError):
    """The process lacks the rights an operation needs."""

    default_hint = "run as root, or bind the NIC with `ixypy bind --vfio` and give your user the VFIO group file and a hugetlbfs mount"


class HugepagesUnavailable(IxyError):
    """No hugepages reserved, none free, or no hugetlbfs mount."""

    default_hint = "reserve and mount hugepages with `sudo ixypy hugepages 512`"


class DeviceBusy(IxyError):
    """The NIC is in use: bound to a kernel driver that carries traffic, or opened by another process."""

    default_hint = "bring the interface down and bind the NIC with `ixypy bind ADDR --vfio` (or --uio)"


class DriverUnavailable(IxyError):
    """A kernel module ixypy needs (uio_pci_generic, vfio-pci) is not loaded or not present."""

    default_hint = "load it with `modprobe vfio-pci` or `modprobe uio_pci_generic`"


class IommuError(IxyError):
    """VFIO/IOMMU set-up failed: group not viable, no type-1 IOMMU, DMA mapping refused."""

    default_hint = "bind every device of the IOMMU group to vfio-pci (see /sys/kernel/iommu_groups/N/devices), and boot with intel_iommu=on or amd_iommu=on"


class DmaMemoryError(IxyError, MemoryError):
    """DMA memory could not be set up or translated."""

    default_hint = "check `grep Huge /proc/meminfo`; reserve more pages with `sudo ixypy hugepages N`"


class DmaSpaceMismatch(IxyError, ValueError):
    """A tx queue was handed buffers whose DMA addresses its device would
    read as other memory: e.g. IOVAs of the VFIO container given to a device
    that uses physical addresses (UIO, or virtio without ACCESS_PLATFORM)."""

    default_hint = ("forward between devices whose DMA uses the same addresses (every device behind the IOMMU "
                    "under VFIO shares the process's container; UIO devices and virtio without ACCESS_PLATFORM "
                    "use physical ones), or copy the packets into a pool of the sending device's: "
                    "ixypy.fastpath.ops.copy(batch, dev.mempool(), out)")


class MempoolExhausted(IxyError):
    """A mempool has no free buffer left where one was required."""

    default_hint = ("make the mempool larger (dev.mempool(num_bufs=N)), or give back the buffers you hold: "
                    "PacketBatch.free() returns them, dev.tx_batch() sends them and frees them once sent")


class DoubleFree(IxyError):
    """A buffer was returned to its mempool twice (caught in debug mode)."""

    default_hint = ("each buffer goes back once: either via dev.tx_batch() (the driver frees it once sent) "
                    "or via PacketBatch.free(), never both")


class SharedMempool(IxyError, ValueError):
    """Two workers would take buffers from one mempool, which serves one thread."""

    default_hint = ("open the device without mempool= so that each rx queue fills from a pool of its own, "
                    "or run the queues that share a pool from one thread")


class WorkerFailed(IxyError):
    """A worker process of ixypy.processes.run_workers raised or died; the
    other workers were stopped."""

    default_hint = ("the message names each failed worker's queue and why; a worker killed by a signal was "
                    "killed from outside (the OOM killer, `kill`) or crashed")


class QueueError(IxyError, IndexError):
    """A queue id out of range, or a queue used before it was set up."""

    default_hint = "queue ids run from 0 to the number of queues given to ixypy.open(..., rx_queues=N, tx_queues=M) minus one"


class RssConfigError(IxyError, ValueError):
    """Receive-side scaling asked for with settings the device cannot take."""

    default_hint = "enable_rss(queues=N) needs N rx queues opened (ixypy.open(..., rx_queues=N)), a 40-byte key and 128 table entries below N"


class InvalidTemplate(IxyError, ValueError):
    """A capture file (pktgen --template, replay) that cannot be used: not a capture, no packets, not Ethernet,
    a frame too long."""

    default_hint = ("give a pcap or pcapng capture of Ethernet frames of at most 1514 bytes, "
                    "e.g. one written by `ixypy capture DEV FILE` or saved by Wireshark or tcpdump")


class InvalidRate(IxyError, ValueError):
    """A rate ixypy cannot use: a range a throughput search cannot use
    (ixypy.ndr: no rate to start from, a lowest rate above the highest), or
    a pace that is no rate (PktgenLoop: negative, infinite, not a number)."""

    default_hint = "give --min-rate below --max-rate (Mpps); without --max-rate the search starts at TX's line rate"


class NothingReceived(IxyError):
    """A measurement's receiver got none of the frames its sender sent."""

    default_hint = ("check the cable between the two ports, or that what sits between them passes frames on "
                    "(`ixypy fwd DEV1 DEV2` forwards between two ports); `ixypy capture RX FILE` shows what RX gets")


class PacketTooLarge(IxyError, ValueError):
    """A packet does not fit its buffer or the device's frame size."""

    default_hint = "keep frames at or below the mempool's buffer size (default 2048 bytes, 1514 for standard Ethernet)"


class BatchError(IxyError, ValueError):
    """A batch is too large for the ring or is otherwise unusable."""

    default_hint = "use a batch no larger than the ring, whose size ixypy.open(..., num_rx_desc=N, num_tx_desc=M) sets"


class InvalidRule(IxyError, ValueError):
    """A 5-tuple rule (ixypy.vector.rules, the firewall's rules file) that
    cannot be compiled: its source and destination prefixes of different
    address families."""

    default_hint = ("a rule's two prefixes are of one family (IPv4 or IPv6), or `any`: "
                    "write one rule for IPv4 and another for IPv6")


class PromiscUnavailable(IxyError):
    """The NIC cannot change its own receive filter: an SR-IOV virtual
    function receives what its physical function's driver lets through."""

    default_hint = ("a VF receives frames addressed to its MAC (dev.mac; the PF's host sets it with "
                    "`ip link set PF vf N mac ADDR`) and broadcasts; to receive every frame on the wire, "
                    "open the physical function with ixypy instead (`ixypy devices` lists it)")


class TimestampsUnavailable(IxyError):
    """The NIC has no IEEE 1588 clock that ixypy drives for hardware time
    stamps, or its clock does not count."""

    default_hint = ("hardware time stamps need an ixgbe or igb NIC (82599, 82576, QEMU's igb, the sim: models); "
                    "elsewhere measure with software time stamps: `ixypy latency` without --hw-timestamps")


class MissingDependency(IxyError):
    """An optional dependency of a feature is not installed (NumPy, for the
    vector layer and the commands built on it)."""

    default_hint = "install the vector extra: `pip install 'ixypy[vector]'` (or `pip install numpy`)"


class DeviceTimeout(IxyError, TimeoutError):
    """The device did not reach an expected state in time (register named in the message)."""

    default_hint = "check the cable/link partner and that the NIC is not held by another driver; rerun with a longer timeout"


class LinkDown(DeviceTimeout):
    """The link did not come up within the wait."""

    default_hint = "check the cable and the link partner; a real 82599 can take up to 10 s to bring the link up"


class DeviceError(IxyError):
    """The device reported or showed a state it should not be in (a model error, a failed reset)."""

    default_hint = "reset the NIC (`ixypy unbind ADDR` then bind again) and retry"


class DeviceGone(DeviceError):
    """The device stopped answering: its registers read all ones, as a PCIe
    device's do once it is removed, powered off or reset behind the driver."""

    default_hint = ("nothing more can be done with it: close it (dev.close() frees its memory), check with "
                    "`ixypy devices` that it is back, then ixypy.open() it again")


class InterruptsUnavailable(IxyError):
    """Interrupts were asked for where they cannot work (UIO, no MSI-X, too few vectors)."""

    default_hint = "interrupts need VFIO: bind the NIC with `ixypy bind ADDR --vfio`, or open it with interrupts=False"


class BindFailed(DeviceError):
    """A kernel driver did not take the device; the previous binding was restored."""

    default_hint = "look at the end of `dmesg` for the driver's probe error; vfio-pci needs an IOMMU group (boot with intel_iommu=on or amd_iommu=on)"


class BarError(IxyError, ValueError):
    """A BAR used the wrong way: an I/O-port BAR mapped as memory, a memory BAR opened as ports, or an empty BAR."""

    default_hint = ("map memory BARs with Bus.bar(n) and open I/O-port BARs with Bus.ioport(n); the sysfs `resource` "
                    "file shows which is which (flags 0x100 = I/O, 0x200 = memory)")
