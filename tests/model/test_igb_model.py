"""The 82576 variant of the model, through its registers only (82576
datasheet, chapter 8): PCI id, reset, the copper PHY behind MDIC and the
link, the queue register map (and its 82575-compatible aliases), rx/tx
through RCTL/TCTL, statistics, MSI-X registers, and the strictness rules,
each recorded in the error log."""
import pytest

from ixypy.sim._model import IntelModel

from .conftest import frame, wait_until

CTRL, STATUS, EECD, MDIC = 0x0000, 0x0008, 0x0010, 0x0020
CTRL_SLU, CTRL_RST = 1 << 6, 1 << 26
STATUS_LU, STATUS_SPEED_1000 = 1 << 1, 2 << 6
EECD_AUTO_RD = 1 << 9
MDIC_READ, MDIC_WRITE, MDIC_READY, MDIC_ERROR = 2 << 26, 1 << 26, 1 << 28, 1 << 30
BMCR, BMSR, PHYID1 = 0, 1, 2
BMCR_AN_ENABLE, BMCR_AN_RESTART, BMCR_POWER_DOWN = 1 << 12, 1 << 9, 1 << 11
BMSR_AN_DONE, BMSR_LINK = 1 << 5, 1 << 2
RCTL, TCTL = 0x0100, 0x0400
RCTL_EN, RCTL_UPE, RCTL_MPE, RCTL_BAM, RCTL_SECRC = 1 << 1, 1 << 3, 1 << 4, 1 << 15, 1 << 26
TCTL_EN, TCTL_PSP = 1 << 1, 1 << 3
EIMC, EITR0, IVAR0 = 0x1528, 0x1680, 0x1700
RAL0, RAH0 = 0x5400, 0x5404
MPC, GPRC, GPTC, GORCL, GORCH = 0x4010, 0x4074, 0x4080, 0x4088, 0x408C
ENABLE = 1 << 25
SRRCTL_ADV_ONEBUF, SRRCTL_DROP_EN = 1 << 25, 1 << 31
DTYP_DATA, DCMD_EOP, DCMD_IFCS, DCMD_RS, DCMD_DEXT = 0x3 << 20, 1 << 24, 1 << 25, 1 << 27, 1 << 29
MAC0 = b"\x02\x00\x00\x00\x00\x20"
BCAST = b"\xff" * 6


def rxq(n): return 0x0C000 + 0x40 * n           # RDBAL; RDBAH +4, RDLEN +8, SRRCTL +0xC, RDH +0x10, RDT +0x18, RXDCTL +0x28, RQDPC +0x30
def txq(n): return 0x0E000 + 0x40 * n
def rxq_82575(n): return 0x02800 + 0x100 * n   # queues 0..3 only
def txq_82575(n): return 0x03800 + 0x100 * n


class Igb:
    """A minimal register-level 82576 driver of one model function (tests only)."""

    def __init__(self, function, mem):
        self.function, self.mem = function, mem
        self.r, self.w = function.read32, function.write32

    def phy(self, reg, value=None, phy=1):
        op = MDIC_READ if value is None else MDIC_WRITE | value
        self.w(MDIC, op | phy << 21 | reg << 16)
        v = self.r(MDIC)
        assert v & MDIC_READY
        return v

    def up(self, rctl=RCTL_BAM | RCTL_SECRC, n=64):
        self.function.config_write(4, 2, 0x6)
        self.w(CTRL, CTRL_RST)
        wait_until(lambda: not self.r(CTRL) & CTRL_RST, what="CTRL.RST self-clear")
        wait_until(lambda: self.r(EECD) & EECD_AUTO_RD, what="EECD.AUTO_RD")
        self.w(CTRL, CTRL_SLU)
        wait_until(lambda: self.r(STATUS) & STATUS_LU, what="STATUS.LU")
        self.w(RCTL, rctl)
        self.n = n
        self.rx_ring, self.tx_ring = self.mem.alloc(16 * n), self.mem.alloc(16 * n)
        self.rx_bufs = [self.mem.alloc(2048) for _ in range(n)]
        self.tx_bufs = [self.mem.alloc(2048) for _ in range(n)]
        self.ring(rxq(0), self.rx_ring, SRRCTL_ADV_ONEBUF | SRRCTL_DROP_EN | 2)
        for i in range(n):
            self.mem.put("<QQ", self.rx_ring + 16 * i, self.rx_bufs[i], 0)
        self.enable(rxq(0))
        self.w(rxq(0) + 0x18, n - 1)
        self.w(RCTL, rctl | RCTL_EN)
        self.w(TCTL, TCTL_PSP)
        self.ring(txq(0), self.tx_ring)
        self.enable(txq(0))
        self.w(TCTL, TCTL_PSP | TCTL_EN)
        self.rx_next = self.tx_tail = 0

    def ring(self, block, addr, srrctl=None):
        self.w(block, addr & 0xFFFFFFFF)
        self.w(block + 4, addr >> 32)
        self.w(block + 8, 16 * self.n)
        if srrctl is not None:
            self.w(block + 0xC, srrctl)
        self.w(block + 0x10, 0)

    def enable(self, block):
        self.w(block + 0x28, ENABLE)
        assert self.r(block + 0x28) & ENABLE

    def send(self, frames):
        for f in frames:
            i = self.tx_tail
            self.mem.write(self.tx_bufs[i], f)
            self.mem.put("<QII", self.tx_ring + 16 * i, self.tx_bufs[i],
                         len(f) | DTYP_DATA | DCMD_DEXT | DCMD_EOP | DCMD_IFCS | DCMD_RS, len(f) << 14)
            self.tx_tail = (i + 1) % self.n
        self.w(txq_82575(0) + 0x18, self.tx_tail)                 # TDT, through the alias

    def recv(self, want):
        out = []

        def poll():
            while self.mem.u32(self.rx_ring + 16 * self.rx_next + 8) & 1:
                i = self.rx_next
                length = self.mem.u32(self.rx_ring + 16 * i + 12) & 0xFFFF
                out.append(self.mem.read(self.rx_bufs[i], length))
                self.mem.put("<QQ", self.rx_ring + 16 * i, self.rx_bufs[i], 0)
                self.rx_next = (i + 1) % self.n
                self.w(rxq_82575(0) + 0x18, i)                    # RDT, through the alias
            return len(out) >= want

        wait_until(poll, what=f"{want} frames")
        return out


