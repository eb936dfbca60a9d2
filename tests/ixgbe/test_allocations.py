"""The fast path creates no Python object per packet: over many batches the
traced Python heap neither grows nor peaks by anything like a batch's worth
of objects (tracemalloc)."""
from __future__ import annotations

import tracemalloc

import ixypy
from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET, udp_frame

BATCH = 256
ROUNDS = 2000
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


def test_tx_and_rx_loops_allocate_nothing_per_packet():
    with ixypy.open("sim:pair0", num_rx_desc=512, num_tx_desc=512) as a, \
            ixypy.open("sim:pair1", num_rx_desc=512, num_tx_desc=512) as b:
        pool = a.mempool(4096)
        pool.fill(udp_frame(dst_mac=b.mac))
        out, inbox = PacketBatch(BATCH), PacketBatch(BATCH)
        txq, rxq = a.tx_queue(0), b.rx_queue(0)

        def loop(batches: int) -> None:
            """Run until `batches` rx calls returned packets."""
            while batches:
                if not len(out):
                    out.alloc(pool)
                    out.stamp_u64(SEQ_OFFSET, 0)
                txq.tx(out)
                if rxq.rx(inbox):
                    batches -= 1
                    inbox.free()

        growth, peak = traced(loop)
        assert b.stats().rx_packets >= ROUNDS                 # packets really moved
    assert growth <= 0 or growth < 1024                       # no leak
    assert peak < BATCH * PER_PACKET_OBJECT / 4               # far below one object per packet of a batch
