"""ixypy.aio on the sim devices: an idle receiver sleeps in the event loop
(no busy poll), wakes on traffic without loss, lets other coroutines run,
can be cancelled or have its device closed under it; tx back-pressure.

No timed assertions: waits are bounded with generous timeouts, and what is
counted (rx calls, event-loop iterations) has bounds that follow from the
code's structure, not from the machine's speed. Each test carries its
negative control where one can be run in-process (a busy poller, a blocking
call, yield_every=0); the others name the mutation they were shown to fail
on."""
from __future__ import annotations

import asyncio
import time

import pytest

import ixypy
from ixypy import PacketBatch, aio
from ixypy.drivers import ixgbe_irq
from ixypy.errors import BatchError, QueueError
from ixypy.interrupts import IDLE_POLLS
from ixypy.packets import SEQ_OFFSET, udp_frame

from ..simdev import model_errors

GENEROUS = 30.0          # s: a bound for things that take milliseconds


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, GENEROUS))


class SelectCounter:
    """Counts the event loop's iterations: every one calls its selector's
    select() once, whether it then sleeps or finds work."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        sel = loop._selector                                # the selector event loop's epoll
        inner = sel.select

        def select(timeout=None):
            self.count += 1
            return inner(timeout)

        sel.select = select


class CountingRx:
    """Wraps an aio.RxQueue's rx function: every look at the ring, counted
    outside the module under test."""

    def __init__(self, rxq: aio.RxQueue) -> None:
        self.calls = 0
        inner = rxq._rx

        def rx(batch):
            self.calls += 1
            return inner(batch)

        rxq._rx = rx


async def until(predicate, timeout: float = GENEROUS) -> None:
    """Yield to the loop (in 1 ms steps) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def sleeping(rxq: aio.RxQueue) -> bool:
    return rxq._wake is not None


def fd_registered(fd: int) -> bool:
    return fd in asyncio.get_running_loop()._selector.get_map()


def vector_unmasked(dev) -> bool:
    """Rx queue 0's interrupt armed: EIMS bit 0 (82599), avail.flags without NO_INTERRUPT (virtio)."""
    if dev.driver_name == "virtio":
        return dev.rx_queue(0).interrupt_enabled
    return bool(dev.regs.read(ixgbe_irq.EIMS) & 1)


@pytest.fixture
def pair():
    """sim:pair0 polling, sim:pair1 with interrupts (82599)."""
    a = ixypy.open("sim:pair0")
    b = ixypy.open("sim:pair1", interrupts=True)
    yield a, b
    a.close()
    b.close()
    assert model_errors(a, b) == []


IRQ_DEVICES = ["sim:sink", "sim:igb-sink", "sim:virtio-sink"]


# --- an idle receiver sleeps ----------------------------------------------------------

@pytest.mark.parametrize("address", IRQ_DEVICES)
def test_idle_receiver_sleeps_on_the_eventfd_not_in_a_busy_poll(address):
    """While recv waits 0.5 s on an idle queue: rx is called at most
    idle_polls + 3 times and the loop iterates about as often (the idle
    polls, then one sleep in epoll until the timer ends it). Negative
    control: a coroutine polling with asyncio.sleep(0) over the same 0.5 s,
    counted the same way, exceeds that bound."""
    with ixypy.open(address, interrupts=True) as dev:
        async def main():
            loop_iterations = SelectCounter(asyncio.get_running_loop())
            rxq = aio.RxQueue(dev)
            rx_calls = CountingRx(rxq)
            assert await rxq.recv(PacketBatch(32), timeout=0.5) == 0
            calm = loop_iterations.count, rx_calls.calls

            busy_iterations = loop_iterations.count
            end = time.monotonic() + 0.5
            while time.monotonic() < end:                 # the negative control: a busy poll
                rxq._rx(PacketBatch(32))
                await asyncio.sleep(0)
            busy = loop_iterations.count - busy_iterations, rx_calls.calls - calm[1]
            return calm, busy, rxq.stats()

        (iters, calls), busy, st = run(main())
        bound = IDLE_POLLS + 3
        assert calls <= bound and iters <= bound + 5, (calls, iters)
        assert st["sleeps"] == 1 and st["wakeups"] == 0
        assert dev.interrupts.stats(0)["timeouts"] == 1
        assert busy[0] > bound + 5 and busy[1] > bound, busy  # the control counted a busy poll
        assert not vector_unmasked(dev) if address != "sim:igb-sink" else True
    assert model_errors(dev) == []


