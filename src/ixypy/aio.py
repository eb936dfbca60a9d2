"""asyncio for ixypy: await packets on an rx queue, await room on a tx queue.
For example, an echo server::

    import asyncio
    import ixypy
    from ixypy import aio

    async def echo(address):
        with ixypy.open(address, interrupts=True) as dev:
            rx, tx = aio.RxQueue(dev), aio.TxQueue(dev)
            async for batch in rx:          # sleeps in the event loop while the queue is idle
                await tx.send(batch)        # waits for ring room; the batch is empty afterwards

Receiving follows the adaptive policy of the synchronous
``dev.rx_batch(q, batch, timeout=...)`` (see :mod:`ixypy.interrupts`), with
the event loop in place of epoll:

1. ``rx``: packets are returned at once. After ``yield_every`` consecutive
   calls that each found packets, the receiver yields to the loop once
   (``asyncio.sleep(0)``), so a flood of packets does not starve the other
   tasks.
2. The ring is empty: poll it up to ``idle_polls`` more times, yielding to
   the loop between two polls (NAPI: keep polling a little after the last
   packet, the busy path makes no system call).
3. Still empty: drain the queue's eventfd, unmask its MSI-X vector, check
   the ring once more (a packet that came before the unmask is seen here,
   one after it raises the interrupt: no lost wake-up), then
   ``loop.add_reader(eventfd)`` and await. No thread, no polling: the task
   sleeps until the device signals. On wake-up the reader is removed, the
   vector masked again (the 82599 masks it by itself) and step 1 resumes.

This needs a device opened with ``interrupts=True`` (VFIO or a sim device).
Without interrupts (UIO, ``interrupts=False``) step 3 becomes a timer:
``asyncio.sleep(poll_interval)`` between two polls of an idle queue, so
an idle receiver costs ``1 / poll_interval`` wake-ups a second and a packet
waits up to ``poll_interval`` seconds.

Sending has no interrupt to wait for: no ixypy driver wires a tx interrupt
(the Intel drivers map only rx causes to vectors, virtio gives its tx queue
no vector). ``TxQueue.send`` therefore waits for ring room by polling: up to
``spin_polls`` retries each after one ``asyncio.sleep(0)`` (other tasks
run), then timer sleeps doubling from ``min_backoff`` up to ``max_backoff``
seconds, so a ring that stays full (link down, a stalled DMA engine) costs at
most ``1 / max_backoff`` retries a second, not a spinning core.

Rules: one coroutine receives from an :class:`RxQueue` at a time (a second
raises RuntimeError), and do not mix it with the synchronous
``dev.rx_batch(q, batch, timeout=...)`` on the same queue. Use the queues in
the thread of their event loop, and close the device from that thread too:
``dev.close()`` wakes a sleeping receiver: ``recv`` then raises QueueError
(the queue was closed with its device), ``async for`` ends. Cancelling a receiver (``task.cancel()``,
``asyncio.timeout``, Ctrl-C under ``asyncio.run``) masks the vector again
and removes its reader: the queue stays usable, the device closable.
"""
from __future__ import annotations

import asyncio
from time import monotonic
from typing import TYPE_CHECKING, AsyncIterator, Callable, Dict, Optional, Tuple

from .errors import BatchError, QueueError
from .fastpath.batch import PacketBatch
from .interrupts import IDLE_POLLS, drain

if TYPE_CHECKING:
    from .device import Device
    from .interrupts import Interrupts, QueueIrq

__all__ = ["RxQueue", "TxQueue"]

YIELD_EVERY = 8            # busy receives in a row before the receiver lets other tasks run
POLL_INTERVAL = 0.001      # s between polls of an idle queue on a device without interrupts
SPIN_POLLS = 64            # tx retries after asyncio.sleep(0) before sleeping on a timer
MIN_BACKOFF = 50e-6        # s, first timer sleep of a full tx ring
MAX_BACKOFF = 0.001        # s, longest timer sleep of a full tx ring


