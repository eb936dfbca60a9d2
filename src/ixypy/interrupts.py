"""Interrupts for user-space drivers: eventfds, epoll, and the switch between
polling and sleeping.

Each rx queue gets its own MSI-X vector and eventfd (``os.eventfd``,
non-blocking); the device's eventfds sit in one ``select.epoll``. The bus
attaches them to the device: VFIO_DEVICE_SET_IRQS for a real NIC behind
vfio-pci, the model's per-vector eventfd for the sim device. UIO cannot
deliver MSI-X to user space: asking for interrupts there raises
:class:`InterruptsUnavailable`.

The policy (as NAPI and ixy's interrupt mode do it): while packets keep
coming, poll, with the vector masked, so the busy path makes no system
call. When a queue stays idle for ``idle_polls`` consecutive empty polls,
unmask its vector, check the ring once more (a packet that arrived before
the unmask is seen there; one after it raises the interrupt: no lost
wake-up), then sleep in epoll until the device signals or the timeout
passes. On wake-up the vector is masked again (by the device itself when
the driver set up auto-masking) and polling resumes.

A driver supplies an :class:`IrqControl`: how to mask and unmask one vector.
"""
from __future__ import annotations

import os
import select
from time import monotonic
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from .errors import InterruptsUnavailable

if TYPE_CHECKING:
    from .fastpath.batch import PacketBatch
    from .bus import Bus
    from .device import Device, RxQueue

IDLE_POLLS = 64          # consecutive empty polls before a queue goes to sleep

RxFn = Callable[["PacketBatch"], int]


class IrqControl:
    """What the generic layer needs from a driver, per vector."""

    #: the device masks a vector by itself when it sends its message (ixgbe: EIAM)
    auto_masks = False

    def mask(self, vector: int) -> None:
        raise NotImplementedError

    def unmask(self, vector: int) -> None:
        """Unmask; a cause left over from the polling phase should be cleared
        first (it would only cause a spurious wake-up)."""
        raise NotImplementedError


def require(bus: "Bus", num_queues: int) -> int:
    """Check that bus can deliver one MSI-X vector per rx queue; returns the
    number of vectors the device has."""
    if not bus.supports_interrupts:
        raise bus.no_interrupts()
    vectors = bus.msix_vectors()
    if vectors < num_queues:
        raise InterruptsUnavailable(f"{bus.address} has {vectors} MSI-X vector(s), {num_queues} rx queues need one each",
                                    hint=f"open at most {vectors} rx queue(s) with interrupts=True, or poll (interrupts=False)")
    return vectors


class QueueIrq:
    """One rx queue's vector, eventfd and policy state."""

    __slots__ = ("queue", "vector", "fd", "idle", "signalled", "sleeps", "wakeups", "timeouts", "signals")

    def __init__(self, queue: int, vector: int, fd: int) -> None:
        self.queue = queue
        self.vector = vector
        self.fd = fd
        self.idle = 0              # consecutive empty polls
        self.signalled = False     # an event for this queue seen while waiting for another
        self.sleeps = 0            # times the queue armed its interrupt and slept
        self.wakeups = 0           # sleeps ended by the device's signal
        self.timeouts = 0          # sleeps ended by the timeout
        self.signals = 0           # eventfd counts read (messages the device sent)



def drain(q: QueueIrq) -> int:
    """Read (and so reset) the queue's eventfd; returns the signals it held."""
    try:
        n = os.eventfd_read(q.fd)
    except BlockingIOError:
        return 0
    q.signals += n
    return n