# --- it wakes on traffic, nothing lost ---------------------------------------------------

@pytest.mark.parametrize("ends, bursts", [
    (("sim:pair0", "sim:pair1"), [1, 64, 3, 200, 17, 100, 5, 300, 2, 32]),
    (("sim:igb-pair0", "sim:igb-pair1"), [1, 64, 3, 200, 17, 100, 5, 300, 2, 32]),
    # one device, its tx back on its rx: bursts within its 128 rx buffers
    (("sim:virtio-loop",), [1, 64, 3, 100, 17, 5, 2, 32]),
], ids=["ixgbe", "igb", "virtio"])
def test_sleeping_receiver_wakes_on_every_burst_without_loss(ends, bursts):
    """A sender coroutine waits until the receiver is asleep on its eventfd,
    then sends a burst of numbered frames: every frame arrives, in order,
    and every burst woke the receiver through its interrupt.
    Mutations shown to fail (the wait_for bound): no unmask before the
    sleep; no add_reader (the sleep never ends); on virtio, the model
    sending no MSI-X message."""
    b = ixypy.open(ends[-1], interrupts=True)
    a = ixypy.open(ends[0]) if len(ends) > 1 else b
    try:
        async def main():
            pool = a.mempool(2048)
            pool.fill(udp_frame(dst_mac=b.mac))
            rxq, txq = aio.RxQueue(b, batch_size=64), aio.TxQueue(a)
            got = {"n": 0, "expected": 0, "bad": 0}

            async def receiver():
                async for batch in rxq:
                    got["n"] += len(batch)
                    got["expected"], bad = batch.check_seq_u64(SEQ_OFFSET, got["expected"])
                    got["bad"] += bad
                    batch.free()

            task = asyncio.create_task(receiver())
            seq = 0
            out = PacketBatch(32)
            for n in bursts:
                await until(lambda: sleeping(rxq) and got["n"] == seq)
                end = seq + n
                while seq < end:
                    out.alloc(pool, min(32, end - seq))
                    seq = out.stamp_u64(SEQ_OFFSET, seq)
                    await txq.send(out)
            await until(lambda: got["n"] == seq)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return got, seq, rxq.stats()

        got, sent, st = run(main())
        assert sent == sum(bursts)
        assert got == {"n": sent, "expected": sent, "bad": 0}
        assert b.stats().rx_dropped == 0
        assert st["wakeups"] >= len(bursts), st
        irq = b.interrupts.stats(0)
        assert irq["wakeups"] >= len(bursts) and irq["signals"] >= irq["wakeups"], irq
    finally:
        a.close()
        b.close()
    assert model_errors(a, b) == []


# --- other coroutines run ------------------------------------------------------------------

def test_other_coroutines_run_while_a_receiver_waits(pair):
    """A ticker ticks 20 times while a receiver waits on an idle queue; then
    one frame ends the wait. Negative control: the synchronous
    rx_batch(timeout=...) called from a coroutine blocks the loop, and the
    ticker does not tick at all meanwhile."""
    a, b = pair

    async def main():
        ticks = 0

        async def ticker(n):
            nonlocal ticks
            for _ in range(n):
                await asyncio.sleep(0.001)
                ticks += 1

        rxq = aio.RxQueue(b)
        batch = PacketBatch(32)
        receiving = asyncio.create_task(rxq.recv(batch))
        await ticker(20)
        still_waiting = not receiving.done()
        pool = a.mempool(64)
        out = PacketBatch(1)
        out.alloc(pool, length=60)
        await aio.TxQueue(a).send(out)
        got = await receiving
        batch.free()

        background = asyncio.create_task(ticker(1000))
        await asyncio.sleep(0)                            # the ticker is sleeping now
        before = ticks
        assert b.rx_batch(0, batch, timeout=0.2) == 0     # the control: blocks the loop for 0.2 s
        blocked_ticks = ticks - before
        background.cancel()
        return still_waiting, got, blocked_ticks

    still_waiting, got, blocked_ticks = run(main())
    assert still_waiting and got == 1
    assert blocked_ticks == 0


