"""The benchmark rig for the igb driver: two IgbDevice ports on the 82576
variant of the device model, one wired to a sink, one to a source, as
benchmarks/conftest.py (throughput) and instructions.py (callgrind) set up
the ixgbe ports on the 82599 model.

    rig = open_rig(threaded=True)     # the model's worker busy-polls: wall-clock Mpps
    rig = open_rig(threaded=False)    # the worker stopped after bring-up: the model runs
                                      # in this thread (rig.poll, rig.hook), for callgrind
    ...
    rig.close()
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional

from ixypy import Mempool
from ixypy.drivers.igb import IgbDevice
from ixypy.packets import SEQ_OFFSET, udp_frame
from ixypy.sim import SimBus, close_model, new_model, source_frame
from ixypy.sim._model import Sim

POOL_BUFS = 4096


def _nothing() -> None:
    """poll() while the model's worker runs: nothing to do in this thread."""


@dataclass
class Rig:
    """txq: tx queue 0 of the port wired to a sink; rxq: rx queue 0 of the
    port wired to a source (frames numbered at SEQ_OFFSET, as
    sim.source_frame() is); pool: POOL_BUFS buffers of the tx port filled
    with udp_frame(); poll: one pass of the model in this thread (a no-op
    when threaded); hook: Sim.poll_hook() for the queues' bench_* loops
    (None when threaded)."""

    txq: Any
    rxq: Any
    pool: Mempool
    poll: Callable[[], Any]
    hook: Optional[object]
    sim: Sim
    devices: List[IgbDevice] = field(default_factory=list)

    def close(self) -> None:
        for dev in self.devices:
            dev.close()
        close_model(self.sim)


def open_rig(threaded: bool, ring: int = 512) -> Rig:
    sim = new_model(2, busy_poll=threaded, variant="82576")
    sink, source = sim.port(0), sim.port(1)
    sink.wire_sink()
    source.wire_source(source_frame(), 0, SEQ_OFFSET)
    devices: List[IgbDevice] = []
    try:
        for port, wire in ((sink, "sink"), (source, "source")):
            bus = SimBus(f"sim:igb-bench-{wire}", sim, port, wire, owns_sim=False)
            devices.append(IgbDevice(bus, num_rx_desc=ring, num_tx_desc=ring))
    except BaseException:
        for dev in devices:
            dev.close()
        close_model(sim)
        raise
    tx, rx = devices
    pool = tx.mempool(POOL_BUFS)
    pool.fill(udp_frame())
    if threaded:
        poll, hook = _nothing, None
    else:
        sim.stop()                           # from here on the model runs only in poll()
        poll, hook = sim.poll, sim.poll_hook()
    return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, poll, hook, sim, devices)
