"""Send numbered UDP packets from one sim port to the other and check them.

    python examples/send_receive.py [COUNT]
"""
import sys

import ixypy
from ixypy.packets import SEQ_OFFSET, udp_frame


def main(count: int = 10_000) -> None:
    with ixypy.open("sim:pair0") as tx, ixypy.open("sim:pair1") as rx:
        pool = tx.mempool(2048)
        pool.fill(udp_frame(dst_mac=rx.mac))        # written once: buffers come back unchanged
        out, inbox = ixypy.PacketBatch(32), ixypy.PacketBatch(64)
        seq = received = expected = lost_order = 0
        while received < count:
            if seq < count and not len(out) and seq - received < 256:   # keep the receiver's ring from overflowing
                out.alloc(pool, min(32, count - seq))
                seq = out.stamp_u64(SEQ_OFFSET, seq)
            tx.tx_batch(0, out)
            if rx.rx_batch(0, inbox):
                received += len(inbox)
                expected, bad = inbox.check_seq_u64(SEQ_OFFSET, expected)
                lost_order += bad
                inbox.free()
        print(f"received {received} packets, {lost_order} out of order")
        print(f"sender:   {tx.stats()}")
        print(f"receiver: {rx.stats()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