@pytest.fixture
def sim():
    s = IntelModel(2, mac=MAC0, variant="82576")
    s.start()
    yield s
    s.close()


@pytest.fixture
def pair(sim, mem):
    sim.function(0).wire_pair(sim.function(1))
    return Igb(sim.function(0), mem), Igb(sim.function(1), mem)


def test_pci_id_msix_table_and_mac(sim):
    p = sim.function(0)
    assert (p.config_read(0, 2), p.config_read(2, 2)) == (0x8086, 0x10C9)
    assert p.msix_vectors() == 25
    assert p.read32(RAL0) == int.from_bytes(MAC0[:4], "little")
    assert p.read32(RAH0) == 1 << 31 | int.from_bytes(MAC0[4:], "little")
    assert p.read32(0xA200) == 0                                # the 82599's RAL(0) is nothing here
    with pytest.raises(ValueError, match="variant"):
        IntelModel(1, variant="82598")


def test_reset_then_auto_read(sim):
    p = sim.function(0)
    p.write32(CTRL, CTRL_RST)
    assert p.read32(CTRL) & CTRL_RST and not p.read32(EECD) & EECD_AUTO_RD
    wait_until(lambda: not p.read32(CTRL) & CTRL_RST)
    assert p.read32(EECD) & EECD_AUTO_RD
    assert p.events() == ["CTRL.RST", "EECD.AUTO_RD"] and p.errors() == []


def test_link_is_the_phys_passed_on_by_ctrl_slu(sim, mem):
    nic = Igb(sim.function(0), mem)
    p = nic.function
    assert nic.phy(BMSR) & (BMSR_AN_DONE | BMSR_LINK) == BMSR_AN_DONE | BMSR_LINK     # since power-up
    assert not p.read32(STATUS) & STATUS_LU
    assert nic.phy(PHYID1) & 0xFFFF == 0x02A8
    p.write32(CTRL, CTRL_SLU)
    assert p.read32(STATUS) & (STATUS_LU | STATUS_SPEED_1000) == STATUS_LU | STATUS_SPEED_1000
    p.set_link_delay(30_000)
    nic.phy(BMCR, BMCR_AN_ENABLE | BMCR_AN_RESTART)
    assert not p.read32(STATUS) & STATUS_LU                     # renegotiating
    assert not nic.phy(BMCR) & BMCR_AN_RESTART                  # self-clearing
    wait_until(lambda: p.read32(STATUS) & STATUS_LU, what="link after the restart")
    nic.phy(BMCR, BMCR_AN_ENABLE | BMCR_POWER_DOWN)
    assert not p.read32(STATUS) & STATUS_LU and not nic.phy(BMSR) & BMSR_AN_DONE
    assert p.events() == ["STATUS.LU", "BMCR.RESTART_AN", "STATUS.LU"] and p.errors() == []


def test_mdic_to_another_phy_address_sets_the_error_bit(sim, mem):
    nic = Igb(sim.function(0), mem)
    assert nic.phy(BMSR, phy=2) & MDIC_ERROR
    assert any("PHYADD is not 1" in e for e in nic.function.errors())


