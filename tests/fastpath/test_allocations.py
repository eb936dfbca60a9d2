"""The fast path creates no Python object per packet: over many batches the
traced Python heap neither grows nor peaks by anything like a batch's worth
of objects (tracemalloc). For every driver, on its sim device: the pktgen
loop (alloc, stamp, tx), rx and the forward step."""
from __future__ import annotations

import tracemalloc

import pytest

import ixypy
from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET, udp_frame

BATCH = 256
ROUNDS = 1000
PER_PACKET_OBJECT = 28          # the smallest Python object (an int) in bytes


def traced(loop) -> tuple:
    loop(50)                              # warm up: caches, first-time allocations
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        loop(ROUNDS)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before, peak - before


@pytest.mark.parametrize("sink,source", [("sim:sink", "sim:source"), ("sim:igb-sink", "sim:igb-source"),
                                         ("sim:virtio-sink", "sim:virtio-source")])
def test_tx_rx_and_forward_allocate_nothing_per_packet(sink, source):
    with ixypy.open(sink) as a, ixypy.open(source) as b:
        pool = a.mempool(4096)
        pool.fill(udp_frame())
        out, inbox, held = PacketBatch(BATCH), PacketBatch(BATCH), PacketBatch(BATCH)
        txq, rxq = a.tx_queue(0), b.rx_queue(0)

        def loop(batches: int) -> None:
            """Run until `batches` rx calls and `batches` forward steps moved packets."""
            received = forwarded = 0
            while received < batches or forwarded < batches:
                if not len(out):
                    out.alloc(pool)
                    out.stamp_u64(SEQ_OFFSET, 0)
                txq.tx(out)
                if rxq.rx(inbox):
                    received += 1
                    inbox.free()
                if rxq.forward(txq, held):
                    forwarded += 1

        growth, peak = traced(loop)
        assert b.stats().rx_packets >= 2 * ROUNDS                # packets really moved
        for batch in (out, inbox, held):
            batch.free()
    assert growth <= 0 or growth < 1024                          # no leak
    assert peak < BATCH * PER_PACKET_OBJECT / 4                  # far below one object per packet of a batch
