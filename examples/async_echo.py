"""An echo server and its client, two coroutines in one asyncio program.

    python examples/async_echo.py [COUNT] [SERVER] [CLIENT]

The server (SERVER, default sim:pair1) sends every frame it receives back out
of the same port, unchanged; while nothing arrives it sleeps in the event
loop on its queue's MSI-X interrupt. The client (CLIENT, default sim:pair0,
cabled to the server) sends COUNT numbered frames in bursts with pauses,
awaits their echoes and checks their order. On real NICs give PCI addresses
of two cabled ports bound to vfio-pci (interrupts need VFIO). Ctrl-C stops
both cleanly: final counts, devices closed.
"""
import asyncio
import sys

import ixypy
from ixypy import aio
from ixypy.packets import SEQ_OFFSET, udp_frame

BURST = 200            # frames per burst: less than a ring, so nothing overflows
PAUSE = 0.01           # s between bursts: long enough for the server to fall asleep


async def serve(dev: ixypy.Device) -> None:
    rx, tx = aio.RxQueue(dev), aio.TxQueue(dev)
    async for batch in rx:              # polls while frames come, sleeps once the queue idles
        await tx.send(batch)            # waits for room in the tx ring; batch is empty afterwards


async def client(dev: ixypy.Device, peer_mac: str, count: int, totals: dict) -> None:
    pool = dev.mempool(2048)
    pool.fill(udp_frame(dst_mac=peer_mac))
    rx, tx = aio.RxQueue(dev), aio.TxQueue(dev)
    out, inbox = ixypy.PacketBatch(32), ixypy.PacketBatch(64)
    seq = 0
    while totals["echoed"] < count:
        burst_end = min(seq + BURST, count)
        while seq < burst_end:
            out.alloc(pool, min(32, burst_end - seq))
            seq = out.stamp_u64(SEQ_OFFSET, seq)
            await tx.send(out)
        while totals["echoed"] < seq:
            totals["echoed"] += await rx.recv(inbox)
            totals["expected"], bad = inbox.check_seq_u64(SEQ_OFFSET, totals["expected"])
            totals["out_of_order"] += bad
            inbox.free()
        if not totals["bursts"]:
            print("echo running", flush=True)
        totals["bursts"] += 1
        await asyncio.sleep(PAUSE)


async def main(count: int = 10_000, server_addr: str = "sim:pair1", client_addr: str = "sim:pair0") -> None:
    totals = {"echoed": 0, "expected": 0, "out_of_order": 0, "bursts": 0}
    try:
        with ixypy.open(server_addr, interrupts=True) as server, ixypy.open(client_addr, interrupts=True) as cli:
            server_task = asyncio.create_task(serve(server))
            try:
                await client(cli, server.mac, count, totals)
            finally:                    # also on Ctrl-C: asyncio.run cancels main()
                server_task.cancel()
                await asyncio.gather(server_task, return_exceptions=True)
                assert server.interrupts is not None          # opened with interrupts=True
                irq = server.interrupts.stats(0)
                print(f"echoed {totals['echoed']} packets in {totals['bursts']} bursts, "
                      f"{totals['out_of_order']} out of order")
                print(f"server slept {irq['sleeps']} times, woken {irq['wakeups']} times by its interrupt")
                print(f"server: {server.stats()}")
    finally:
        print("devices closed")

if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, *sys.argv[2:4]))
    except KeyboardInterrupt:
        sys.exit(130)
