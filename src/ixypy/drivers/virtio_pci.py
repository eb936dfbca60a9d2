"""How the virtio-net driver reaches its device over PCI (VirtIO 1.x, 4.1):
two transports with the same operations, named after the spec's fields.

- ``LegacyTransport``: the legacy interface, a header in I/O-port BAR0
  (4.1.4.8), each register accessed with its exact width; 32 feature bits;
  queues of the device's size at a page frame number (QUEUE_PFN).
- ``ModernTransport``: the 1.x interface (4.1.4). Vendor-specific PCI
  capabilities (cap id 0x09) place its structures in memory BARs: common
  configuration (4.1.4.3), notifications (4.1.4.4), ISR (4.1.4.5, unused:
  ixypy polls or uses MSI-X) and the device configuration (4.1.4.6). 64
  feature bits, FEATURES_OK, queue sizes the driver chooses (up to the
  device's), the three parts of a queue at addresses of their own, and a
  notify address per queue.

``transport_for(bus)`` drives the 1.x interface whenever the function has
a common configuration capability: a modern-only device (1af4:1041) and a
transitional one (1af4:1000 as QEMU's ``virtio-net-pci`` offers it by
default); otherwise the legacy interface (``disable-modern=on``, and the
sim model).
"""
from __future__ import annotations

import time
from typing import Dict, NamedTuple, Tuple

from ..errors import BarError, DeviceError, DeviceTimeout, UnsupportedDevice
from ..fastpath.regs import Bar, PortIo
from ..fastpath.virtio import Doorbell
from ..pci import capabilities, msix_enabled

# --- device status (2.1) ---------------------------------------------------------
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
DEVICE_NEEDS_RESET = 64
FAILED = 128

NO_VECTOR = 0xFFFF         # VIRTIO_MSI_NO_VECTOR (4.1.5.1.2)
RESET_TIMEOUT = 1.0


class Transport:
    """What the driver asks of its device, either interface."""

    modern: bool
    address: str
    has_vectors: bool     # whether the MSI-X vector registers exist now (4.1.4.8: legacy, only with MSI-X on)

    def reset(self) -> None:
        """Write 0 to device_status and wait until it reads 0 (4.1.4.3.2)."""
        self.write_status(0)
        deadline = time.monotonic() + RESET_TIMEOUT
        while (status := self.status()) != 0:
            if status == 0xFF:
                raise DeviceError(f"{self.address}: the virtio device does not answer: its status reads 0xff")
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"{self.address}: virtio device status {status:#x}, not 0, {RESET_TIMEOUT:g} s "
                                    f"after reset")
            time.sleep(0.001)

    def add_status(self, bit: int) -> None:
        self.write_status(self.status() | bit)

    def stop(self) -> None:
        """Reset without waiting (close: the device drops its queues, so DMA
        stops); the read back flushes the write."""
        self.write_status(0)
        self.status()

    def status(self) -> int:
        raise NotImplementedError

    def write_status(self, status: int) -> None:
        raise NotImplementedError

    def device_features(self) -> int:
        raise NotImplementedError

    def set_driver_features(self, features: int) -> None:
        raise NotImplementedError

    def queue_max(self, index: int) -> int:
        """The largest size queue index may have; 0 if there is no such queue."""
        raise NotImplementedError

    def activate_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        """Hand the device queue index: its size and the DMA addresses of its
        descriptor table, available (driver) and used (device) rings."""
        raise NotImplementedError

    def doorbell(self, index: int) -> Doorbell:
        raise NotImplementedError

    def set_config_vector(self, vector: int) -> int:
        """Write the config change vector; returns what reads back."""
        raise NotImplementedError

    def set_queue_vector(self, index: int, vector: int) -> int:
        """Write queue index's vector; returns what reads back."""
        raise NotImplementedError

    def config_vector(self) -> int:
        raise NotImplementedError

    def queue_vector(self, index: int) -> int:
        raise NotImplementedError

    def config_bytes(self, offset: int, count: int) -> bytes:
        """count bytes of the device configuration (5.1.4), one 8-bit access each."""
        return bytes(self.config8(offset + i) for i in range(count))

    def config8(self, offset: int) -> int:
        raise NotImplementedError

    def config16(self, offset: int) -> int:
        raise NotImplementedError


