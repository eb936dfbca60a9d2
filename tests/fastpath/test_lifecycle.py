"""A device that loses its last reference without close() stops its DMA and
is released, whatever the object graph (the device's module docstring)."""
from __future__ import annotations

import gc

import pytest

import ixypy

PCI_COMMAND, BME = 4, 0x4


@pytest.mark.parametrize("prefix", ["", "igb-"])
@pytest.mark.parametrize("graph", ["refcount", "cycle"])
def test_dropped_device_stops_dma_and_can_be_opened_again(prefix, graph):
    """One end of a cabled pair is dropped while the other end stays open
    (so the model, and the dropped end's COMMAND register, stay readable)."""
    with ixypy.open(f"sim:{prefix}pair1") as peer:
        dev = ixypy.open(f"sim:{prefix}pair0")
        function = dev.bus.function
        assert function.config_read(PCI_COMMAND, 2) & BME
        if graph == "cycle":
            dev.myself = dev                 # only the cycle collector can free it
        del dev
        if graph == "cycle":
            assert function.config_read(PCI_COMMAND, 2) & BME    # not collected yet
        gc.collect()
        assert not function.config_read(PCI_COMMAND, 2) & BME
        ixypy.open(f"sim:{prefix}pair0").close()     # released: no DeviceBusy
        assert peer.stats() is not None


def test_closed_device_is_not_stopped_again():
    """After close() the finaliser is gone: collecting the device must not
    touch a bus that may serve another device by then."""
    dev = ixypy.open("sim:sink")
    dev.close()
    assert not dev._finalizer.alive
    del dev
    gc.collect()
