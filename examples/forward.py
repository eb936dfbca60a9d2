"""Forward everything arriving on one device to another, batch by batch.

    python examples/forward.py [SECONDS] [SRC] [DST]

SRC and DST default to sim:source (a traffic generator) and sim:sink; on real
NICs give PCI addresses (see `ixypy devices`).
"""
import sys
import time

import ixypy


def main(seconds: float = 2.0, src_addr: str = "sim:source", dst_addr: str = "sim:sink") -> None:
    with ixypy.open(src_addr) as src, ixypy.open(dst_addr) as dst:
        rxq, txq = src.rx_queue(0), dst.tx_queue(0)  # the queues themselves: no per-call checks
        batch = ixypy.PacketBatch(32)
        forwarded = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            if rxq.rx(batch):                        # here an app may look at or change batch[i]
                forwarded += txq.tx(batch)
                batch.free()                         # what the tx ring could not take is dropped
            # not looking at the packets? forwarded += rxq.forward(txq, batch) is
            # rx and tx in one call, and keeps what the tx ring cannot take yet
        dst.flush_tx()
        elapsed = time.perf_counter() - start
        print(f"forwarded {forwarded} packets in {elapsed:.2f} s: {forwarded / elapsed / 1e6:.2f} Mpps")
        print(f"{dst_addr} sent {dst.stats().tx_packets} packets")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(float(args[0]) if args else 2.0, *args[1:3])