# --- legacy (4.1.4.8) ----------------------------------------------------------------
HOST_FEATURES = 0x00     # 32, device features (bits 0..31)
GUEST_FEATURES = 0x04    # 32, driver features
QUEUE_PFN = 0x08         # 32, queue address >> 12
QUEUE_NUM = 0x0C         # 16, queue size (read-only in legacy)
QUEUE_SEL = 0x0E         # 16
DEVICE_STATUS = 0x12     # 8
ISR_STATUS = 0x13        # 8, clears on read: never read it by accident
MSI_CONFIG_VECTOR = 0x14  # 16 bits, only while MSI-X is enabled
MSI_QUEUE_VECTOR = 0x16   # 16 bits, for the queue in QUEUE_SEL
CONFIG = 0x14            # device config without MSI-X
CONFIG_MSIX = 0x18       # with MSI-X enabled the two vector registers come first
LEGACY_PAGE = 4096


class LegacyTransport(Transport):
    """The legacy header in I/O-port BAR0. The device config starts at 20,
    or at 24 while MSI-X is enabled in the function (fixed at construction:
    interrupts are attached before)."""

    modern = False

    def __init__(self, bus) -> None:
        self.address = bus.address
        try:
            self.port: PortIo = bus.ioport(0)
        except BarError as e:
            raise UnsupportedDevice(f"{bus.address}: BAR0 is not an I/O-port BAR ({e.message}) and the function has "
                                    f"no VirtIO 1.x capabilities: not a virtio device ixypy can drive",
                                    "ixypy drives virtio-net through its 1.x or its legacy interface") from None
        self.config = CONFIG_MSIX if msix_enabled(bus) else CONFIG
        self.has_vectors = self.config == CONFIG_MSIX

    def status(self) -> int:
        return self.port.read8(DEVICE_STATUS)

    def write_status(self, status: int) -> None:
        self.port.write8(DEVICE_STATUS, status)

    def device_features(self) -> int:
        return self.port.read32(HOST_FEATURES)

    def set_driver_features(self, features: int) -> None:
        self.port.write32(GUEST_FEATURES, features)

    def queue_max(self, index: int) -> int:
        self.port.write16(QUEUE_SEL, index)
        return self.port.read16(QUEUE_NUM)

    def activate_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        """QUEUE_PFN of the ring's first page; the ring must be in the legacy
        layout (2.7.2), of the device's own size (legacy cannot choose)."""
        pfn = desc // LEGACY_PAGE
        if desc % LEGACY_PAGE or pfn >> 32:
            raise DeviceError(f"{self.address}: ring at DMA address {desc:#x} is not page aligned or beyond the "
                              f"44 bits QUEUE_PFN reaches")
        self.port.write16(QUEUE_SEL, index)
        self.port.write32(QUEUE_PFN, pfn)

    def doorbell(self, index: int) -> Doorbell:
        return Doorbell.io_port(self.port)

    def config8(self, offset: int) -> int:
        return self.port.read8(self.config + offset)

    def config16(self, offset: int) -> int:
        return self.port.read16(self.config + offset)

    def set_config_vector(self, vector: int) -> int:
        self.port.write16(MSI_CONFIG_VECTOR, vector)
        return self.port.read16(MSI_CONFIG_VECTOR)

    def set_queue_vector(self, index: int, vector: int) -> int:
        self.port.write16(QUEUE_SEL, index)
        self.port.write16(MSI_QUEUE_VECTOR, vector)
        return self.port.read16(MSI_QUEUE_VECTOR)

    def queue_vector(self, index: int) -> int:
        self.port.write16(QUEUE_SEL, index)
        return self.port.read16(MSI_QUEUE_VECTOR)

    def config_vector(self) -> int:
        return self.port.read16(MSI_CONFIG_VECTOR)


