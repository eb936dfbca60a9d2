"""Fixtures for the virtio driver on the legacy virtio-net model, and a tiny
register-level driver (VirtIO 1.x 3.1.2 legacy initialization) for the
strictness tests, which must do what the real driver never does."""
import struct

import pytest

from ixypy.fastpath.mempool import DmaMemory
from ixypy.drivers.virtio import VirtioDevice
from ixypy.packets import SEQ_OFFSET
from ixypy.sim import close_model, source_frame
from ixypy.sim.virtio import VirtioSimBus, new_virtio_model

# legacy I/O BAR (4.1.4.8)
HOST_FEATURES, GUEST_FEATURES, QUEUE_PFN, QUEUE_NUM = 0, 4, 8, 12
QUEUE_SEL, QUEUE_NOTIFY, DEVICE_STATUS, ISR_STATUS = 14, 16, 18, 19
ACKNOWLEDGE, DRIVER, DRIVER_OK, NEEDS_RESET = 1, 2, 4, 64
PCI_COMMAND, CMD_IO, CMD_MEM, CMD_MASTER = 4, 1, 2, 4
DESC_F_NEXT, DESC_F_WRITE = 1, 2
F_ANY_LAYOUT = 1 << 27
AVAIL_F_NO_INTERRUPT = 1
SOURCE_FRAMES = 70_000


@pytest.fixture
def model():
    """A model with two devices: 0 wired to a sink checking sequence
    numbers, 1 to a source of SOURCE_FRAMES frames; its worker runs."""
    sim = new_virtio_model(2, queue_num=64)
    sim.device(0).wire_sink(SEQ_OFFSET)
    sim.device(1).wire_source(source_frame(), SOURCE_FRAMES, SEQ_OFFSET)
    yield sim
    close_model(sim)


@pytest.fixture(params=[True, False], ids=["one-desc", "two-desc"])
def any_layout(request):
    """Whether the model offers VIRTIO_F_ANY_LAYOUT (QEMU does): the driver
    then frames each packet in one descriptor, else in two."""
    return request.param


@pytest.fixture
def pair(model, any_layout):
    """(tx, rx): the virtio driver on both devices of `model`, in either framing."""
    for i in range(2):
        model.device(i).offer_any_layout(any_layout)
    devs = [VirtioDevice(VirtioSimBus(f"sim:vtest{i}", model, model.device(i), w, owns_sim=False))
            for i, w in enumerate(("sink", "source"))]
    assert [d.any_layout for d in devs] == [any_layout] * 2
    yield devs
    for d in devs:
        d.close()


class Ring:
    """One legacy split virtqueue (2.7.2 layout) in DMA memory the model maps,
    below 2**44 (QUEUE_PFN's reach); each ring asks for the range after the last."""

    hint = 1 << 41

    def __init__(self, sim, num: int) -> None:
        self.num = num
        self.used_offset = (16 * num + 2 * (3 + num) + 4095) & ~4095
        self.mem = DmaMemory(self.used_offset + 4096 + 8 * num, address_hint=Ring.hint)
        assert self.mem.address < 1 << 44
        Ring.hint = (self.mem.address + self.mem.size + 4095) & ~4095    # mmap takes page-aligned hints only
        sim.dma_map(self.mem.address, self.mem.address, self.mem.size)
        self.view = memoryview(self.mem)
        self.avail_idx = 0

    def desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0) -> None:
        struct.pack_into("<QIHH", self.view, 16 * i, addr, length, flags, nxt)

    def offer(self, head: int) -> None:
        """avail.ring[idx] = head, then avail.idx + 1 (2.7.13)."""
        struct.pack_into("<H", self.view, 16 * self.num + 4 + 2 * (self.avail_idx % self.num), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        struct.pack_into("<H", self.view, 16 * self.num + 2, self.avail_idx)

    def used_idx(self) -> int:
        return struct.unpack_from("<H", self.view, self.used_offset + 2)[0]

    def set_avail_flags(self, flags: int) -> None:
        """avail.flags: VRING_AVAIL_F_NO_INTERRUPT or 0 (2.7.7)."""
        struct.pack_into("<H", self.view, 16 * self.num, flags)


def buffer(sim, data: bytes) -> int:
    """data in DMA memory the model maps; its DMA address."""
    mem = DmaMemory(4096)
    sim.dma_map(mem.address, mem.address, mem.size)
    memoryview(mem)[:len(data)] = data
    buffer.keep.append(mem)
    return mem.address


buffer.keep = []


class RawDriver:
    """Register-level access to one model device, worker stopped (poll())."""

    def __init__(self, sim, index: int = 0) -> None:
        self.sim = sim
        self.dev = sim.device(index)
        sim.stop()

    def init(self, features: int = 0, bus_master: bool = True) -> None:
        """3.1.2 legacy: reset, ACKNOWLEDGE, DRIVER, features."""
        self.dev.config_write(PCI_COMMAND, 2, CMD_IO | CMD_MEM | (CMD_MASTER if bus_master else 0))
        self.dev.io_write(DEVICE_STATUS, 1, 0)
        self.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE)
        self.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER)
        self.dev.io_write(GUEST_FEATURES, 4, features)

    def queue(self, index: int) -> Ring:
        self.dev.io_write(QUEUE_SEL, 2, index)
        ring = Ring(self.sim, self.dev.io_read(QUEUE_NUM, 2))
        self.dev.io_write(QUEUE_PFN, 4, ring.mem.address >> 12)
        return ring

    def driver_ok(self) -> None:
        self.dev.io_write(DEVICE_STATUS, 1, ACKNOWLEDGE | DRIVER | DRIVER_OK)
