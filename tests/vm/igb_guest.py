"""Guest-side helpers for the Intel tests, igb, e1000e and igbvf (imported
by scripts run in the guest: the harness directory is on the guest's
PYTHONPATH). Their host side is intel_scenarios.py: run_scenarios() below
runs the scenarios it collects.

transfer() is a sender and a receiver in one loop: the sender stamps
sequence numbers and keeps at most `window` packets in flight, so nothing is
lost to a full rx ring; the receiver checks the numbers as they come."""
from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

from ixypy import PacketBatch, pci
from ixypy.packets import SEQ_OFFSET


class Receiver:
    """Receives on one queue, checking the sequence numbers."""

    def __init__(self, dev, queue: int = 0, batch_size: int = 32, keep: bool = False) -> None:
        self.rxq = dev.rx_queue(queue)
        self.batch = PacketBatch(batch_size)
        self.count = self.bytes = self.expected = self.out_of_order = 0
        self.frames: Optional[List[bytes]] = [] if keep else None

    def poll(self) -> int:
        got = self.rxq.rx(self.batch)
        if got:
            self.expected, bad = self.batch.check_seq_u64(SEQ_OFFSET, self.expected)
            self.out_of_order += bad
            self.count += got
            self.bytes += self.batch.total_bytes()
            if self.frames is not None:
                self.frames.extend(bytes(self.batch[i]) for i in range(got))
            self.batch.free()
        return got

    def drain(self, idle: float = 0.5, until: Optional[int] = None, timeout: float = 20.0) -> None:
        """Poll until `until` packets arrived, or nothing came for `idle` seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and (until is None or self.count < until):
            if self.poll():
                last = time.monotonic()
            elif time.monotonic() - last > idle:
                break


class Sender:
    """Sends copies of frames with a 64-bit sequence number at SEQ_OFFSET."""

    def __init__(self, dev, frames: Sequence[bytes], queue: int = 0, batch_size: int = 32) -> None:
        self.pool = dev.mempool(4096)
        self.pool.fill(list(frames))
        self.txq = dev.tx_queue(queue)
        self.batch = PacketBatch(batch_size)
        self.seq = self.sent = self.bytes = 0

    def send(self, upto: int) -> int:
        """Send until `upto` packets in total (or the ring is full)."""
        if not len(self.batch) and self.sent < upto:
            self.batch.alloc(self.pool, min(self.batch.capacity, upto - self.sent))
            self.seq = self.batch.stamp_u64(SEQ_OFFSET, self.seq)
        before = self.batch.total_bytes()
        n = self.txq.tx(self.batch)
        self.bytes += before - self.batch.total_bytes()
        self.sent += n
        return n

    def close(self) -> None:
        self.batch.free()


def transfer(tx_dev, rx_dev, count: int, frames: Sequence[bytes], window: int = 256,
             batch_size: int = 32, tx_queue: int = 0, timeout: float = 30.0) -> Dict[str, int]:
    """Send count packets from tx_dev to rx_dev, never more than window in
    flight; returns what both sides saw."""
    sender = Sender(tx_dev, frames, tx_queue, batch_size)
    receiver = Receiver(rx_dev, batch_size=batch_size)
    deadline = time.monotonic() + timeout
    try:
        while receiver.count < count and time.monotonic() < deadline:
            if sender.sent < count and sender.sent - receiver.count < window:
                sender.send(min(count, receiver.count + window))
            receiver.poll()
        receiver.drain(idle=0.2)      # anything beyond count would be a bug
    finally:
        sender.close()
    return {"sent": sender.sent, "sent_bytes": sender.bytes, "received": receiver.count,
            "received_bytes": receiver.bytes, "out_of_order": receiver.out_of_order,
            "expected": receiver.expected}


def msix_enabled(address: str) -> bool:
    """The MSI-X enable bit of the function's capability, as the kernel
    reads config space (sysfs; root sees past the first 64 bytes)."""
    return pci.msix_enabled(pci.PciDevice(address))


def is_eventfd(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except OSError:
        return False


def stats_dict(dev) -> Dict[str, int]:
    return vars(dev.stats()).copy()


def emit(obj) -> None:
    """The result line the host test parses (the last line of stdout)."""
    print(json.dumps(obj), flush=True)


def count_delivered(tx_dev, rx_dev, frame: bytes, n: int = 50, idle: float = 0.3) -> int:
    """Send n copies of frame from tx_dev; how many rx_dev received."""
    sender = Sender(tx_dev, [frame])
    receiver = Receiver(rx_dev)
    try:
        while sender.sent < n:
            sender.send(n)
            receiver.poll()
        receiver.drain(idle=idle, until=n)
        receiver.drain(idle=0.05)        # and nothing beyond
    finally:
        sender.close()
    return receiver.count


def raw_frame(dst: str, src: str, size: int, tag: int, ethertype: int = 0x88B5) -> bytes:
    """A frame of size bytes with a local experimental ethertype and a
    payload that differs with tag and size."""
    head = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + ethertype.to_bytes(2, "big")
    body = bytes((tag * 7 + i * 13 + size) & 0xFF for i in range(size - len(head)))
    return head + body


def rx_raw(dev, want: int, ethertype: int = 0x88B5, timeout: float = 10.0,
           every: Optional[List[bytes]] = None) -> List[bytes]:
    """Frames with ethertype received on queue 0 (others are dropped, or
    kept in every with the wanted ones: all that the NIC counted)."""
    rxq = dev.rx_queue(0)
    batch = PacketBatch(32)
    got: List[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        if rxq.rx(batch):
            for i in range(len(batch)):
                frame = bytes(batch[i])
                if every is not None:
                    every.append(frame)
                if int.from_bytes(frame[12:14], "big") == ethertype:
                    got.append(frame)
            batch.free()
    return got


def tx_raw(dev, frames: Sequence[bytes], timeout: float = 10.0) -> None:
    """Send exactly these frames on queue 0."""
    pool = dev.mempool(4096)
    txq = dev.tx_queue(0)
    batch = PacketBatch(32)
    pending = list(frames)
    deadline = time.monotonic() + timeout
    while (pending or len(batch)) and time.monotonic() < deadline:
        if not len(batch):
            chunk, pending = pending[:32], pending[32:]
            batch.alloc(pool, len(chunk))
            for i, frame in enumerate(chunk):
                batch.write(i, frame)
        txq.tx(batch)
    batch.free()


# --- scenarios: one guest script, each scenario isolated ---------------------

def run_scenarios(scenarios: Dict[str, str], script_globals: dict) -> Dict[str, dict]:
    """Run each scenario's code in a copy of the script's globals (the NICs'
    addresses and MACs, the imports); its `out` is its result, or the
    traceback of what it raised, and the next one runs all the same."""
    results: Dict[str, dict] = {}
    for name, code in scenarios.items():
        t = time.perf_counter()
        namespace = dict(script_globals)
        try:
            exec(compile(code, f"<scenario {name}>", "exec"), namespace)
            results[name] = namespace["out"]
        except BaseException:
            results[name] = {"error": traceback.format_exc()}
        results[name]["seconds"] = round(time.perf_counter() - t, 2)
        del namespace
        gc.collect()        # the scenario's pools and devices: their hugepages back for the next one
        print(name, results[name], flush=True)
    return results


# --- frames between ixypy and a Linux interface, byte for byte ---------------

SIZES = [60, 61, 64, 127, 128, 255, 512, 1000, 1513, 1514] * 3


def wait_carrier(ifname: str, timeout: float = 10.0) -> str:
    """The interface's carrier ("1" once the link is up), after at most timeout seconds."""
    def carrier() -> str:
        with open(f"/sys/class/net/{ifname}/carrier") as f:
            return f.read().strip()
    deadline = time.monotonic() + timeout
    while carrier() != "1" and time.monotonic() < deadline:
        time.sleep(0.05)
    return carrier()


