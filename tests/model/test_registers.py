"""Model registers: PCI config, reset, link, strictness rules on registers."""
import time

from .conftest import (AUTOC, AUTOC_LMS_10G_SERIAL, AUTOC_RESTART_AN, BAM, CTRL, CTRL_LRST,
                      CTRL_RST, DMATXCTL, DTXMXSZRQ, EEC, EEC_ARD, EIMC, EIMS, ENABLE, FCTRL,
                      HLREG0, HLREG0_RXCRCSTRP, HLREG0_TXCRCEN, LINKS, LINKS_UP, MAC0, RAH0, RAL0,
                      RDBAL, RDLEN, RDRXCTL, RDRXCTL_DMAIDONE, RDRXCTL_GOOD, RDT, RXCTRL,
                      RXDCTL, RXEN, SRRCTL, SRRCTL_DESCTYPE_ADV_ONEBUF, TDBAL, TDLEN, TDT, TE,
                      TXDCTL, UPE, Nic, wait_until)
from ixypy.sim._model import IntelModel


def test_pci_ids_and_bus_master(sim):
    p = sim.function(0)
    assert p.config_read(0, 2) == 0x8086
    assert p.config_read(2, 2) == 0x10FB
    assert p.config_read(8, 4) >> 8 == 0x020000
    assert not p.config_read(4, 2) & 4
    p.config_write(4, 2, 0x6)
    assert p.config_read(4, 2) & 4
    assert p.errors() == []


def test_mac_in_ral_rah_and_second_port(sim):
    p0, p1 = sim.function(0), sim.function(1)
    assert p0.read32(RAL0) == int.from_bytes(MAC0[:4], "little")
    rah = p0.read32(RAH0)
    assert rah >> 31 == 1 and rah & 0xFFFF == int.from_bytes(MAC0[4:], "little")
    assert p1.read32(RAH0) & 0xFFFF == 0x1100


def test_reset_self_clears_and_reports_done(nic0):
    p = nic0.function
    p.write32(FCTRL, BAM)
    p.clear_events()
    t0 = time.monotonic()
    p.write32(CTRL, CTRL_RST | CTRL_LRST)
    ctrl, eec, rdrx = p.read32(CTRL), p.read32(EEC), p.read32(RDRXCTL)
    if time.monotonic() - t0 < 0.0005:       # well inside the ~1 ms reset
        assert ctrl & CTRL_RST
        assert not eec & EEC_ARD
        assert not rdrx & RDRXCTL_DMAIDONE
    wait_until(lambda: not p.read32(CTRL) & CTRL_RST, what="RST self-clear")
    assert p.read32(EEC) & EEC_ARD
    assert p.read32(RDRXCTL) & RDRXCTL_DMAIDONE
    assert p.read32(EEC) & EEC_ARD
    assert p.read32(FCTRL) == 0                      # back to default
    assert p.read32(RAH0) >> 31 == 1                 # MAC reloaded
    assert p.events() == ["CTRL.RST", "EEC.ARD", "RDRXCTL.DMAIDONE"]
    assert p.errors() == []


def test_write_during_reset_is_an_error(sim):
    p = sim.function(0)
    p.write32(CTRL, CTRL_RST)
    t0 = time.monotonic()
    p.write32(FCTRL, BAM)
    if time.monotonic() - t0 < 0.0005:
        assert any("while CTRL.RST is in progress" in e for e in p.errors())
    wait_until(lambda: not p.read32(CTRL) & CTRL_RST)
    assert p.read32(FCTRL) in (0, BAM)


def test_link_comes_up_after_delay(sim):
    p = sim.function(0)
    p.set_link_delay(30000)
    assert not p.read32(LINKS) & LINKS_UP
    t0 = time.monotonic()
    p.write32(AUTOC, AUTOC_LMS_10G_SERIAL | AUTOC_RESTART_AN)
    assert not p.read32(AUTOC) & AUTOC_RESTART_AN     # self-clearing
    early = p.read32(LINKS)
    if time.monotonic() - t0 < 0.02:
        assert not early & LINKS_UP
    links = wait_until(lambda: p.read32(LINKS) & LINKS_UP and p.read32(LINKS), what="link")
    assert time.monotonic() - t0 >= 0.03
    assert (links >> 28) & 3 == 3                     # 10 Gb/s
    assert p.events() == ["AUTOC.RESTART_AN", "LINKS.LINK_UP"]


