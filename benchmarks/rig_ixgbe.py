"""The ixgbe benchmark rig: two 82599 model ports, one wired to a sink
(tx), one to a source filling rx at full speed (rx, and fwd's input); and
open_ports, the same two ports for ixy's forwarder (model_rig.ports_on)."""
from __future__ import annotations

from ixypy.drivers.ixgbe import IxgbeDevice

from model_rig import Ports, Rig, open_model_ports, open_model_rig


def open_rig(threaded: bool, ring: int = 512) -> Rig:
    """threaded: the model's worker busy-polls on the other core (wall-clock
    Mpps). Otherwise the worker is stopped after bring-up and the model runs
    only when the driver stalls, in its thread (deterministic counts)."""
    return open_model_rig(IxgbeDevice, "82599", threaded, ring)


def open_ports(threaded: bool, ring: int = 512) -> Ports:
    """Two 82599 model ports for ixy's forwarder (model_rig.ports_on); threaded as open_rig."""
    return open_model_ports(IxgbeDevice, "82599", threaded, ring)