# --- VirtIO 1.x (4.1.4) ----------------------------------------------------------------
PCI_CAP_ID_VNDR = 0x09
# struct virtio_pci_cap (4.1.4): cfg_type, bar, offset and length; the
# notification capability adds notify_off_multiplier (4.1.4.4)
CAP_CFG_TYPE = 3
CAP_BAR = 4
CAP_OFFSET = 8
CAP_LENGTH = 12
CAP_NOTIFY_OFF_MULTIPLIER = 16
COMMON_CFG = 1
NOTIFY_CFG = 2
ISR_CFG = 3
DEVICE_CFG = 4

# struct virtio_pci_common_cfg (4.1.4.3), offset: width
DEVICE_FEATURE_SELECT = 0x00   # 32
DEVICE_FEATURE = 0x04          # 32, the 32 bits the select chooses
DRIVER_FEATURE_SELECT = 0x08   # 32
DRIVER_FEATURE = 0x0C          # 32
CONFIG_MSIX_VECTOR = 0x10      # 16
NUM_QUEUES = 0x12              # 16
COMMON_STATUS = 0x14           # 8, device_status
CONFIG_GENERATION = 0x15       # 8
QUEUE_SELECT = 0x16            # 16
QUEUE_SIZE = 0x18              # 16, the maximum until the driver writes its choice
QUEUE_MSIX_VECTOR = 0x1A       # 16
QUEUE_ENABLE = 0x1C            # 16
QUEUE_NOTIFY_OFF = 0x1E        # 16
QUEUE_DESC = 0x20              # 64, descriptor table
QUEUE_DRIVER = 0x28            # 64, available ring
QUEUE_DEVICE = 0x30            # 64, used ring
COMMON_CFG_LEN = 0x38          # the fields above (VirtIO 1.0)


class Structure(NamedTuple):
    """One virtio structure: where its capability points (4.1.4)."""

    bar: int
    offset: int
    length: int
    cap: int          # the capability's offset in config space


def virtio_structures(bus) -> Dict[int, Structure]:
    """cfg_type -> the first capability of that type with a valid BAR (4.1.4:
    the driver uses the first of each type it can)."""
    found: Dict[int, Structure] = {}
    for cap, cap_id in capabilities(bus):
        if cap_id != PCI_CAP_ID_VNDR:
            continue
        cfg_type, bar = bus.config_read(cap + CAP_CFG_TYPE, 1), bus.config_read(cap + CAP_BAR, 1)
        if bar > 5 or cfg_type in found:
            continue
        found[cfg_type] = Structure(bar, bus.config_read(cap + CAP_OFFSET, 4), bus.config_read(cap + CAP_LENGTH, 4), cap)
    return found