class RxQueue:
    """One rx queue of dev, awaitable: ``await rxq.recv(batch)`` or
    ``async for batch in rxq``.

    Args:
        dev: an open device; opened with ``interrupts=True``, an idle queue
            sleeps on its MSI-X eventfd, otherwise it is polled on a timer.
        queue_id: the rx queue.
        batch_size: the capacity of the batch ``async for`` yields.
        idle_polls: empty polls (each after yielding to the loop) before
            the queue goes to sleep.
        yield_every: consecutive busy receives before yielding to the loop
            once (0: never; other tasks may then starve under a flood).
        poll_interval: seconds between polls of an idle queue when the
            device has no interrupts.
    """

    def __init__(self, dev: "Device", queue_id: int = 0, *, batch_size: int = 32, idle_polls: int = IDLE_POLLS,
                 yield_every: int = YIELD_EVERY, poll_interval: float = POLL_INTERVAL) -> None:
        self.dev = dev
        self.queue_id = queue_id
        self._rx: Callable[[PacketBatch], int] = dev.rx_queue(queue_id).rx
        self.batch_size = batch_size
        self.idle_polls = idle_polls
        self.yield_every = yield_every
        self.poll_interval = poll_interval
        self._irq: "Optional[Interrupts]" = dev.interrupts
        self._q: "Optional[QueueIrq]" = self._irq.queues[queue_id] if self._irq is not None else None
        self._receiving = False
        self._busy = 0                       # consecutive receives that found packets
        self._idle = 0                       # consecutive empty polls
        self._wake: Optional[Callable[[str], None]] = None   # resolves the sleep in progress
        self._batch: Optional[PacketBatch] = None
        self.polls = 0                       # rx calls made (each a look at the ring)
        self.sleeps = 0                      # times the queue went to sleep (eventfd or timer)
        self.wakeups = 0                     # sleeps the device's signal ended
        self.yields = 0                      # busy-phase yields to the loop
        if self._irq is not None:
            self._irq.on_close(self._device_closing)

    # --- receiving ---------------------------------------------------------------

    async def recv(self, batch: PacketBatch, timeout: Optional[float] = None) -> int:
        """Receive into batch's free slots; returns the number of packets
        added, waiting for them as long as it takes (or timeout seconds,
        then 0). Raises QueueError once the device is closed."""
        if batch.room == 0:
            raise BatchError(f"a batch with no free slot (capacity {batch.capacity}) cannot receive",
                             "free the packets of the previous batch (batch.free()) or send them first")
        if self._receiving:
            raise RuntimeError(f"rx queue {self.queue_id} of {self.dev.address} already has a coroutine receiving")
        self._receiving = True
        try:
            return await self._recv(batch, timeout)
        finally:
            self._receiving = False

    async def _recv(self, batch: PacketBatch, timeout: Optional[float]) -> int:
        rx = self._rx
        if self.yield_every and self._busy >= self.yield_every:
            self._busy = 0
            self.yields += 1
            await asyncio.sleep(0)
        self.polls += 1
        got = rx(batch)
        if got:
            self._busy += 1
            self._idle = 0
            return got
        self._busy = 0
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            while self._idle < self.idle_polls:          # keep polling a little after the last packet
                self._idle += 1
                await asyncio.sleep(0)
                self.polls += 1
                got = rx(batch)
                if got:
                    self._idle = 0
                    return got
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                return 0                                  # stays idle: the next call sleeps at once
            if self._irq is None:
                self.sleeps += 1
                await asyncio.sleep(self.poll_interval if remaining is None else min(self.poll_interval, remaining))
                self.polls += 1
                got = rx(batch)
            else:
                got, woken = await self._sleep(batch, remaining)
                if woken:
                    self._idle = 0                        # poll again after a signal
            if got:
                self._idle = 0
                return got

    async def _sleep(self, batch: PacketBatch, remaining: Optional[float]) -> Tuple[int, bool]:
        """Arm the vector, sleep on the eventfd in the loop, disarm. Returns
        what the rx after the wake-up (or the re-check after arming) got,
        and whether the device's signal ended the sleep."""
        irq, q = self._irq, self._q
        assert irq is not None and q is not None
        if irq.closed:
            return self._rx(batch), False                 # raises QueueError: the device is closed
        control, fd = irq.control, q.fd
        drain(q)                                    # a message from the polling phase is stale
        q.signalled = False
        control.unmask(q.vector)
        self.polls += 1
        got = self._rx(batch)                             # re-check after the unmask: no lost wake-up
        if got:
            control.mask(q.vector)
            return got, False
        loop = asyncio.get_running_loop()
        fut: "asyncio.Future[str]" = loop.create_future()

        def wake(why: str) -> None:
            if why == "closed":                           # before Interrupts.close closes fd (its number may be reused)
                loop.remove_reader(fd)
            if not fut.done():
                fut.set_result(why)

        def readable() -> None:
            if drain(q):
                wake("signal")

        timer = loop.call_later(remaining, wake, "timeout") if remaining is not None else None
        loop.add_reader(fd, readable)
        self._wake = wake
        self.sleeps += 1
        q.sleeps += 1
        why = "cancelled"
        try:
            why = await fut
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()
            if not irq.closed:                            # on close, _device_closing removed the reader
                loop.remove_reader(fd)
                if not (why == "signal" and control.auto_masks):
                    control.mask(q.vector)                # polling again, or cancelled: masked
        if why == "signal":
            self.wakeups += 1
            q.wakeups += 1
        elif why == "timeout":
            q.timeouts += 1
        self.polls += 1
        return self._rx(batch), why == "signal"           # after "closed": raises QueueError

    def _device_closing(self) -> None:
        """Interrupts.close(), before the eventfds are closed: a sleeping
        receiver loses its reader and wakes (then raises QueueError)."""
        if self._wake is not None:
            self._wake("closed")

    # --- async iteration ------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[PacketBatch]:
        return self

    async def __anext__(self) -> PacketBatch:
        """The next batch of received packets (one PacketBatch, reused): send
        or free its packets before asking for the next. The iteration ends
        when the device is closed (also while the receiver sleeps)."""
        if self._batch is None:
            self._batch = PacketBatch(self.batch_size)
        elif len(self._batch):
            raise BatchError(f"the previous batch still holds {len(self._batch)} packet(s)",
                             "send them or free them (batch.free()) before the next iteration")
        if self.dev.closed:
            raise StopAsyncIteration
        try:
            await self.recv(self._batch)
        except QueueError:
            if self.dev.closed:
                raise StopAsyncIteration from None
            raise
        return self._batch

    def stats(self) -> Dict[str, int]:
        """Counters of this object: rx calls, sleeps, wake-ups by the device, busy-phase yields."""
        return {"polls": self.polls, "sleeps": self.sleeps, "wakeups": self.wakeups, "yields": self.yields}

    def __repr__(self) -> str:
        mode = "eventfd" if self._irq is not None else f"timer {self.poll_interval:g} s"
        return f"<aio.RxQueue {self.dev.address} rx {self.queue_id}, idle: {mode}>"