def test_frames_cross_the_cable_crc_stripped_or_kept(pair):
    a, b = pair
    a.up()
    b.up(rctl=RCTL_BAM)                                         # SECRC clear: the CRC stays in the buffer
    frames = [frame(MAC0[:5] + b"\x21", size=60 + i) for i in range(3)] + [frame(BCAST)]
    a.send(frames)
    got = b.recv(4)
    assert [g[:-4] for g in got] == frames and all(len(g) == len(f) + 4 for g, f in zip(got, frames))
    b.function.clear_events()
    b.function.write32(RCTL, RCTL_EN | RCTL_SECRC)                  # BAM off while rx runs: allowed on the 82576
    a.send([frame(BCAST), frame(MAC0[:5] + b"\x21")])
    assert b.recv(1) == [frame(MAC0[:5] + b"\x21")]
    assert b.function.wire_stats()["rx_filtered"] == 1
    assert b.function.read32(GPRC) == 5 and a.function.read32(GPTC) == 6
    assert a.function.errors() == [] and b.function.errors() == []


def test_statistics_clear_on_read_and_rqdpc_counts_drops(pair):
    a, b = pair
    a.up()
    b.up(n=8)
    a.send([frame(MAC0[:5] + b"\x21")] * 12)                    # 7 free descriptors
    wait_until(lambda: b.function.wire_stats()["rx_no_desc_drops"] == 5)
    assert b.function.read32(rxq(0) + 0x30) == 5                    # RQDPC[0]
    assert b.function.read32(rxq_82575(0) + 0x30) == 0              # the same register: cleared by the read
    assert b.function.read32(MPC) == 0
    assert (b.function.read32(GORCL), b.function.read32(GORCH)) == (12 * 64, 0)
    assert b.function.read32(GORCL) == 0


def test_queue_registers_answer_at_both_addresses(sim):
    p = sim.function(0)
    p.write32(rxq_82575(2), 0x1000)
    p.write32(txq_82575(3) + 8, 1024)
    assert p.read32(rxq(2)) == 0x1000 and p.read32(txq(3) + 8) == 1024
    p.write32(rxq(1) + 0xC, SRRCTL_ADV_ONEBUF | 2)
    assert p.read32(rxq_82575(1) + 0xC) == SRRCTL_ADV_ONEBUF | 2
    assert p.read32(0x02800 + 0x100 * 4) == 0                   # queue 4 has no alias
    assert p.errors() == []


def test_queue_enable_refused_before_its_ring_is_set(sim):
    p = sim.function(0)
    p.write32(rxq(0) + 0xC, SRRCTL_ADV_ONEBUF | 2)
    p.write32(rxq(0) + 0x28, ENABLE)
    p.write32(txq(5) + 0x28, ENABLE)
    assert not p.read32(rxq(0) + 0x28) & ENABLE and not p.read32(txq(5) + 0x28) & ENABLE
    assert p.errors() == ["RXDCTL[0].ENABLE set while RDLEN[0] is 0", "TXDCTL[5].ENABLE set while TDLEN[5] is 0"]


def test_legacy_rx_descriptors_refused(sim, mem):
    p = sim.function(0)
    ring = mem.alloc(1024)
    p.write32(rxq(0), ring & 0xFFFFFFFF)
    p.write32(rxq(0) + 4, ring >> 32)
    p.write32(rxq(0) + 8, 1024)
    p.write32(rxq(0) + 0x28, ENABLE)                              # SRRCTL still legacy after reset
    assert not p.read32(rxq(0) + 0x28) & ENABLE
    assert any("SRRCTL[0].DESCTYPE=0" in e for e in p.errors())


def test_tail_beyond_the_ring_and_head_while_enabled(pair):
    a, _ = pair
    a.up()
    a.function.write32(rxq_82575(0) + 0x18, 64)
    a.function.write32(rxq(0) + 0x10, 3)
    assert a.function.errors() == ["RDT[0]=64 written beyond the ring of 64 descriptors (ignored)",
                               "RDH[0] written while the queue is enabled (ignored)"]


def test_dma_without_bus_mastering_is_refused(pair):
    a, b = pair
    a.up()
    b.up()
    a.function.config_write(4, 2, 0x2)                              # BME off
    a.send([frame(MAC0[:5] + b"\x21")])
    wait_until(lambda: a.function.errors())
    assert "while PCI COMMAND.BME is clear" in a.function.errors()[0]
    assert b.function.wire_stats()["rx_packets"] == 0


def test_msix_registers_reserved_bits_and_vectors(sim):
    p = sim.function(0)
    p.write32(EIMC, 0xFFFFFFFF)
    p.write32(EITR0 + 4 * 3, 0x1F3)
    p.write32(IVAR0 + 4 * 2, 0x80 | 25)                          # rx queue 2 -> vector 25: none such
    p.write32(IVAR0, 0x20)
    errs = p.errors()
    assert "EIMC bits 29:25 are reserved: write 0xffffffff (mask all with 0xc1ffffff)" in errs
    assert any("EITR[3]" in e and "bits 1:0 are reserved" in e for e in errs)
    assert any("IVAR[2]" in e and "vector 25 does not exist" in e for e in errs)
    assert any("IVAR[0]" in e and "reserved" in e for e in errs)
    assert len(errs) == 4
