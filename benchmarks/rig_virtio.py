"""The legacy virtio-net benchmark rig: the virtio driver on the virtio-net
device model (csrc/sim/virtio_model.c), as rig_ixgbe.py sets up ixgbe on
the 82599 model; the same Rig.

One model with two devices: the tx device wired to a sink, the rx device to
a source of 60-byte UDP frames with sequence numbers. threaded=True: the
model's worker busy-polls on its own thread (wall-clock Mpps; it also sets
VRING_USED_F_NO_NOTIFY, so the driver skips notifies as with QEMU busy on
the queue). threaded=False: the worker is stopped after bring-up and the
model runs only through `poll` / `hook` in the driver's thread
(deterministic instruction counts; the driver notifies once per batch).
open_ports: the two devices as ports a and b of ixy's forwarder
(model_rig.ports_on).
"""
from __future__ import annotations

from ixypy.drivers.virtio import VirtioDevice
from ixypy.sim.virtio import VirtioSimBus, new_virtio_model
from model_rig import Ports, Rig, ports_on, rig_on


def open_rig(threaded: bool, ring: int = 512) -> Rig:
    """ring: the size of the rx and tx virtqueues (QUEUE_NUM; each packet
    takes two descriptors, so a ring of 512 holds 256 packets)."""
    model = new_virtio_model(2, queue_num=ring, busy_poll=threaded)

    def open_device(dev, wire: str) -> VirtioDevice:
        return VirtioDevice(VirtioSimBus(f"sim:vbench-{wire}", model, dev, wire, owns_sim=False))

    return rig_on(model, (model.device(0), model.device(1)), open_device, threaded)


def open_ports(threaded: bool, ring: int = 512) -> Ports:
    """Two virtio-net model devices for ixy's forwarder; ring and threaded as open_rig."""
    model = new_virtio_model(2, queue_num=ring, busy_poll=threaded)

    def open_device(dev, name: str) -> VirtioDevice:
        return VirtioDevice(VirtioSimBus(f"sim:vbench-{name}", model, dev, "source", owns_sim=False))

    return ports_on(model, (model.device(0), model.device(1)), open_device, threaded)
