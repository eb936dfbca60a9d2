"""Helpers for testing the 82599 model through its registers only: DMA memory
from an anonymous mmap, and a tiny register-level driver written from the
datasheet's init sequence (4.6.3 reset, 4.6.4 link, 4.6.7 rx, 4.6.8 tx)."""
import ctypes
import mmap
import struct
import time

import pytest

from ixypy.sim._model import IntelModel

# registers (82599 datasheet 8.2.3)
CTRL, STATUS, EEC = 0x0000, 0x0008, 0x10010
CTRL_RST, CTRL_LRST, EEC_ARD = 1 << 26, 1 << 3, 1 << 9
EICR, EIMS, EIMC = 0x0800, 0x0880, 0x0888
AUTOC, LINKS = 0x42A0, 0x42A4
AUTOC_RESTART_AN, AUTOC_LMS_10G_SERIAL = 1 << 12, 0x3 << 13
LINKS_UP = 1 << 30
HLREG0, MAXFRS = 0x4240, 0x4268
HLREG0_TXCRCEN, HLREG0_RXCRCSTRP, HLREG0_JUMBOEN = 1, 2, 4
RDRXCTL = 0x2F00
RDRXCTL_CRCSTRIP, RDRXCTL_DMAIDONE = 1 << 1, 1 << 3
RDRXCTL_RSCFRSTSIZE, RDRXCTL_RSCACKC, RDRXCTL_FCOE_WRFIX = 0x003E0000, 1 << 25, 1 << 26
RXCTRL, RXEN = 0x3000, 1
FCTRL = 0x5080
MPE, UPE, BAM = 1 << 8, 1 << 9, 1 << 10
DMATXCTL, TE = 0x4A80, 1
DTXMXSZRQ = 0x8100
RAL0, RAH0 = 0xA200, 0xA204
GPRC, GPTC, GORCL, GORCH, GOTCL, GOTCH = 0x4074, 0x4080, 0x4088, 0x408C, 0x4090, 0x4094
ROC, RXMPC0 = 0x40AC, 0x3FA0


def RDBAL(n): return 0x1000 + 0x40 * n
def RDBAH(n): return 0x1004 + 0x40 * n
def RDLEN(n): return 0x1008 + 0x40 * n
def RDH(n): return 0x1010 + 0x40 * n
def SRRCTL(n): return 0x1014 + 0x40 * n
def RDT(n): return 0x1018 + 0x40 * n
def RXDCTL(n): return 0x1028 + 0x40 * n
def QPRC(n): return 0x1030 + 0x40 * n
def QPRDC(n): return 0x1430 + 0x40 * n
def TDBAL(n): return 0x6000 + 0x40 * n
def TDBAH(n): return 0x6004 + 0x40 * n
def TDLEN(n): return 0x6008 + 0x40 * n
def TDH(n): return 0x6010 + 0x40 * n
def TDT(n): return 0x6018 + 0x40 * n
def TXDCTL(n): return 0x6028 + 0x40 * n


ENABLE = 1 << 25
SRRCTL_DESCTYPE_ADV_ONEBUF = 1 << 25
SRRCTL_DROP_EN = 1 << 28
RDRXCTL_GOOD = RDRXCTL_CRCSTRIP | RDRXCTL_RSCACKC | RDRXCTL_FCOE_WRFIX
# tx advanced data descriptor (7.2.3.2.4)
DTYP_DATA = 0x3 << 20
DCMD_EOP, DCMD_IFCS, DCMD_RS, DCMD_DEXT = 1 << 24, 1 << 25, 1 << 27, 1 << 29