def raw_socket(ifname: str, ethertype: int = 0x88B5, timeout: float = 5.0) -> socket.socket:
    """An AF_PACKET socket on ifname for raw_frame()'s ethertype."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    s.bind((ifname, ethertype))
    s.settimeout(timeout)
    return s


def recv_all(s: socket.socket, n: int) -> List[bytes]:
    """Up to n frames from the socket, until its timeout passes without one."""
    got: List[bytes] = []
    try:
        while len(got) < n:
            got.append(s.recv(2048))
    except socket.timeout:
        pass
    return got


def exchange(dev, s: socket.socket, peer_mac: str, flush: bool = False,
             every: Optional[List[bytes]] = None) -> Tuple[List, List]:
    """SIZES frames from ixypy's dev to the socket's interface (peer_mac),
    then as many back, each side's frames compared with what was sent:
    ([sent, received, same], [sent, received, same]). flush: wait for the
    NIC to take the frames before reading the socket; every: as rx_raw's."""
    out = [raw_frame(peer_mac, dev.mac, size, i) for i, size in enumerate(SIZES)]
    tx_raw(dev, out)
    if flush:
        dev.flush_tx()
    got = recv_all(s, len(out))
    there = [len(out), len(got), got == out]
    back = [raw_frame(dev.mac, peer_mac, size, 100 + i) for i, size in enumerate(SIZES)]
    for frame in back:
        s.send(frame)
    got = rx_raw(dev, len(back), every=every)
    return there, [len(back), len(got), got == back]


def exchange_with_linux(kernel_addr: str, kernel_mac: str, kernel_driver: str, addr: str) -> Dict:
    """kernel_addr with Linux's kernel_driver, its interface up; addr
    opened by ixypy over VFIO (promiscuous off), on the same hub: exchange()
    between the two, then the interface down again."""
    import ixypy
    kernel = pci.PciDevice(kernel_addr)
    if kernel.driver != kernel_driver:
        kernel.release()
    (ifname,) = os.listdir(f"/sys/bus/pci/devices/{kernel_addr}/net")
    subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=True)
    out: Dict = {"kernel_driver": kernel.driver}
    try:
        with ixypy.open(addr, method="vfio", promisc=False) as dev:
            wait_carrier(ifname)
            s = raw_socket(ifname)
            out["to_kernel"], out["to_user"] = exchange(dev, s, kernel_mac)
            out["stats"] = stats_dict(dev)
    finally:
        subprocess.run(["ip", "link", "set", "dev", ifname, "down"])
    return out


# --- the `ixypy` command, each run its own process ----------------------------

def ixypy_cli(*args: str) -> subprocess.Popen:
    """`python -m ixypy ARGS` started, its stdout and stderr piped (text)."""
    import sys
    return subprocess.Popen([sys.executable, "-m", "ixypy", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def summaries(stdout: str) -> Dict[str, dict]:
    """A --json run's summary lines, by device address."""
    return {d["device"]: d for d in map(json.loads, stdout.splitlines()) if d.get("summary")}


def pcap_frames(path: str) -> List[bytes]:
    """The frames of a pcap file (ixypy capture's: little-endian headers)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    frames, at = [], 24
    while at < len(data):
        length = struct.unpack_from("<I", data, at + 8)[0]
        frames.append(data[at + 16:at + 16 + length])
        at += 16 + length
    return frames
