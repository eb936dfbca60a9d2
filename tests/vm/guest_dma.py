"""Guest-side helper for the tests that kill a process driving a NIC (imported
by scripts run in the guest): does the NIC's DMA stop, with nothing left of
the process to stop it?

A sender process transmits on NIC `a` (bound as `method`) towards NIC `b`,
which this process receives on. Once frames arrive, the sender dies (SIGKILL,
or a segfault in the middle of sending); then NIC a's COMMAND register is
read until Bus Master Enable is 0 (the UIO guard's work, or the kernel's
reset of a VFIO device whose last file closed), and b counts what still
arrives after that (past 0.2 s for frames that left a before BME cleared:
under TCG a frame takes that long from one NIC of the hub to the other).

Clearing BME stops both models: QEMU's igb refuses DMA without it, and
virtio-pci disables a device whose BME is cleared (it drops DRIVER_OK)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from ixypy import PacketBatch
from ixypy.pci import PCI_COMMAND, PCI_COMMAND_MASTER, PciDevice

SENDER = """
import ctypes, sys, threading, time
import ixypy
from ixypy import apps
from ixypy.packets import udp_frame
dev = ixypy.open(sys.argv[1])
t = threading.Thread(target=apps.pktgen, args=(dev, [udp_frame(60)], apps.Limits(duration=120.0)),
                     kwargs=dict(rate_pps=20000.0), daemon=True)
t.start()
print("sending", flush=True)
if sys.argv[2] == "segfault":
    time.sleep(3.0)
    ctypes.string_at(0)
time.sleep(120.0)
"""


def count_for(rx, seconds: float) -> int:
    batch, n = PacketBatch(64), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n += rx.rx_batch(0, batch)
        batch.free()
    return n


def drain(rx) -> int:
    """What already reached b's ring."""
    batch, n = PacketBatch(64), 0
    while got := rx.rx_batch(0, batch):
        n += got
        batch.free()
    return n


def bus_master(address: str) -> bool:
    return bool(PciDevice(address).config_read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER)


def kill_sender(a: str, rx, method: str, death: str) -> dict:
    """death: "SIGKILL" or "segfault". Returns what happened, for the host
    to assert on: frames before the death, seconds until BME read 0 (None
    if it did not within 5 s), frames b received in the 2 s after that."""
    bind = subprocess.run([sys.executable, "-m", "ixypy.cli", "bind", a, f"--{method}"],
                          capture_output=True, text=True, timeout=60)
    if bind.returncode:
        return {"bind": bind.stdout + bind.stderr}
    drain(rx)
    sender = subprocess.Popen([sys.executable, "-c", SENDER, a, death], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    out = {"started": sender.stdout.readline().strip()}
    before, deadline = 0, time.monotonic() + 30
    while before == 0 and time.monotonic() < deadline:
        before += count_for(rx, 0.2)
    out["bme_while_sending"] = bus_master(a)
    if death == "SIGKILL":
        sender.send_signal(signal.SIGKILL)
    sender.wait(timeout=60)
    died = time.monotonic()
    out["returncode"] = sender.returncode
    out["stderr"] = sender.stderr.read()[-2000:]
    out["before"] = before
    out["bme_cleared_after"] = None
    while time.monotonic() < died + 5.0:
        if not bus_master(a):
            out["bme_cleared_after"] = round(time.monotonic() - died, 3)
            break
        time.sleep(0.01)
    out["in_flight"] = count_for(rx, 0.2)     # left NIC a before BME cleared, still on their way
    out["after"] = count_for(rx, 2.0)
    return out