class ModernTransport(Transport):
    """The 1.x interface: common configuration, notifications and device
    configuration in memory BARs, each field accessed at its own width
    (4.1.3.1); 64-bit fields as two 32-bit halves, low first."""

    modern = True
    has_vectors = True

    def __init__(self, bus, structures: Dict[int, Structure]) -> None:
        self.address = bus.address
        missing = [name for kind, name in ((COMMON_CFG, "common"), (NOTIFY_CFG, "notify"), (DEVICE_CFG, "device"))
                   if kind not in structures]
        if missing:
            raise UnsupportedDevice(f"{bus.address}: the virtio device has no {' and no '.join(missing)} configuration "
                                    f"capability (VirtIO 1.x 4.1.4)")
        bars: Dict[int, Bar] = {}

        def window(kind: int, need: int) -> Tuple[Bar, int]:
            s = structures[kind]
            if s.length < need:
                raise UnsupportedDevice(f"{bus.address}: virtio structure type {kind} has {s.length} bytes, "
                                        f"fewer than the {need} its fields take")
            if s.bar not in bars:
                bars[s.bar] = bus.bar(s.bar)
            return bars[s.bar], s.offset

        self.common, self.common_off = window(COMMON_CFG, COMMON_CFG_LEN)
        self.device, self.device_off = window(DEVICE_CFG, 1)
        self.notify, self.notify_off = window(NOTIFY_CFG, 2)
        self.notify_len = structures[NOTIFY_CFG].length
        self.notify_multiplier = bus.config_read(structures[NOTIFY_CFG].cap + CAP_NOTIFY_OFF_MULTIPLIER, 4)

    def _read(self, offset: int, width: int) -> int:
        reg = self.common_off + offset
        return {1: self.common.read8, 2: self.common.read16, 4: self.common.read32}[width](reg)

    def _write(self, offset: int, width: int, value: int) -> None:
        reg = self.common_off + offset
        {1: self.common.write8, 2: self.common.write16, 4: self.common.write32}[width](reg, value)

    def status(self) -> int:
        return self._read(COMMON_STATUS, 1)

    def write_status(self, status: int) -> None:
        self._write(COMMON_STATUS, 1, status)

    def device_features(self) -> int:
        features = 0
        for half in (0, 1):
            self._write(DEVICE_FEATURE_SELECT, 4, half)
            features |= self._read(DEVICE_FEATURE, 4) << (32 * half)
        return features

    def set_driver_features(self, features: int) -> None:
        for half in (0, 1):
            self._write(DRIVER_FEATURE_SELECT, 4, half)
            self._write(DRIVER_FEATURE, 4, features >> (32 * half) & 0xFFFFFFFF)

    def num_queues(self) -> int:
        return self._read(NUM_QUEUES, 2)

    def queue_max(self, index: int) -> int:
        if index >= self.num_queues():
            return 0
        self._write(QUEUE_SELECT, 2, index)
        return self._read(QUEUE_SIZE, 2)

    def activate_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        """queue_size, the three addresses, then queue_enable (4.1.5.1.3)."""
        self._write(QUEUE_SELECT, 2, index)
        self._write(QUEUE_SIZE, 2, size)
        for field, address in ((QUEUE_DESC, desc), (QUEUE_DRIVER, driver), (QUEUE_DEVICE, device)):
            self._write(field, 4, address & 0xFFFFFFFF)
            self._write(field + 4, 4, address >> 32)
        self._write(QUEUE_ENABLE, 2, 1)
        if self._read(QUEUE_ENABLE, 2) != 1:
            raise DeviceError(f"{self.address}: virtqueue {index} did not read back enabled")

    def doorbell(self, index: int) -> Doorbell:
        """queue_notify_off * notify_off_multiplier into the notify structure (4.1.4.4)."""
        self._write(QUEUE_SELECT, 2, index)
        offset = self._read(QUEUE_NOTIFY_OFF, 2) * self.notify_multiplier
        if offset + 2 > self.notify_len:
            raise DeviceError(f"{self.address}: virtqueue {index}'s notify address (+{offset:#x}) is outside the "
                              f"{self.notify_len}-byte notify structure")
        return Doorbell.mmio(self.notify, self.notify_off + offset)

    def config8(self, offset: int) -> int:
        return self.device.read8(self.device_off + offset)

    def config16(self, offset: int) -> int:
        return self.device.read16(self.device_off + offset)

    def config_bytes(self, offset: int, count: int) -> bytes:
        """Read until config_generation is the same before and after (4.1.4.3.1)."""
        for _ in range(100):
            generation = self._read(CONFIG_GENERATION, 1)
            value = super().config_bytes(offset, count)
            if self._read(CONFIG_GENERATION, 1) == generation:
                return value
        raise DeviceError(f"{self.address}: the virtio device configuration kept changing while read")

    def set_config_vector(self, vector: int) -> int:
        self._write(CONFIG_MSIX_VECTOR, 2, vector)
        return self._read(CONFIG_MSIX_VECTOR, 2)

    def set_queue_vector(self, index: int, vector: int) -> int:
        self._write(QUEUE_SELECT, 2, index)
        self._write(QUEUE_MSIX_VECTOR, 2, vector)
        return self._read(QUEUE_MSIX_VECTOR, 2)

    def queue_vector(self, index: int) -> int:
        self._write(QUEUE_SELECT, 2, index)
        return self._read(QUEUE_MSIX_VECTOR, 2)

    def config_vector(self) -> int:
        return self._read(CONFIG_MSIX_VECTOR, 2)


def transport_for(bus) -> Transport:
    """The 1.x interface if the function has its capabilities, else legacy."""
    structures = virtio_structures(bus)
    if COMMON_CFG in structures:
        return ModernTransport(bus, structures)
    return LegacyTransport(bus)
