"""Model MSI-X (82599 datasheet 7.3): IVAR mapping, EIMS/EIMC masking,
EIAC auto-clear, EIAM auto-mask, EICS, EITR throttling, strictness.

Every wait is bounded; timing is only asserted through generous bounds."""
import os
import time

import pytest

from .conftest import BCAST, EICR, EIMC, EIMS, MAC1, frame, wait_until

EICS, EIAC, EIAM, GPIE = 0x0808, 0x0810, 0x0890, 0x0898
GPIE_MSIX_MODE, GPIE_EIAME, GPIE_PBA_SUPPORT = 1 << 4, 1 << 30, 1 << 31
GPIE_ON = GPIE_MSIX_MODE | GPIE_PBA_SUPPORT
IVAR_VALID = 0x80
EITR_CNT_WDIS = 1 << 31


def EITR(v): return 0x0820 + 4 * v if v < 24 else 0x12300 + 4 * (v - 24)
def IVAR(n): return 0x0900 + 4 * n
def EIMS_EX(n): return 0x0AA0 + 4 * n
def EIMC_EX(n): return 0x0AB0 + 4 * n
def EICS_EX(n): return 0x0A90 + 4 * n


def eitr_us(us):
    """EITR value for an interval of about us microseconds (2.048 us units, bits 11:3)."""
    return min(int(us / 2.048), 511) << 3


class Efd:
    """A non-blocking eventfd; read() returns the counter (0 when unsignalled)."""

    def __init__(self):
        self.fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def read(self):
        try:
            return os.eventfd_read(self.fd)
        except BlockingIOError:
            return 0

    def close(self):
        os.close(self.fd)


@pytest.fixture
def efds():
    fds = []

    def make():
        fds.append(Efd())
        return fds[-1]
    yield make
    for f in fds:
        f.close()


def irq_up(nic, efd, vector=0, eiac=True, eiam=False, eitr=0):
    """rx queue 0 -> vector, MSI-X mode, eventfd attached; the vector masked."""
    nic.function.set_irq_eventfd(vector, efd.fd)
    nic.up(tx=False)
    nic.w(GPIE, GPIE_ON | (GPIE_EIAME if eiam else 0))
    nic.w(IVAR(0), vector | IVAR_VALID)
    nic.w(EITR(vector), eitr)
    if vector < 16:
        nic.w(EIAC, (1 << vector) if eiac else 0)
        nic.w(EIAM, (1 << vector) if eiam else 0)


