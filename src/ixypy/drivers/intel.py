"""What the Intel NICs with advanced descriptors share (82599/X540/X550 and
82576/I350): descriptor rings in DMA memory, queue enable with a timed wait,
the rx/tx fast path (IntelRxQueue/IntelTxQueue in _fastpath), register
helpers and clear-on-read statistics. A driver supplies its register offsets
and its bring-up."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from .._fastpath import Bar, IntelRxQueue, IntelTxQueue, Mempool, PacketBatch
from ..device import Device
from ..interrupts import rx_wait
from ..errors import DeviceTimeout, QueueError

DESC_SIZE = 16
RING_ALIGN = 128     # descriptor rings: 128-byte aligned, length a multiple of 128


class Registers:
    """32-bit register access with the read-modify-write and wait helpers
    bring-up needs. Every wait has a timeout and names the register."""

    def __init__(self, bar: Bar, names: Callable[[int], str]) -> None:
        self.bar = bar
        self.read = bar.read32
        self.write = bar.write32
        self.name_of = names

    def set_flags(self, reg: int, flags: int) -> None:
        self.write(reg, self.read(reg) | flags)

    def clear_flags(self, reg: int, flags: int) -> None:
        self.write(reg, self.read(reg) & ~flags & 0xFFFFFFFF)

    def update(self, reg: int, clear: int, set_: int) -> None:
        self.write(reg, (self.read(reg) & ~clear & 0xFFFFFFFF) | set_)

    def wait(self, reg: int, mask: int, value: int, timeout: float, error=DeviceTimeout) -> float:
        """Poll until reg & mask == value; returns seconds waited."""
        start = time.monotonic()
        delay = 1e-5
        while self.read(reg) & mask != value:
            waited = time.monotonic() - start
            if waited > timeout:
                raise error(f"{self.name_of(reg)} (offset {reg:#x}) did not reach {value:#x} under mask {mask:#x} "
                            f"within {timeout:g} s (reads {self.read(reg):#010x})")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        return time.monotonic() - start

    def wait_set(self, reg: int, mask: int, timeout: float, error=DeviceTimeout) -> float:
        return self.wait(reg, mask, mask, timeout, error)

    def wait_clear(self, reg: int, mask: int, timeout: float, error=DeviceTimeout) -> float:
        return self.wait(reg, mask, 0, timeout, error)


@dataclass(frozen=True)
class QueueRegs:
    """Offsets of one ring's registers."""

    bal: int
    bah: int
    len: int
    head: int
    tail: int
    ctl: int