def wait_until(pred, timeout=5.0, what="condition"):
    """Poll pred() until true; fail after timeout (bounded: never hangs)."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.0005)


def frame(dst, src=b"\x02\xaa\xbb\xcc\xdd\xee", size=60, fill=None):
    """An Ethernet frame without CRC of ``size`` bytes."""
    body = bytes((i * 7 + 3) & 0xFF for i in range(size - 14)) if fill is None else fill * (size - 14)
    return dst + src + b"\x88\xb5" + body[: size - 14]


class DmaMem:
    """Anonymous memory the model may DMA to (dma address == virtual address)."""

    def __init__(self, sim, size=4 << 20):
        self.mm = mmap.mmap(-1, size)
        self._ref = ctypes.c_char.from_buffer(self.mm)
        self.base = ctypes.addressof(self._ref)
        self.size = size
        self.next = 0
        sim.dma_map(self.base, self.base, size)

    def alloc(self, n, align=128):
        self.next = (self.next + align - 1) // align * align
        off = self.next
        self.next += n
        assert self.next <= self.size
        return self.base + off

    def off(self, addr):
        return addr - self.base

    def read(self, addr, n):
        o = self.off(addr)
        return bytes(self.mm[o:o + n])

    def write(self, addr, data):
        o = self.off(addr)
        self.mm[o:o + len(data)] = data

    def u32(self, addr):
        return struct.unpack_from("<I", self.mm, self.off(addr))[0]

    def put(self, fmt, addr, *vals):
        struct.pack_into(fmt, self.mm, self.off(addr), *vals)


class Nic:
    """A minimal register-level driver of one model function (for tests only)."""

    def __init__(self, function, mem):
        self.function, self.mem = function, mem
        self.rx_ring = self.tx_ring = None

    def r(self, off):
        return self.function.read32(off)

    def w(self, off, v):
        self.function.write32(off, v)

    def bus_master(self, on=True):
        self.function.config_write(4, 2, 0x6 if on else 0x2)

    def reset(self):
        self.w(CTRL, CTRL_RST | CTRL_LRST)
        wait_until(lambda: not self.r(CTRL) & CTRL_RST, what="CTRL.RST self-clear")
        wait_until(lambda: self.r(EEC) & EEC_ARD, what="EEC.ARD")
        wait_until(lambda: self.r(RDRXCTL) & RDRXCTL_DMAIDONE, what="RDRXCTL.DMAIDONE")

    def link_up(self, delay_us=0):
        self.function.set_link_delay(delay_us)
        self.w(AUTOC, AUTOC_LMS_10G_SERIAL | AUTOC_RESTART_AN)
        wait_until(lambda: self.r(LINKS) & LINKS_UP, what="LINKS.LINK_UP")

    def init_rx(self, q=0, n=64, bsize_kb=2, drop_en=False, fctrl=BAM, rxen=True, jumbo=0):
        self.w(RDRXCTL, (self.r(RDRXCTL) & ~RDRXCTL_RSCFRSTSIZE) | RDRXCTL_GOOD)
        hl = HLREG0_TXCRCEN | HLREG0_RXCRCSTRP | (1 << 10)
        if jumbo:
            hl |= HLREG0_JUMBOEN
            self.w(MAXFRS, jumbo << 16)
        self.w(HLREG0, hl)
        self.w(FCTRL, fctrl)
        self.rx_n, self.rx_bsize = n, bsize_kb * 1024
        self.rx_ring = self.mem.alloc(16 * n)
        self.rx_bufs = [self.mem.alloc(self.rx_bsize) for _ in range(n)]
        self.w(RDBAL(q), self.rx_ring & 0xFFFFFFFF)
        self.w(RDBAH(q), self.rx_ring >> 32)
        self.w(RDLEN(q), 16 * n)
        self.w(SRRCTL(q), SRRCTL_DESCTYPE_ADV_ONEBUF | bsize_kb | (SRRCTL_DROP_EN if drop_en else 0))
        self.w(RDH(q), 0)
        self.w(RDT(q), 0)
        for i in range(n):
            self.mem.put("<QQ", self.rx_ring + 16 * i, self.rx_bufs[i], 0)
        self.w(RXDCTL(q), ENABLE)
        assert self.r(RXDCTL(q)) & ENABLE
        self.rx_next = 0
        self.rxq = q
        self.w(RDT(q), n - 1)
        if rxen:
            self.w(RXCTRL, RXEN)

    def init_tx(self, q=0, n=64):
        self.w(DMATXCTL, TE)
        self.tx_n = n
        self.tx_ring = self.mem.alloc(16 * n)
        self.tx_bufs = [self.mem.alloc(2048) for _ in range(n)]
        self.w(TDBAL(q), self.tx_ring & 0xFFFFFFFF)
        self.w(TDBAH(q), self.tx_ring >> 32)
        self.w(TDLEN(q), 16 * n)
        self.w(TDH(q), 0)
        self.w(TDT(q), 0)
        self.w(TXDCTL(q), ENABLE)
        assert self.r(TXDCTL(q)) & ENABLE
        self.tx_tail = 0
        self.txq = q

    def up(self, rx=True, tx=True, **rx_kw):
        self.bus_master()
        self.reset()
        self.link_up()
        if rx:
            self.init_rx(**rx_kw)
        if tx:
            self.init_tx()

    def tx_desc(self, i, addr, length, cmd=DCMD_EOP | DCMD_IFCS | DCMD_RS, paylen=None):
        self.mem.put("<QII", self.tx_ring + 16 * i, addr,
                     length | DTYP_DATA | DCMD_DEXT | cmd,
                     (length if paylen is None else paylen) << 14)

    def send(self, frames, kick=True):
        """Queue frames (one descriptor each) and bump TDT."""
        for f in frames:
            i = self.tx_tail
            self.mem.write(self.tx_bufs[i], f)
            self.tx_desc(i, self.tx_bufs[i], len(f))
            self.tx_tail = (i + 1) % self.tx_n
        if kick:
            self.w(TDT(self.txq), self.tx_tail)

    def tx_done(self):
        return self.r(TDH(self.txq)) == self.tx_tail

    def rx_status(self, i):
        return self.mem.u32(self.rx_ring + 16 * i + 8)

    def recv(self, want=None, timeout=5.0):
        """Collect received frames (reassembling multi-descriptor ones) and
        hand the descriptors back. With want: wait until that many arrived."""
        out, parts = [], []

        def poll():
            while True:
                i = self.rx_next
                st = self.rx_status(i)
                if not st & 1:
                    return
                length = self.mem.u32(self.rx_ring + 16 * i + 12) & 0xFFFF
                parts.append(self.mem.read(self.rx_bufs[i], length))
                if st & 2:
                    out.append(b"".join(parts))
                    parts.clear()
                self.mem.put("<QQ", self.rx_ring + 16 * i, self.rx_bufs[i], 0)
                self.rx_next = (i + 1) % self.rx_n
                self.w(RDT(self.rxq), i)

        if want is None:
            poll()
        else:
            wait_until(lambda: (poll(), len(out) >= want)[1], timeout, f"{want} frames")
        return out


@pytest.fixture
def sim():
    s = IntelModel(2, mac=b"\x02\x00\x00\x00\x00\x10")
    s.start()
    yield s
    s.close()


@pytest.fixture
def mem(sim):
    m = DmaMem(sim)
    yield m
    sim.close()      # the worker must be gone before the memory is


@pytest.fixture
def nic0(sim, mem):
    return Nic(sim.function(0), mem)


@pytest.fixture
def nic1(sim, mem):
    return Nic(sim.function(1), mem)


MAC0 = b"\x02\x00\x00\x00\x00\x10"
MAC1 = b"\x02\x00\x00\x00\x00\x11"
BCAST = b"\xff" * 6
