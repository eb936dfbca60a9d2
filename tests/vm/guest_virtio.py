"""Guest-side helpers for the virtio-net tests (imported by guest scripts:
tests/vm is on the guest's PYTHONPATH). Standard library + ixypy only."""
import glob
import json
import os
import subprocess
import time

from ixypy import PacketBatch
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.pci import PciDevice, msix_enabled


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


ETH_TEST = 0x88B5            # IEEE local experimental ethertype: the kernel ignores it


def test_frames(src_mac, dst_mac, count, tag=0):
    """count frames of sizes 60..1514 with a numbered, patterned payload."""
    src, dst = bytes.fromhex(src_mac.replace(":", "")), bytes.fromhex(dst_mac.replace(":", ""))
    frames = []
    for i in range(count):
        size = 60 + (i * 97) % (1514 - 60 + 1)
        head = dst + src + ETH_TEST.to_bytes(2, "big") + bytes([tag]) + i.to_bytes(4, "big")
        body = bytes((i + j) & 0xFF for j in range(size - len(head)))
        frames.append(head + body)
    return frames


def is_test_frame(frame):
    return len(frame) >= 14 and frame[12:14] == ETH_TEST.to_bytes(2, "big")


def raw_socket(ifname, rcvbuf=16 << 20):
    """AF_PACKET socket on ifname seeing only test frames, with a large buffer."""
    import socket
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_TEST))
    s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)     # SO_RCVBUFFORCE (root)
    s.bind((ifname, ETH_TEST))
    return s


def send_frames(dev, frames, batch_size=32, timeout=30.0, delivered=None):
    """Send frames (bytes) in order through ixypy; returns the count sent.
    delivered(): how many the peer has so far; with it, at most batch_size
    are in flight: a burst that overruns the peer's rx ring can be
    reordered by QEMU (a frame queued while the peer had no buffer is
    passed by the next one once the peer refills, before its kick)."""
    pool = dev.mempool(1024)
    batch = PacketBatch(batch_size)
    txq = dev.tx_queue(0)
    sent, i = 0, 0
    deadline = time.monotonic() + timeout
    while sent < len(frames) and time.monotonic() < deadline:
        drain(dev)
        if delivered is not None and delivered() < sent:
            continue
        while batch.room and i < len(frames):
            batch.alloc(pool, 1)
            batch.write(len(batch) - 1, frames[i])
            i += 1
        sent += txq.tx(batch)
    batch.free()
    return sent


def drain(dev, batch=None):
    """Receive and drop what a NIC got (kernel chatter), so its peer never stalls."""
    batch = batch if batch is not None else PacketBatch(64)
    n = dev.rx_queue(0).rx(batch)
    batch.free()
    return n


def receive_test_frames(dev, count, timeout=30.0, batch_size=64, got=None):
    """Receive until count test frames (ignoring others) or timeout; returns
    them as bytes (appended to got, which another thread may watch)."""
    rxq = dev.rx_queue(0)
    batch = PacketBatch(batch_size)
    got = [] if got is None else got
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        if rxq.rx(batch):
            got.extend(f for f in (bytes(batch[i]) for i in range(len(batch))) if is_test_frame(f))
            batch.free()
    return got


def send_paced(sock, frames, got, group=32, timeout=30.0):
    """Send frames on a raw socket in groups, each once the receiver (got,
    a list it appends to) has the previous group: no overrun, no reordering."""
    deadline = time.monotonic() + timeout
    for start in range(0, len(frames), group):
        while len(got) < start and time.monotonic() < deadline:
            time.sleep(0.001)
        for f in frames[start:start + group]:
            sock.send(f)


