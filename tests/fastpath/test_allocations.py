"""The fast path creates no Python object per packet, nor per batch: a
counting allocator (conftest.py, countalloc.c) wrapped around Python's object
and PyMem allocators counts every allocation the loop makes, transient ones
included (tracemalloc's growth and peak did not see an object made and freed
per packet). For every driver, on its sim device, at two batch sizes: the
pktgen loop (alloc, stamp, tx), rx and the forward step make exactly zero
allocations. Negative controls: the same loop touching each packet from
Python, and the same loop making a single tuple per batch, must be caught."""
from __future__ import annotations

import sys

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET, udp_frame

# batches per measured window; below 257 so that the loop's own counters stay
# small ints, which CPython preallocates (-5..256): counting further would
# allocate an int per batch in the test's loop, not in the fast path
ROUNDS = 200
DEVICES = [("sim:sink", "sim:source"), ("sim:igb-sink", "sim:igb-source"),
           ("sim:virtio-sink", "sim:virtio-source")]


@pytest.fixture(autouse=True)
def _no_tracer():
    if sys.gettrace() is not None or sys.getprofile() is not None:
        pytest.skip("a tracer or profiler (coverage, a debugger) allocates as the loop runs")


def per_packet(batch: PacketBatch) -> None:
    """The bad loop: a Python object per packet (the issue's example)."""
    for i in range(len(batch)):
        bytes(batch[i])[42:50]


def per_batch(batch: PacketBatch) -> tuple:
    """The subtler bad loop: one transient tuple per batch."""
    return (batch, len(batch))


def test_the_counter_sees_transient_objects(count_allocations):
    """Calibration: an empty call counts nothing; an object made and freed
    at once counts, even of a type with a free list (a tuple). Not a float:
    the float free list is refilled between gc.collect() and the window
    often enough that a single float reused its memory (seen once in a
    full run), and a test must not flake."""
    assert count_allocations(lambda: None) == 0
    assert count_allocations(lambda: bytes(100)[42:50]) >= 2
    assert count_allocations(lambda x: (x, x), 1) >= 1


@pytest.mark.parametrize("batch_size", [32, 256])
@pytest.mark.parametrize("sink,source", DEVICES)
def test_tx_rx_and_forward_allocate_nothing(sink, source, batch_size, count_allocations):
    with ixypy.open(sink) as a, ixypy.open(source) as b:
        pool = a.mempool(4096)
        pool.fill(udp_frame())
        out, inbox, held = PacketBatch(batch_size), PacketBatch(batch_size), PacketBatch(batch_size)
        txq, rxq = a.tx_queue(0), b.rx_queue(0)

        def loop(batches: int, bad=None) -> None:
            """Run until `batches` rx calls and `batches` forward steps
            moved packets; bad(batch), if given, on every received batch."""
            received = forwarded = 0
            while received < batches or forwarded < batches:
                if not len(out):
                    out.alloc(pool)
                    out.stamp_u64(SEQ_OFFSET, 0)
                txq.tx(out)
                if rxq.rx(inbox):
                    if bad is not None:
                        bad(inbox)
                    inbox.free()
                    if received < batches:
                        received += 1
                if rxq.forward(txq, held):
                    if forwarded < batches:
                        forwarded += 1

        loop(50)                            # warm up: first-time allocations
        before = b.stats().rx_packets
        good = count_allocations(loop, ROUNDS)
        assert b.stats().rx_packets - before >= 2 * ROUNDS       # packets really moved
        touched = count_allocations(loop, ROUNDS, per_packet)
        one_tuple = count_allocations(loop, ROUNDS, per_batch)
        for batch in (out, inbox, held):
            batch.free()
    assert good == 0
    assert touched >= 2 * ROUNDS             # negative control: >= 2 objects a packet, >= 1 packet a batch
    assert one_tuple >= 1                    # negative control: one tuple per batch is seen too