@pytest.mark.parametrize("yield_every", [aio.YIELD_EVERY, 0])
def test_a_flood_does_not_starve_other_coroutines(yield_every):
    """sim:source has filled a 2048-descriptor ring, so each of 50 recv calls of 32 finds packets without waiting. With the
    default yield_every the ticker runs meanwhile, once per yield_every
    batches; with yield_every=0 (the negative control) it does not run."""
    with ixypy.open("sim:source", num_rx_desc=2048) as dev:
        async def main():
            ring = dev.rx_queue_regs(0)                   # the ring is full: the NIC's head reached the tail
            await until(lambda: dev.regs.read(ring.head) == dev.regs.read(ring.tail))
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            t = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            start = ticks
            rxq = aio.RxQueue(dev, yield_every=yield_every)
            rx_calls = CountingRx(rxq)
            n = 0
            async for batch in rxq:
                assert len(batch) == 32
                batch.free()
                n += 1
                if n == 50:
                    break
            during = ticks - start
            t.cancel()
            return during, rx_calls.calls

        during, calls = run(main())
    assert calls == 50                                    # every call found packets
    if yield_every:
        assert during >= 50 // yield_every, during
    else:
        assert during == 0


# --- cancellation, close --------------------------------------------------------------------

def test_cancelled_receiver_leaves_the_queue_usable(pair):
    """Cancel a receiver sleeping on its eventfd, then time one out with
    asyncio.wait_for: each time the reader leaves the loop and the vector is
    masked again; then the queue still receives every frame sent.
    Mutation shown to fail: no mask/remove_reader in _sleep's finally."""
    a, b = pair
    fd = b.interrupts.queues[0].fd

    async def main():
        rxq = aio.RxQueue(b)
        batch = PacketBatch(32)
        task = asyncio.create_task(rxq.recv(batch))
        await until(lambda: sleeping(rxq))
        armed = fd_registered(fd), vector_unmasked(b)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after_cancel = fd_registered(fd), vector_unmasked(b)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(rxq.recv(batch), 0.05)
        after_timeout = fd_registered(fd), vector_unmasked(b)

        pool = a.mempool(256)
        out = PacketBatch(32)
        out.alloc(pool, length=60)
        seq = out.stamp_u64(SEQ_OFFSET, 0)
        await aio.TxQueue(a).send(out)
        got = 0
        while got < seq:
            got += await rxq.recv(batch)
        expected, bad = batch.check_seq_u64(SEQ_OFFSET, 0)
        batch.free()
        return armed, after_cancel, after_timeout, got, (expected, bad)

    armed, after_cancel, after_timeout, got, check = run(main())
    assert armed == (True, True)                          # it really slept on the interrupt
    assert after_cancel == (False, False) and after_timeout == (False, False)
    assert got == 32 and check == (32, 0)


def test_closing_the_device_wakes_a_sleeping_receiver(pair):
    """dev.close() from another coroutine while a receiver sleeps: the
    receiver raises QueueError at once (not at some timeout), and the closed
    eventfd is no longer in the loop. Mutation shown to fail: RxQueue not
    registering its on_close callback (the receiver sleeps on until the
    test's wait_for bound)."""
    a, b = pair
    fd = b.interrupts.queues[0].fd

    async def main():
        rxq = aio.RxQueue(b)
        task = asyncio.create_task(rxq.recv(PacketBatch(32)))
        await until(lambda: sleeping(rxq))
        b.close()
        with pytest.raises(QueueError, match="closed"):
            await asyncio.wait_for(task, 10)
        return fd_registered(fd)

    assert run(main()) is False


def test_closing_the_device_ends_async_for():
    """The same close under a sleeping ``async for``: the loop ends, no
    error. (Mutation shown to fail: __anext__ without the QueueError to
    StopAsyncIteration conversion.)"""
    dev = ixypy.open("sim:sink", interrupts=True)

    async def main():
        rxq = aio.RxQueue(dev)
        batches = 0

        async def consume():
            nonlocal batches
            async for batch in rxq:
                batches += 1
                batch.free()
            return "ended"

        task = asyncio.create_task(consume())
        await until(lambda: sleeping(rxq))
        dev.close()
        return await asyncio.wait_for(task, 10), batches

    assert run(main()) == ("ended", 0)
    assert model_errors(dev) == []


