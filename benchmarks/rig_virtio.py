"""The legacy virtio-net benchmark rig: the virtio driver on the virtio-net
device model (csrc/sim/virtio_model.c), as benchmarks/conftest.py's
open_ports and instructions.py's child() set up ixgbe on the 82599 model.

One model with two devices: the tx device wired to a sink, the rx device to
a source of 60-byte UDP frames with sequence numbers. threaded=True: the
model's worker busy-polls on its own thread (wall-clock Mpps; it also sets
VRING_USED_F_NO_NOTIFY, so the driver skips notifies as with QEMU busy on
the queue). threaded=False: the worker is stopped after bring-up and the
model runs only through `poll` / `hook` in the driver's thread
(deterministic instruction counts; the driver notifies once per batch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ixypy import Mempool
from ixypy.drivers.virtio import VirtioDevice
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.sim import close_model, source_frame
from ixypy.sim.virtio import VirtioSimBus, new_virtio_model


def nothing() -> None:
    """poll() while the worker runs: it does the work."""


@dataclass
class Rig:
    txq: Any                  # VirtioTxQueue of the device wired to a sink
    rxq: Any                  # VirtioRxQueue of the device wired to a source
    pool: Mempool             # 4096 buffers from the tx device, udp_frame() in each
    poll: Callable[[], Any]   # one model pass in this thread (no-op when threaded)
    hook: Optional[object]    # PyCapsule "ixypy.poll_hook" when not threaded
    close: Callable[[], None]


def open_rig(threaded: bool, ring: int = 512) -> Rig:
    """ring: the size of the rx and tx virtqueues (QUEUE_NUM; each packet
    takes two descriptors, so a ring of 512 holds 256 packets)."""
    model = new_virtio_model(2, queue_num=ring, busy_poll=threaded)
    sink, source = model.device(0), model.device(1)
    sink.wire_sink()
    source.wire_source(source_frame(), 0, SEQ_OFFSET)
    tx = VirtioDevice(VirtioSimBus("sim:vbench-sink", model, sink, "sink", owns_sim=False))
    rx = VirtioDevice(VirtioSimBus("sim:vbench-source", model, source, "source", owns_sim=False))
    if not threaded:
        model.stop()
    pool = tx.mempool(4096)
    pool.fill(udp_frame())

    def close() -> None:
        tx.close()
        rx.close()
        close_model(model)

    return Rig(txq=tx.tx_queue(0), rxq=rx.rx_queue(0), pool=pool,
               poll=nothing if threaded else model.poll,
               hook=None if threaded else model.poll_hook(), close=close)