class Interrupts:
    """The eventfds of one device's rx queues in one epoll, queue n on vector n."""

    def __init__(self, bus: "Bus", num_queues: int, control: IrqControl, idle_polls: int = IDLE_POLLS) -> None:
        require(bus, num_queues)
        self.bus = bus
        self.control = control
        self.idle_polls = idle_polls
        self.queues: List[QueueIrq] = []
        self._by_fd: Dict[int, QueueIrq] = {}
        self.epoll = select.epoll()
        self.closed = False
        self._on_close: List[Callable[[], None]] = []
        try:
            for n in range(num_queues):
                fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                q = QueueIrq(n, n, fd)
                self.queues.append(q)
                self._by_fd[fd] = q
                self.epoll.register(fd, select.EPOLLIN)
            bus.attach_irqs([q.fd for q in self.queues])
        except BaseException:
            self._release()
            raise

    # --- waiting ----------------------------------------------------------------

    def wait(self, queue: int, timeout: float) -> bool:
        """Sleep until queue's vector signals (True) or timeout seconds pass
        (False). Events of other queues seen meanwhile are kept for them."""
        q = self.queues[queue]
        if q.signalled:
            q.signalled = False
            return True
        deadline = monotonic() + timeout
        remaining = timeout
        while True:
            hit = False
            for fd, _ in self.epoll.poll(max(remaining, 0.0)):
                other = self._by_fd.get(fd)
                if other is None:
                    continue
                if drain(other):
                    if other is q:
                        hit = True
                    else:
                        other.signalled = True
            if hit:
                return True
            remaining = deadline - monotonic()
            if remaining <= 0:
                return False

    # --- the adaptive policy ------------------------------------------------------

    def receive(self, queue: int, rx: RxFn, batch: "PacketBatch", timeout: float) -> int:
        """rx(batch) until it returns packets; poll while the queue is busy,
        sleep on the interrupt once it is idle. Returns 0 after timeout s."""
        q = self.queues[queue]
        got = rx(batch)
        if got:
            q.idle = 0
            return got
        deadline = monotonic() + timeout
        control = self.control
        while True:
            while q.idle < self.idle_polls:       # NAPI: keep polling a little after the last packet
                q.idle += 1
                got = rx(batch)
                if got:
                    q.idle = 0
                    return got
            remaining = deadline - monotonic()
            if remaining <= 0:
                return 0
            drain(q)                        # a message from before is stale now
            q.signalled = False
            control.unmask(q.vector)
            got = rx(batch)                       # re-check after the unmask: no lost wake-up
            if got:
                control.mask(q.vector)
                q.idle = 0
                return got
            q.sleeps += 1
            woken = self.wait(queue, remaining)
            if woken:
                q.wakeups += 1
                q.idle = 0                        # poll again: the packet is in the ring
                if not control.auto_masks:
                    control.mask(q.vector)
            else:
                q.timeouts += 1                   # stays idle: the next call sleeps at once
                control.mask(q.vector)
            got = rx(batch)
            if got:
                q.idle = 0
                return got
            if not woken:
                return 0

    def stats(self, queue: int) -> dict:
        q = self.queues[queue]
        return {"sleeps": q.sleeps, "wakeups": q.wakeups, "timeouts": q.timeouts, "signals": q.signals}

    # --- life cycle ---------------------------------------------------------------

    def _release(self) -> None:
        self.epoll.close()
        for q in self.queues:
            os.close(q.fd)
        self.queues = []
        self._by_fd = {}

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call callback() when close() begins, before the eventfds are
        closed (ixypy.aio wakes a receiver sleeping on one in an event loop)."""
        self._on_close.append(callback)

    def close(self) -> None:
        """Detach the eventfds from the device (after it stopped), close them."""
        if self.closed:
            return
        self.closed = True
        try:
            for callback in self._on_close:
                callback()
            self._on_close = []
            self.bus.detach_irqs()
        finally:
            self._release()


def poll_until(rx: RxFn, batch: "PacketBatch", timeout: float) -> int:
    """Without interrupts: spin on rx(batch) until packets arrive or timeout s pass."""
    got = rx(batch)
    if got or timeout <= 0:
        return got
    deadline = monotonic() + timeout
    while not got and monotonic() < deadline:
        got = rx(batch)
    return got


def rx_wait(dev: "Device", queue: "RxQueue", queue_id: int, batch: "PacketBatch", timeout: float) -> int:
    """Device.rx_batch with a timeout: sleep on the queue's interrupt when the
    device has them, else poll until the timeout."""
    irq: Optional[Interrupts] = getattr(dev, "interrupts", None)
    if irq is not None:
        return irq.receive(queue_id, queue.rx, batch, timeout)
    return poll_until(queue.rx, batch, timeout)