def test_one_receiver_per_queue_and_a_full_batch_is_refused(pair):
    """A second concurrent recv on one queue raises RuntimeError (two
    sleepers on one eventfd would steal each other's wake-ups); a batch with
    no free slot cannot receive (it would wait forever); async for refuses
    to go on while the previous batch still holds packets."""
    a, b = pair

    async def main():
        rxq = aio.RxQueue(b)
        first = asyncio.create_task(rxq.recv(PacketBatch(32)))
        await until(lambda: sleeping(rxq))
        with pytest.raises(RuntimeError, match="already"):
            await rxq.recv(PacketBatch(32))
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)

        full = PacketBatch(1)
        full.alloc(a.mempool(64), length=60)
        with pytest.raises(BatchError, match="no free slot"):
            await rxq.recv(full)
        full.free()

        pool = a.mempool(64)
        out = PacketBatch(4)
        out.alloc(pool, length=60)
        await aio.TxQueue(a).send(out)
        it = aio.RxQueue(b, batch_size=64)
        batch = await it.__anext__()
        held = len(batch)
        with pytest.raises(BatchError, match="still holds"):
            await it.__anext__()
        batch.free()
        return held

    assert run(main()) >= 1


# --- without interrupts: a timer ------------------------------------------------------------

def test_without_interrupts_an_idle_queue_is_polled_on_a_timer():
    """interrupts=False: recv(timeout=0.2) returns 0 after at most
    idle_polls + 0.2 / poll_interval + 2 rx calls (each timer sleep lasts at
    least poll_interval), then a frame sent on the loopback arrives.
    Negative control: poll_interval=0 (a busy poll) exceeds the bound."""
    with ixypy.open("sim:virtio-loop") as dev:
        async def main():
            rxq = aio.RxQueue(dev, poll_interval=0.01)
            calls = CountingRx(rxq)
            assert await rxq.recv(PacketBatch(32), timeout=0.2) == 0
            calm = calls.calls
            spin = aio.RxQueue(dev, poll_interval=0)
            spin_calls = CountingRx(spin)
            assert await spin.recv(PacketBatch(32), timeout=0.2) == 0

            out = PacketBatch(3)
            out.alloc(dev.mempool(64), length=60)
            await aio.TxQueue(dev).send(out)
            batch = PacketBatch(32)
            got = 0
            while got < 3:
                got += await rxq.recv(batch)
            batch.free()
            return calm, spin_calls.calls, got

        calm, spin, got = run(main())
        bound = IDLE_POLLS + int(0.2 / 0.01) + 2
        assert calm <= bound, calm
        assert spin > bound, spin
        assert got == 3
    assert model_errors(dev) == []


# --- tx back-pressure ---------------------------------------------------------------------

def test_send_waits_for_ring_room_and_lets_others_run():
    """The model's DMA engine is stopped, so the 64-descriptor tx ring
    fills: send of 8 batches of 32 waits (on a timer once its sleep(0)
    retries are spent) while a ticker runs; restarting the engine lets it
    finish, and the sink counts every packet. send(timeout=...) on a full
    ring returns what fit and leaves the rest in the batch.
    Mutation shown to fail: send returning after its first tx call."""
    with ixypy.open("sim:sink", num_tx_desc=64) as dev:
        model = dev.bus.sim
        pool = dev.mempool(1024)
        try:
            async def main():
                txq = aio.TxQueue(dev)
                ticks = 0

                async def sender():
                    total = 0
                    for _ in range(8):
                        out = PacketBatch(32)
                        out.alloc(pool, length=60)
                        total += await txq.send(out)
                        assert len(out) == 0
                    return total

                model.stop()
                task = asyncio.create_task(sender())
                while txq.timer_sleeps < 3:
                    await asyncio.sleep(0.001)
                    ticks += 1
                    assert ticks < GENEROUS * 1000
                waiting = not task.done()
                model.start()
                total = await task

                model.stop()
                fill = PacketBatch(96)
                fill.alloc(pool, length=60)
                partial = await txq.send(fill, timeout=0.05)
                left = len(fill)
                model.start()
                await txq.send(fill)
                return waiting, ticks, total, partial, left

            waiting, ticks, total, partial, left = run(main())
        finally:
            model.start()
        assert waiting and ticks >= 1                      # this coroutine ran while send waited
        assert total == 8 * 32
        assert 0 < partial < 64 and left == 96 - partial    # a 64-descriptor ring holds 63 at most
        dev.flush_tx()
        assert dev.stats().tx_packets == 8 * 32 + 96
    assert model_errors(dev) == []