class IntelDevice(Device):
    """Queue management and the data path shared by ixgbe and igb."""

    QUEUE_ENABLE = 1 << 25      # RXDCTL.ENABLE / TXDCTL.ENABLE on both families
    QUEUE_ENABLE_TIMEOUT = 1.0

    def __init__(self, bus, rx_queues: int, tx_queues: int, num_rx_desc: int, num_tx_desc: int,
                 mempool: Optional[Mempool], max_queues: int) -> None:
        for kind, n in (("rx", rx_queues), ("tx", tx_queues)):
            if n > max_queues:
                raise QueueError(f"{n} {kind} queues asked for, this driver supports at most {max_queues}")
        for kind, n in (("rx", num_rx_desc), ("tx", num_tx_desc)):
            if n < 8 or n > 4096 or n & (n - 1):
                raise QueueError(f"{kind} ring size {n} must be a power of two from 8 to 4096")
        super().__init__(bus, rx_queues, tx_queues)
        self.num_rx_desc = num_rx_desc
        self.num_tx_desc = num_tx_desc
        self.regs = Registers(bus.bar(0), self.register_name)
        # one rx mempool shared by the rx queues, big enough to refill every ring twice over
        self.rx_mempool = mempool if mempool is not None else self.mempool(max(4096, 2 * rx_queues * num_rx_desc))
        self.rx_queues: List[IntelRxQueue] = []
        self.tx_queues: List[IntelTxQueue] = []
        self._ring_memory = None

    # per-family register layout
    def rx_queue_regs(self, n: int) -> QueueRegs:
        raise NotImplementedError

    def tx_queue_regs(self, n: int) -> QueueRegs:
        raise NotImplementedError

    def register_name(self, offset: int) -> str:
        return f"register {offset:#x}"

    # --- rings ----------------------------------------------------------------

    def _allocate_rings(self) -> None:
        """One contiguous DMA region holding every ring, each 128-byte aligned."""
        sizes = [self.num_rx_desc * DESC_SIZE] * self.num_rx_queues + [self.num_tx_desc * DESC_SIZE] * self.num_tx_queues
        self._ring_memory = self.bus.dma.allocate(sum(sizes), contiguous=True)
        self._ring_offsets = []
        offset = 0
        for size in sizes:
            self._ring_offsets.append(offset)
            offset += (size + RING_ALIGN - 1) // RING_ALIGN * RING_ALIGN

    def _program_ring(self, regs: QueueRegs, offset: int, num_desc: int) -> None:
        dma = self._ring_memory.dma(offset)
        self.regs.write(regs.bal, dma & 0xFFFFFFFF)
        self.regs.write(regs.bah, dma >> 32)
        self.regs.write(regs.len, num_desc * DESC_SIZE)

    def _setup_rx_ring(self, n: int) -> IntelRxQueue:
        regs = self.rx_queue_regs(n)
        offset = self._ring_offsets[n]
        self._program_ring(regs, offset, self.num_rx_desc)
        return IntelRxQueue(self.regs.bar, regs.tail, self._ring_memory.memory, offset, self.num_rx_desc, self.rx_mempool)

    def _setup_tx_ring(self, n: int) -> IntelTxQueue:
        regs = self.tx_queue_regs(n)
        offset = self._ring_offsets[self.num_rx_queues + n]
        self._program_ring(regs, offset, self.num_tx_desc)
        return IntelTxQueue(self.regs.bar, regs.tail, self._ring_memory.memory, offset, self.num_tx_desc)

    def _start_rx_queue(self, n: int) -> None:
        """Buffers into every descriptor, head to 0 while the queue is still
        disabled, enable, then hand all descriptors but one to the NIC."""
        q, regs = self.rx_queues[n], self.rx_queue_regs(n)
        tail = q.fill()
        self.regs.write(regs.head, 0)
        self.regs.set_flags(regs.ctl, self.QUEUE_ENABLE)
        self.regs.wait_set(regs.ctl, self.QUEUE_ENABLE, self.QUEUE_ENABLE_TIMEOUT)
        self.regs.write(regs.tail, tail)

    def _start_tx_queue(self, n: int) -> None:
        regs = self.tx_queue_regs(n)
        self.regs.write(regs.head, 0)
        self.regs.write(regs.tail, 0)
        self.regs.set_flags(regs.ctl, self.QUEUE_ENABLE)
        self.regs.wait_set(regs.ctl, self.QUEUE_ENABLE, self.QUEUE_ENABLE_TIMEOUT)

    def _disable_queues(self) -> None:
        """Clear every queue's enable bit and wait for it to read 0."""
        for regs in [self.rx_queue_regs(n) for n in range(len(self.rx_queues))] + \
                    [self.tx_queue_regs(n) for n in range(len(self.tx_queues))]:
            self.regs.clear_flags(regs.ctl, self.QUEUE_ENABLE)
            self.regs.wait_clear(regs.ctl, self.QUEUE_ENABLE, self.QUEUE_ENABLE_TIMEOUT)

    def _close_queues(self) -> None:
        """After DMA stopped: ring buffers back to their pools, queues and
        registers unusable (a late call raises instead of touching freed memory)."""
        for q in self.rx_queues + self.tx_queues:
            q.close()
        self.regs.bar.detach()

    def flush_tx(self, timeout: float = 1.0) -> None:
        """Wait for each tx queue's head to reach its tail: the NIC fetched
        every descriptor handed to it."""
        for n in range(len(self.tx_queues)):
            regs = self.tx_queue_regs(n)
            tail = self.regs.read(regs.tail)
            self.regs.wait(regs.head, 0xFFFFFFFF, tail, timeout)

    # --- the data path ------------------------------------------------------

    def rx_batch(self, queue_id: int, batch: PacketBatch, timeout: Optional[float] = None) -> int:
        q = self._queue(self.rx_queues, queue_id, "rx")
        self._check_batch(batch, self.num_rx_desc)
        if timeout is not None:
            return rx_wait(self, q, queue_id, batch, timeout)   # sleeps on the interrupt, or polls
        return q.rx(batch)

    def tx_batch(self, queue_id: int, batch: PacketBatch) -> int:
        q = self._queue(self.tx_queues, queue_id, "tx")
        self._check_batch(batch, self.num_tx_desc)
        return q.tx(batch)

    def rx_queue(self, queue_id: int) -> IntelRxQueue:
        """The queue object itself, for loops that skip the per-call checks."""
        return self._queue(self.rx_queues, queue_id, "rx")

    def tx_queue(self, queue_id: int) -> IntelTxQueue:
        return self._queue(self.tx_queues, queue_id, "tx")
