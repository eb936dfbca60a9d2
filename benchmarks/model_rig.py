"""What the benchmark rigs share (rig_ixgbe, rig_igb, rig_virtio): two
devices of one model, one wired to a sink (tx), one to a source filling rx
at full speed (rx, and fwd's input), each opened by the driver under test."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from ixypy import Mempool
from ixypy.device import Device
from ixypy.packets import udp_frame
from ixypy.sim import SimBus, close_model, connect, new_intel_model
from loops import nothing


@dataclass
class Rig:
    """What a benchmark needs: the queues, a filled tx pool, and the model's
    pass for the deterministic mode (poll: from Python; hook: from C)."""

    txq: object
    rxq: object
    pool: Mempool
    poll: Callable[[], object]
    hook: Optional[object]
    close: Callable[[], None]


def rig_on(model, ends: tuple, open_device: Callable[[object, str], Device], threaded: bool) -> Rig:
    """A rig on `model` (any device model: IntelModel, VirtioSim): ends[0] wired
    to a sink, ends[1] to a source, each opened by open_device(end, wire).
    threaded: the model's worker busy-polls on the other core (wall-clock
    Mpps). Otherwise the worker is stopped after bring-up and the model runs
    only when the driver stalls, in its thread (deterministic counts)."""
    sink, source = ends
    devices: List[Device] = []

    def close() -> None:
        for dev in devices:
            dev.close()
        close_model(model)

    try:
        for end, wire in ((sink, "sink"), (source, "source")):
            connect(end, wire)
            devices.append(open_device(end, wire))
    except BaseException:
        close()
        raise
    tx, rx = devices
    pool = tx.mempool(4096)
    pool.fill(udp_frame())
    if threaded:
        return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, nothing, None, close)
    model.stop()
    return Rig(tx.tx_queue(0), rx.rx_queue(0), pool, model.poll, model.poll_hook(), close)


def open_model_rig(driver: Callable[..., Device], variant: str, threaded: bool, ring: int) -> Rig:
    """driver's queues on two functions (ports) of a `variant` Intel model ("82599", "82576")."""
    sim = new_intel_model(2, busy_poll=threaded, variant=variant)

    def open_function(function, wire: str) -> Device:
        return driver(SimBus(f"sim:bench-{wire}", sim, function, wire, owns_sim=False),
                      num_rx_desc=ring, num_tx_desc=ring)

    return rig_on(sim, (sim.function(0), sim.function(1)), open_function, threaded)