def test_link_never_up(sim):
    p = sim.function(0)
    p.set_link_delay(-1)
    p.write32(AUTOC, AUTOC_LMS_10G_SERIAL | AUTOC_RESTART_AN)
    end = time.monotonic() + 0.05
    while time.monotonic() < end:
        assert not p.read32(LINKS) & LINKS_UP
        time.sleep(0.002)


def test_eimc_bit31_reserved(sim):
    p = sim.function(0)
    p.write32(EIMS, 0x7FFFFFFF)
    p.write32(EIMC, 0x7FFFFFFF)
    assert p.errors() == []
    assert p.read32(EIMS) == 0
    p.write32(EIMC, 0xFFFFFFFF)
    assert any("EIMC bit 31 is reserved" in e for e in p.errors())


def test_dtxmxszrq_reserved_bits(sim):
    p = sim.function(0)
    p.write32(DTXMXSZRQ, 0xFFF)
    assert p.errors() == [] and p.read32(DTXMXSZRQ) == 0xFFF
    p.write32(DTXMXSZRQ, 0xFFFF)
    assert any("DTXMXSZRQ bits 15:12" in e for e in p.errors())


def test_rxen_refused_with_default_rdrxctl(sim):
    p = sim.function(0)
    p.write32(RXCTRL, RXEN)
    assert not p.read32(RXCTRL) & RXEN
    assert any("RSCFRSTSIZE" in e for e in p.errors())
    p.clear_errors()
    p.write32(RDRXCTL, RDRXCTL_GOOD & ~(1 << 26))   # FCOE_WRFIX missing
    p.write32(RXCTRL, RXEN)
    assert not p.read32(RXCTRL) & RXEN
    assert any("FCOE_WRFIX must be 1" in e for e in p.errors())
    p.clear_errors()
    p.write32(RDRXCTL, RDRXCTL_GOOD)
    p.write32(HLREG0, HLREG0_TXCRCEN | HLREG0_RXCRCSTRP)
    p.write32(RXCTRL, RXEN)
    assert p.read32(RXCTRL) & RXEN
    assert p.errors() == []
    assert "RXCTRL.RXEN" in p.events()
    p.write32(RDRXCTL, RDRXCTL_GOOD | (8 << 17))   # violating while rx is enabled
    assert any("RDRXCTL written while RXCTRL.RXEN is 1" in e for e in p.errors())


def test_fctrl_change_only_while_rx_disabled(sim):
    p = sim.function(0)
    p.write32(RDRXCTL, RDRXCTL_GOOD)
    p.write32(FCTRL, BAM | UPE)                     # rx off: fine
    assert p.read32(FCTRL) == BAM | UPE
    p.write32(RXCTRL, RXEN)
    p.write32(FCTRL, BAM | UPE)                     # unchanged value: fine
    assert p.errors() == []
    p.write32(FCTRL, BAM)
    assert p.read32(FCTRL) == BAM | UPE
    assert any("FCTRL changed" in e and "RXEN is 1" in e for e in p.errors())
    p.clear_errors()
    p.write32(RXCTRL, 0)
    p.write32(FCTRL, BAM)
    p.write32(RXCTRL, RXEN)
    assert p.read32(FCTRL) == BAM and p.errors() == []
    assert p.events() == ["FCTRL.UPE=1", "RXCTRL.RXEN", "FCTRL.UPE=0", "RXCTRL.RXEN"]


def test_rx_queue_enable_refused_without_ring(nic0):
    p = nic0.function
    p.write32(SRRCTL(0), SRRCTL_DESCTYPE_ADV_ONEBUF | 2)
    p.write32(RXDCTL(0), ENABLE)
    assert not p.read32(RXDCTL(0)) & ENABLE
    assert "RXDCTL[0].ENABLE set while RDLEN[0] is 0" in p.errors()


def test_rx_queue_enable_refused_ring_not_mapped(nic0):
    p = nic0.function
    p.write32(SRRCTL(3), SRRCTL_DESCTYPE_ADV_ONEBUF | 2)
    p.write32(RDBAL(3), 0x1000)                     # nothing mapped there
    p.write32(RDLEN(3), 1024)
    p.write32(RXDCTL(3), ENABLE)
    assert not p.read32(RXDCTL(3)) & ENABLE
    assert any(e.startswith("RXDCTL[3].ENABLE") and "outside the DMA map" in e for e in p.errors())