def promisc_checks(dev, sock, peer_mac):
    """Promiscuous mode off, on, off: each time a test frame to a foreign
    MAC, then a marker to dev's, sent from peer_mac on sock (a raw socket on
    the kernel's interface wired to dev). Per setting: for each test frame
    dev received, whether it was the foreign one, then whether the marker
    came (off: [False, True]; on: [True, False, True])."""
    checks = []
    for promisc in (False, True, False):
        dev.set_promisc(promisc)
        foreign = test_frames(peer_mac, "02:00:00:00:00:99", 1, tag=2)[0]
        marker = test_frames(peer_mac, dev.mac, 1, tag=3)[0]
        sock.send(foreign)
        sock.send(marker)
        seen = receive_test_frames(dev, 2 if promisc else 1, timeout=5)
        checks.append([f == foreign for f in seen] + [marker in seen])
    return checks


# --- interrupts: a sender in its own process, the receiver sleeping on MSI-X ---------

def start_sender(address, dst_mac, window=96):
    """Fork (before this process opens any device) a sender that opens
    address itself and obeys commands; returns (commands, results, received):
    the receiver stores its running count in received.value, and the sender
    never gets more than window frames ahead of it (QEMU reorders a burst
    that overruns the peer's ring). Frames carry one running sequence."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    commands, results, received = ctx.Queue(), ctx.Queue(), ctx.Value("q", 0, lock=False)
    proc = ctx.Process(target=_sender, args=(address, dst_mac, window, commands, results, received), daemon=True)
    proc.start()
    return proc, commands, results, received


def _sender(address, dst_mac, window, commands, results, received):
    import ixypy
    dev = ixypy.open(address, method="vfio")
    pool = dev.mempool(2048)
    pool.fill(udp_frame(60, dst_mac=dst_mac))
    txq, txb = dev.tx_queue(0), PacketBatch(32)
    seq = 0

    def send(count):
        nonlocal seq
        left = count
        while left:
            room = window - (seq - received.value)
            if room <= 0:
                time.sleep(0.0001)
                continue
            txb.alloc(pool, min(32, left, room))
            seq = txb.stamp_u64(SEQ_OFFSET, seq)
            while len(txb):
                left -= txq.tx(txb)
    results.put("ready")
    while True:
        cmd = commands.get()
        if cmd is None:
            break
        kind, arg = cmd
        if kind == "one":                 # after arg s, one frame; report when it left
            time.sleep(arg)
            t = time.monotonic()
            send(1)
            results.put(t)
        elif kind == "bursts":            # [(count, pause after), ...]
            for count, pause in arg:
                send(count)
                time.sleep(pause)
            results.put(seq)
        elif kind == "stream":            # arg frames as fast as the window allows
            t = time.monotonic()
            send(arg)
            results.put(t)
    dev.close()
    results.put("closed")


def receive_seq(dev, count, expected, received, timeout=60.0, batch_size=64, wait=0.2):
    """rx_batch with a timeout (sleeping on the interrupt if dev has them) until
    count more frames; sequence-checked. Returns (got, bad, expected, t_last)."""
    batch = PacketBatch(batch_size)
    got = bad = 0
    t_last = None
    deadline = time.monotonic() + timeout
    while got < count and time.monotonic() < deadline:
        n = dev.rx_batch(0, batch, timeout=wait)
        if n:
            t_last = time.monotonic()
            got += n
            expected, b = batch.check_seq_u64(SEQ_OFFSET, expected)
            bad += b
            received.value += n
            batch.free()
    return got, bad, expected, t_last


def idle_cpu(dev, seconds=1.0, timeout=0.1):
    """Wall and process CPU seconds of rx_batch(timeout) calls on an idle queue."""
    batch = PacketBatch(64)
    got = 0
    w0, c0 = time.monotonic(), time.process_time()
    while time.monotonic() - w0 < seconds:
        got += dev.rx_batch(0, batch, timeout=timeout)
    batch.free()
    return {"wall": time.monotonic() - w0, "cpu": time.process_time() - c0, "got": got}


def msix_enabled_sysfs(address):
    """MSI-X Enable as the kernel sees it in config space (sysfs)."""
    return msix_enabled(PciDevice(address))
