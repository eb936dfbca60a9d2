"""Guest-side helpers for the virtio-net tests (imported by guest scripts:
tests/vm is on the guest's PYTHONPATH). Standard library + ixypy only."""
import glob
import json
import os
import subprocess
import time

from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.pci import PciDevice


def report(**values):
    """One JSON line on stdout: what the host test reads back."""
    print(json.dumps(values), flush=True)


def kernel_iface(address, timeout=10.0):
    """Hand the NIC back to the kernel's virtio_net and bring its interface up; returns its name."""
    PciDevice(address).release()
    deadline = time.monotonic() + timeout
    while True:
        names = [os.path.basename(p) for p in glob.glob(f"/sys/bus/pci/devices/{address}/virtio*/net/*")]
        if names:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{address}: no network interface after release")
        time.sleep(0.05)
    subprocess.run(["ip", "link", "set", "dev", names[0], "up"], check=True)
    return names[0]


def iface_stat(ifname, name):
    with open(f"/sys/class/net/{ifname}/statistics/{name}") as f:
        return int(f.read())


def transfer(tx_dev, rx_dev, count, batch_size=32, rx_batch_size=64, window=96, frame_size=60, timeout=60.0,
             pool=None):
    """Send count sequence-numbered frames from tx_dev to rx_dev, never more
    than window ahead of what arrived (a peer without rx buffers stalls the
    sender in QEMU). Returns counters and the number out of sequence."""
    pool = pool if pool is not None else tx_dev.mempool(4096)
    pool.fill(udp_frame(frame_size, dst_mac=rx_dev.mac))
    txb, rxb = PacketBatch(batch_size), PacketBatch(rx_batch_size)
    txq, rxq = tx_dev.tx_queue(0), rx_dev.rx_queue(0)
    seq = sent = received = bad = expected = 0
    deadline = time.monotonic() + timeout
    try:
        while received < count and time.monotonic() < deadline:
            ahead = sent - received
            if sent < count and ahead < window:
                if not len(txb):
                    txb.alloc(pool, min(batch_size, count - sent, window - ahead))
                    seq = txb.stamp_u64(SEQ_OFFSET, seq)
                sent += txq.tx(txb)
            if rxq.rx(rxb):
                received += len(rxb)
                expected, b = rxb.check_seq_u64(SEQ_OFFSET, expected)
                bad += b
                rxb.free()
    finally:
        txb.free()
        rxb.free()
    return {"sent": sent, "received": received, "bad": bad, "next_seq": expected}