def test_rx_queue_enable_refused_bad_len_align_desctype(nic0, mem):
    p = nic0.function
    ring = mem.alloc(4096)
    p.write32(RDBAL(0), ring & 0xFFFFFFFF)
    p.write32(RDBAL(0) + 4, ring >> 32)
    p.write32(RDLEN(0), 1000)
    p.write32(RXDCTL(0), ENABLE)
    assert any("not a multiple of 128" in e for e in p.errors())
    p.write32(RDLEN(0), 1024)
    p.write32(RDBAL(0), (ring + 64) & 0xFFFFFFFF)
    p.write32(RXDCTL(0), ENABLE)
    assert any("not 128-byte aligned" in e for e in p.errors())
    p.write32(RDBAL(0), ring & 0xFFFFFFFF)
    p.write32(RXDCTL(0), ENABLE)                    # SRRCTL still legacy
    assert any("DESCTYPE" in e for e in p.errors())
    assert not p.read32(RXDCTL(0)) & ENABLE
    p.clear_errors()
    p.write32(SRRCTL(0), SRRCTL_DESCTYPE_ADV_ONEBUF | 2)
    p.write32(RXDCTL(0), ENABLE)
    assert p.read32(RXDCTL(0)) & ENABLE
    assert p.errors() == [] and p.events() == ["RXDCTL[0].ENABLE"]


def test_tx_queue_enable_needs_te_first(nic0, mem):
    p = nic0.function
    ring = mem.alloc(1024)
    p.write32(TDBAL(0), ring & 0xFFFFFFFF)
    p.write32(TDBAL(0) + 4, ring >> 32)
    p.write32(TDLEN(0), 1024)
    p.write32(TXDCTL(0), ENABLE)
    assert not p.read32(TXDCTL(0)) & ENABLE
    assert "TXDCTL[0].ENABLE set while DMATXCTL.TE is 0" in p.errors()
    p.clear_errors()
    p.write32(DMATXCTL, TE)
    p.write32(TXDCTL(0), ENABLE)
    assert p.read32(TXDCTL(0)) & ENABLE
    assert p.errors() == []
    assert p.events() == ["DMATXCTL.TE", "TXDCTL[0].ENABLE"]


def test_tx_queue_enable_refused_without_ring(nic0):
    p = nic0.function
    p.write32(DMATXCTL, TE)
    p.write32(TXDCTL(5), ENABLE)
    assert not p.read32(TXDCTL(5)) & ENABLE
    assert "TXDCTL[5].ENABLE set while TDLEN[5] is 0" in p.errors()


def test_tail_beyond_ring(nic0):
    nic0.up()
    p = nic0.function
    p.clear_errors()
    rdt = p.read32(RDT(0))
    p.write32(RDT(0), 64)
    assert p.read32(RDT(0)) == rdt
    assert "RDT[0]=64 written beyond the ring of 64 descriptors (ignored)" in p.errors()
    p.write32(TDT(0), 100)
    assert p.read32(TDT(0)) == 0
    assert any(e.startswith("TDT[0]=100") for e in p.errors())


def test_full_bring_up_has_no_errors_and_ordered_events(nic0):
    nic0.up()
    p = nic0.function
    assert p.errors() == []
    assert p.events() == ["CTRL.RST", "EEC.ARD", "RDRXCTL.DMAIDONE", "AUTOC.RESTART_AN",
                          "LINKS.LINK_UP", "RXDCTL[0].ENABLE", "RXCTRL.RXEN", "DMATXCTL.TE",
                          "TXDCTL[0].ENABLE"]


def test_reg_ops_capsule_with_fastpath_bar(sim):
    from ixypy.fastpath.regs import Bar
    fn = sim.function(0)
    bar = Bar(ops=fn.reg_ops(), keepalive=fn)
    assert bar.read32(RAH0) == fn.read32(RAH0)
    bar.write32(FCTRL, BAM)
    assert fn.read32(FCTRL) == BAM


def test_close_is_idempotent_and_dealloc_while_running():
    s = IntelModel(1)
    s.start()
    s.close()
    s.close()
    s2 = IntelModel(2)
    s2.start()
    del s2
