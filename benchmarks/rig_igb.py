"""The igb benchmark rig: two ports of the 82576 variant of the device
model, one wired to a sink (tx), one to a source filling rx at full speed
(rx, and fwd's input); and open_ports, the same two ports for ixy's
forwarder (model_rig.ports_on)."""
from __future__ import annotations

from ixypy.drivers.igb import IgbDevice

from model_rig import Ports, Rig, open_model_ports, open_model_rig


def open_rig(threaded: bool, ring: int = 512) -> Rig:
    """threaded: the model's worker busy-polls (wall-clock Mpps); otherwise
    it is stopped after bring-up and runs in the caller's thread through
    rig.poll / rig.hook (callgrind)."""
    return open_model_rig(IgbDevice, "82576", threaded, ring)


def open_ports(threaded: bool, ring: int = 512) -> Ports:
    """Two 82576 model ports for ixy's forwarder (model_rig.ports_on); threaded as open_rig."""
    return open_model_ports(IgbDevice, "82576", threaded, ring)
