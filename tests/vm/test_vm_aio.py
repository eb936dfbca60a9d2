"""ixypy.aio over VFIO in the guest: QEMU's legacy virtio-net with its
MSI-X vector delivered by vfio-pci to an eventfd, awaited in an asyncio
event loop (on the host, tests/aio runs the same path on the sim virtio
model; here it meets QEMU's device and the kernel's vfio-pci).

One guest, NICs 0 and 1 on hub 0; a sender process on NIC 0 (guest_virtio's
start_sender), the async receiver on NIC 1 opened with interrupts=True."""
import json
import textwrap

import pytest

from .guest import Nic, guest_script

pytestmark = pytest.mark.vm

GUEST_NICS = [Nic("virtio", hub=0), Nic("virtio", hub=0)]

SCRIPT = """
import asyncio, json, time
import ixypy
from ixypy import PacketBatch, aio
from ixypy.errors import QueueError
from ixypy.interrupts import IDLE_POLLS
from ixypy.packets import SEQ_OFFSET
from ixypy.pci import PciDevice
from guest_virtio import report, start_sender

proc, commands, results, received = start_sender(A, B_MAC)
assert results.get(timeout=30) == "ready"
res = {}
state = {"expected": 0}


async def receive(rxq, count):
    batch = PacketBatch(64)
    got = bad = 0
    while got < count:
        n = await rxq.recv(batch)
        got += n
        state["expected"], b = batch.check_seq_u64(SEQ_OFFSET, state["expected"])
        bad += b
        received.value += n
        batch.free()
    return {"got": got, "bad": bad}


async def main(rx):
    loop = asyncio.get_running_loop()
    sel = loop._selector
    inner = sel.select
    iterations = [0]
    def select(timeout=None):
        iterations[0] += 1
        return inner(timeout)
    sel.select = select
    rxq = aio.RxQueue(rx)
    fd = rx.interrupts.queues[0].fd

    # idle: one sleep on the eventfd, ended by the timer
    c0, i0 = time.process_time(), iterations[0]
    got = await rxq.recv(PacketBatch(32), timeout=1.0)
    res["idle"] = {"got": got, "iterations": iterations[0] - i0, "cpu": time.process_time() - c0,
                   "stats": rxq.stats(), "bound": IDLE_POLLS + 8}
    i1, spare, end = iterations[0], PacketBatch(32), time.monotonic() + 0.2
    while time.monotonic() < end:                 # the negative control: a busy poll, counted the same way
        rxq._rx(spare)
        await asyncio.sleep(0)
    res["idle"]["busy_iterations"] = iterations[0] - i1

    # bursts from the other process with pauses: every one wakes the sleeping receiver, nothing lost
    ticks = [0]
    async def ticker():
        while True:
            await asyncio.sleep(0.005)
            ticks[0] += 1
    t = asyncio.create_task(ticker())
    bursts = [(300, 0.15), (1, 0.3), (500, 0.2), (64, 0.3), (7, 0.1), (200, 0)]
    before = rxq.stats()
    commands.put(("bursts", bursts))
    res["bursts"] = await asyncio.wait_for(receive(rxq, sum(c for c, _ in bursts)), 120)
    res["bursts"].update(sender_seq=results.get(timeout=30), expected=state["expected"], ticks=ticks[0],
                         wakeups=rxq.stats()["wakeups"] - before["wakeups"])
    t.cancel()

    # a sleeping receiver cancelled: its reader gone, the vector masked again; the queue still receives
    task = asyncio.create_task(rxq.recv(PacketBatch(32)))
    while rxq._wake is None:
        await asyncio.sleep(0.001)
    armed = [fd in sel.get_map(), rx.rx_queue(0).interrupt_enabled]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    res["cancel"] = {"armed": armed, "after": [fd in sel.get_map(), rx.rx_queue(0).interrupt_enabled]}
    commands.put(("one", 0.2))
    res["cancel"]["then"] = await asyncio.wait_for(receive(rxq, 1), 30)
    results.get(timeout=10)

    # close while a receiver sleeps: it wakes with QueueError
    task = asyncio.create_task(rxq.recv(PacketBatch(32)))
    while rxq._wake is None:
        await asyncio.sleep(0.001)
    rx.close()
    try:
        await asyncio.wait_for(task, 10)
        res["close"] = "no error"
    except QueueError as e:
        res["close"] = str(e)
    res["close_fd_in_loop"] = fd in sel.get_map()


rx = ixypy.open(B, method="vfio", interrupts=True)
try:
    asyncio.run(main(rx))
finally:
    rx.close()
commands.put(None)
res["sender"] = results.get(timeout=30)
proc.join(30)
for addr in (A, B):
    PciDevice(addr).release()
report(**res)
"""


def test_aio_receiver_sleeps_and_wakes_on_virtio_msix_over_vfio(guest):
    """An idle async receiver makes a bounded number of loop iterations in
    1 s (it sleeps in epoll on the vfio eventfd; a busy poll counted the same
    way for 0.2 s, the negative control, exceeds the bound); bursts with pauses from
    another process all arrive in order, each woke the receiver; a ticker
    coroutine ran meanwhile; cancelling a sleeper masks the vector (avail
    flag) and leaves the queue receiving; closing wakes a sleeper with
    QueueError. The CPU time of the idle second is printed with -s."""
    a, b = guest.nic(0), guest.nic(1)
    result = guest.run(guest_script(textwrap.dedent(SCRIPT), A=a.address, B=b.address, B_MAC=b.mac), timeout=300)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    print("\naio over VFIO (TCG guest):", json.dumps(out, indent=1))
    idle = out["idle"]
    assert idle["got"] == 0 and idle["stats"]["sleeps"] == 1, idle
    assert idle["iterations"] <= idle["bound"] < idle["busy_iterations"], idle   # the control exceeds it
    bursts = out["bursts"]
    assert (bursts["got"], bursts["bad"]) == (1072, 0), bursts
    assert bursts["expected"] == bursts["sender_seq"] == 1072
    assert bursts["wakeups"] >= 5 and bursts["ticks"] >= 1, bursts
    assert out["cancel"]["armed"] == [True, True]
    assert out["cancel"]["after"] == [False, False]
    assert out["cancel"]["then"] == {"got": 1, "bad": 0}
    assert "closed" in out["close"] and out["close_fd_in_loop"] is False, out
    assert out["sender"] == "closed"