def unmask(nic, v):
    if v < 16:
        nic.w(EIMS, 1 << v)
    else:
        nic.w(EIMS_EX(v // 32), 1 << (v % 32))


def test_rx_write_back_signals_the_mapped_vector(sim, nic0, efds):
    e3, e0 = efds(), efds()
    nic0.function.set_irq_eventfd(0, e0.fd)
    irq_up(nic0, e3, vector=3)
    unmask(nic0, 3)
    assert nic0.function.inject(frame(BCAST))
    assert e3.read() == 1                     # sent at write-back, from the injecting thread
    assert e0.read() == 0 and nic0.function.irq_count(0) == 0
    assert nic0.r(EICR) & (1 << 3) == 0       # EIAC: auto-cleared when sent
    assert nic0.recv() and nic0.function.errors() == []


def test_masked_vector_keeps_its_cause_and_fires_on_unmask(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=2)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    assert nic0.r(EICR) & (1 << 2)            # cause kept; MSI-X mode: the read does not clear
    assert nic0.r(EICR) & (1 << 2)
    unmask(nic0, 2)
    assert e.read() == 1
    nic0.w(EIMC, 1 << 2)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    nic0.w(EICR, 1 << 2)                      # write 1 to clear: unmasking now sends nothing
    unmask(nic0, 2)
    assert e.read() == 0
    assert nic0.function.errors() == []


def test_auto_mask_with_eiame(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=1, eiam=True)
    unmask(nic0, 1)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 1
    assert nic0.r(EIMS) & (1 << 1) == 0       # EIAM + GPIE.EIAME: masked when sent
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    unmask(nic0, 1)                           # the second cause was kept
    assert e.read() == 1
    assert nic0.function.errors() == []


def test_without_auto_clear_the_cause_stays_until_written(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=4, eiac=False)
    unmask(nic0, 4)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 1
    assert nic0.r(EICR) & (1 << 4)
    nic0.w(EICR, 1 << 4)
    assert nic0.r(EICR) & (1 << 4) == 0
    assert nic0.function.errors() == []


def test_eics_and_extended_vectors(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=40)
    nic0.w(EICS_EX(1), 1 << 8)                # vector 40 raised by software, still masked
    assert e.read() == 0
    unmask(nic0, 40)
    assert e.read() == 1
    nic0.function.inject(frame(BCAST))            # rx -> vector 40 (always auto-clear above 15)
    assert e.read() == 1
    nic0.w(EIMC_EX(1), 1 << 8)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    assert nic0.function.errors() == []


def test_tx_cause(sim, nic0, nic1, efds):
    e = efds()
    sim.function(0).wire_pair(sim.function(1))
    nic0.function.set_irq_eventfd(5, e.fd)
    nic0.up(rx=False)
    nic1.up(tx=False)
    nic0.w(GPIE, GPIE_ON)
    nic0.w(IVAR(0), (5 | IVAR_VALID) << 8)    # tx queue 0 -> vector 5
    nic0.w(EIAC, 1 << 5)
    nic0.w(EIMS, 1 << 5)
    nic0.send([frame(MAC1)])
    wait_until(lambda: nic0.function.irq_count(5) >= 1, 2.0, "tx interrupt")
    assert e.read() >= 1
    assert nic0.function.errors() == [] and nic1.function.errors() == []


def test_no_interrupt_without_msix_mode_or_mapping(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=0)
    unmask(nic0, 0)
    nic0.w(IVAR(0), 0)                        # valid bit clear: no cause
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    nic0.w(IVAR(0), IVAR_VALID)
    nic0.w(GPIE, 0)                           # not in MSI-X mode: nothing is sent
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    assert nic0.function.errors() == []


def burst(nic, n):
    t = time.monotonic()
    for _ in range(n):
        nic.function.inject(frame(BCAST))
        nic.recv()
    return time.monotonic() - t


def test_eitr_throttles_and_fires_the_pending_cause_when_the_interval_ends(sim, nic0, efds):
    e = efds()
    interval = 511 * 2.048e-6                 # the largest EITR, ~1.05 ms
    irq_up(nic0, e, vector=0, eitr=eitr_us(1100))
    unmask(nic0, 0)
    took = burst(nic0, 50)
    wait_until(lambda: not nic0.r(EICR) & 1, 2.0, "the pending cause to be sent")
    n = e.read()
    # the first at once, then at most one per interval (plus the last one pending)
    assert 2 <= n <= 2 + took / interval, (n, took)
    # small interval: every write-back (one per inject) sends
    nic0.w(EITR(0), 0)
    burst(nic0, 50)
    assert e.read() == 50
    assert nic0.function.errors() == []


def test_eitr_write_restarts_the_interval_unless_cnt_wdis(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=0, eitr=eitr_us(1100))
    unmask(nic0, 0)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 1
    nic0.w(EITR(0), eitr_us(1100) | EITR_CNT_WDIS)   # counter kept: still throttled
    nic0.function.inject(frame(BCAST))
    assert e.read() == 0
    nic0.w(EITR(0), eitr_us(1100))                   # counter loaded with 0: expires now
    assert e.read() == 1
    assert nic0.function.errors() == []


def test_strictness(sim, nic0, efds):
    nic0.up(tx=False)
    nic0.w(GPIE, GPIE_ON)
    assert any("GPIE.MSIX_MODE set while no MSI-X vector has an eventfd" in x for x in nic0.function.errors())
    nic0.function.clear_errors()
    e = efds()
    nic0.function.set_irq_eventfd(0, e.fd)
    nic0.w(GPIE, 0)
    nic0.w(GPIE, GPIE_MSIX_MODE)
    assert any("PBA_SUPPORT" in x for x in nic0.function.errors())
    nic0.function.clear_errors()
    nic0.w(IVAR(0), 0x40 | IVAR_VALID)
    nic0.w(EITR(0), 0x7)
    errs = nic0.function.errors()
    assert any("IVAR[0]" in x and "reserved" in x for x in errs)
    assert any("EITR[0]" in x and "reserved" in x for x in errs)
    nic0.function.clear_errors()
    nic0.w(EIMS, 1 << 1)                      # vector 1 has no eventfd
    assert any("unmasks MSI-X vector 1" in x for x in nic0.function.errors())
    nic0.function.clear_errors()
    nic0.w(IVAR(0), 1 | IVAR_VALID)
    nic0.function.inject(frame(BCAST))
    assert any("vector 1 fired with no eventfd attached" in x for x in nic0.function.errors())
    nic0.function.clear_errors()
    nic0.w(EIMC, 0x7FFFFFFF)
    assert nic0.function.errors() == []


def test_detach_and_reset(sim, nic0, efds):
    e = efds()
    irq_up(nic0, e, vector=0)
    unmask(nic0, 0)
    nic0.function.inject(frame(BCAST))
    assert e.read() == 1
    nic0.reset()                               # registers to defaults: no mapping, masked
    assert nic0.r(EIMS) == 0 and nic0.r(GPIE) == 0 and nic0.r(IVAR(0)) == 0
    nic0.function.set_irq_eventfd(0, -1)
    with pytest.raises(OSError):
        nic0.function.set_irq_eventfd(64, e.fd)
    assert nic0.function.errors() == []