class TxQueue:
    """One tx queue of dev with back-pressure as an awaitable:
    ``await txq.send(batch)`` returns once every packet of batch is in the
    ring (the device sends it and the driver frees its buffer later).

    There is no tx interrupt to sleep on, so a full ring is polled: up to
    spin_polls retries each after ``asyncio.sleep(0)``, then timer sleeps
    doubling from min_backoff to max_backoff seconds.
    """

    def __init__(self, dev: "Device", queue_id: int = 0, *, spin_polls: int = SPIN_POLLS,
                 min_backoff: float = MIN_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:
        self.dev = dev
        self.queue_id = queue_id
        self._tx: Callable[[PacketBatch], int] = dev.tx_queue(queue_id).tx
        self.spin_polls = spin_polls
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.polls = 0                       # tx calls made
        self.full = 0                        # tx calls that found no room
        self.timer_sleeps = 0                # backoff sleeps on a timer

    async def send(self, batch: PacketBatch, timeout: Optional[float] = None) -> int:
        """Send every packet of batch, waiting for ring room as long as it
        takes (or timeout seconds: then what did not fit stays in batch).
        Returns how many were sent. Sent packets leave the batch."""
        self.polls += 1
        sent = self._tx(batch)
        if not len(batch):
            return sent
        deadline = None if timeout is None else monotonic() + timeout
        spins = 0
        delay = self.min_backoff
        while len(batch):
            if deadline is not None and monotonic() >= deadline:
                break
            if spins < self.spin_polls:
                spins += 1
                await asyncio.sleep(0)
            else:
                self.timer_sleeps += 1
                pause = delay if deadline is None else max(0.0, min(delay, deadline - monotonic()))
                await asyncio.sleep(pause)
                delay = min(delay * 2, self.max_backoff)
            self.polls += 1
            n = self._tx(batch)
            if n:
                sent += n
                spins, delay = 0, self.min_backoff
            else:
                self.full += 1
        return sent

    def stats(self) -> Dict[str, int]:
        """Counters: tx calls, calls that found the ring full, timer sleeps."""
        return {"polls": self.polls, "full": self.full, "timer_sleeps": self.timer_sleeps}

    def __repr__(self) -> str:
        return f"<aio.TxQueue {self.dev.address} tx {self.queue_id}>"
