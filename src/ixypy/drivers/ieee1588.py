"""The IEEE 1588 clock of the 82576 (igb) and the 82599 (ixgbe): the
system time, and the times latched when a chosen frame leaves or arrives
(82576 datasheet 7.9, registers 8.16; 82599 7.9, registers 8.2.3.26). The
two differ in where the registers are, in ETQF's enable bit and in the
clock period SYSTIM counts: ClockRegs, I82576 and I82599.

- SYSTIM adds TIMINCA's increment value every increment period (of clock
  periods: 16 ns on the 82576, 6.4 ns on the 82599 at 10 Gb/s); enable()
  makes it count ns (the 82599's in steps of 32 ns).
- tx: a packet sent with its descriptor's 1588 bit
  (IntelTxQueue.tx_timestamped) has its send time latched in TXSTMPL/H
  (TSYNCTXCTL.VALID set) until TXSTMPH is read.
- rx: a PTP version 2 frame over Ethernet (EtherType 0x88F7, matched by
  an ETQF filter with its 1588 bit) whose messageType is the one set (82576
  TSYNCRXCFG, 82599 RXMTRL, bits 15:8) has its arrival time latched in
  RXSTMPL/H (TSYNCRXCTL.VALID set), and attributes of its PTP header in
  RXSATRL/H, until they are read.

One time per direction is held at a time, so a time-stamped probe is sent
only when the last one's times were read (ixypy.latency, hardware mode).

QEMU's igb (QEMU 10) does this on its virtual clock (ns), plus TIMADJ: it
latches the tx time when it processes the descriptor, the rx time when the
frame reaches the model, so a latency between two of its NICs is the
emulator's own time from one model to the other, not a wire's. It unlocks
the rx latch on a read of RXSATRH (the datasheet: RXSTMPH); read_rx reads
all four registers, which unlocks both. Its RXSATRH sequence ID comes from
two bytes after the sequenceId of IEEE 1588-2008 (13.3.1: header offset
30; QEMU reads 32), so the attributes are read only to unlock: a caller
knows which frame a time belongs to by freeing the latch before that
frame comes (ixypy.latency sends one probe at a time). The ixypy models
(sim:..., csrc/sim/intel_1588.c) have the clock and both latches on
CLOCK_MONOTONIC, a frame's departure and arrival being the model's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

from ..errors import TimestampsUnavailable
from ..packets import PTP_ETHERTYPE, PTP_SYNC

if TYPE_CHECKING:
    from .intel import Registers


@dataclass(frozen=True)
class ClockRegs:
    """Where a family's time sync registers are, and what differs in them."""

    systiml: int
    systimh: int
    timinca: int
    tsynctxctl: int
    txstmpl: int
    txstmph: int
    tsyncrxctl: int
    rxstmpl: int
    rxstmph: int
    rxsatrl: int
    rxsatrh: int
    rx_msgtype: int           # the v2 messageType to time-stamp, bits 15:8
    etqf0: int                # EtherType queue filters 0..7, 4 bytes apart
    etqf_enable: int          # ETQF's filter enable bit
    timinca_ns: int           # TIMINCA that makes SYSTIM count ns

    def etqf(self, n: int) -> int:
        return self.etqf0 + 4 * n


# 82576 8.16: INCPERIOD 31:24 = 1 period of 16 ns, INCVALUE 23:0 = 16
I82576 = ClockRegs(systiml=0x0B600, systimh=0x0B604, timinca=0x0B608, tsynctxctl=0x0B614, txstmpl=0x0B618,
                   txstmph=0x0B61C, tsyncrxctl=0x0B620, rxstmpl=0x0B624, rxstmph=0x0B628, rxsatrl=0x0B62C,
                   rxsatrh=0x0B630, rx_msgtype=0x05F50, etqf0=0x05CB0, etqf_enable=1 << 26,
                   timinca_ns=(1 << 24) | 16)
# 82599 8.2.3.26: IP 31:24 = 5 periods of 6.4 ns (10 Gb/s), IV 23:0 = 32: ns in steps of 32
I82599 = ClockRegs(systiml=0x08C0C, systimh=0x08C10, timinca=0x08C14, tsynctxctl=0x08C00, txstmpl=0x08C04,
                   txstmph=0x08C08, tsyncrxctl=0x05188, rxstmpl=0x051E8, rxstmph=0x051A4, rxsatrl=0x051A0,
                   rxsatrh=0x051A8, rx_msgtype=0x05120, etqf0=0x05128, etqf_enable=1 << 31,
                   timinca_ns=(5 << 24) | 32)

TSYNC_VALID = 1 << 0                 # TSYNCTXCTL / TSYNCRXCTL: a time is latched
TSYNC_ENABLED = 1 << 4
TSYNCRXCTL_TYPE_L2_V2 = 0 << 1       # TYPE 3:1 = 000b: PTP v2 over Ethernet (with an ETQF 1588 filter)
MSGT_SHIFT = 8
ETQF_1588 = 1 << 30
ETQF_PTP = 3                         # the filter used here

CLOCK_CHECK_SECONDS = 0.002          # enable(): SYSTIM must move in this time
SYNC_ROUNDS = 32                     # clock_offset(): reads bracketed, the tightest kept


class Ieee1588Clock:
    """One NIC's 1588 clock and its tx and rx time latches, the registers
    where `at` says. Made by Device.ieee1588() (igb, ixgbe)."""

    def __init__(self, regs: "Registers", name: str, at: ClockRegs) -> None:
        self.regs = regs
        self.name = name
        self.at = at

    def enable(self) -> None:
        """Run SYSTIM in ns; latch the send time of packets sent with
        tx_timestamped and the arrival time of PTP v2 Sync messages over
        Ethernet. Stale latched times are dropped. Raises
        TimestampsUnavailable (latches off again) when SYSTIM does not count."""
        regs, at = self.regs, self.at
        regs.write(at.timinca, at.timinca_ns)
        regs.write(at.etqf(ETQF_PTP), at.etqf_enable | ETQF_1588 | PTP_ETHERTYPE)
        regs.write(at.rx_msgtype, PTP_SYNC << MSGT_SHIFT)
        regs.write(at.tsyncrxctl, TSYNC_ENABLED | TSYNCRXCTL_TYPE_L2_V2)
        regs.write(at.tsynctxctl, TSYNC_ENABLED)
        self.read_tx()
        self.read_rx()
        before = self.now()
        time.sleep(CLOCK_CHECK_SECONDS)
        if self.now() == before:
            self.disable()
            raise TimestampsUnavailable(f"{self.name}: its IEEE 1588 clock (SYSTIM) does not count")

    def disable(self) -> None:
        """Stop latching (SYSTIM keeps counting)."""
        self.regs.write(self.at.tsynctxctl, 0)
        self.regs.write(self.at.tsyncrxctl, 0)
        self.regs.write(self.at.etqf(ETQF_PTP), 0)

    def now(self) -> int:
        """SYSTIM in ns (SYSTIML first: its read latches SYSTIMH)."""
        low = self.regs.read(self.at.systiml)
        return low | self.regs.read(self.at.systimh) << 32

    def read_tx(self) -> Optional[int]:
        """The latched send time (ns), freeing the latch; None if none."""
        if not self.regs.read(self.at.tsynctxctl) & TSYNC_VALID:
            return None
        low = self.regs.read(self.at.txstmpl)
        return low | self.regs.read(self.at.txstmph) << 32

    def read_rx(self) -> Optional[int]:
        """The latched arrival time (ns), freeing the latch; None if none."""
        at = self.at
        if not self.regs.read(at.tsyncrxctl) & TSYNC_VALID:
            return None
        low = self.regs.read(at.rxstmpl)
        ns = low | self.regs.read(at.rxstmph) << 32
        self.regs.read(at.rxsatrl)
        self.regs.read(at.rxsatrh)
        return ns


def clock_offset(reference: Ieee1588Clock, other: Ieee1588Clock) -> Tuple[int, int]:
    """other's SYSTIM minus reference's (ns), and a bound on that figure's
    error (ns): other's clock read between two reads of reference's, the
    tightest of SYNC_ROUNDS tries. (0, 0) for one clock."""
    if other.regs is reference.regs:
        return 0, 0
    best: Optional[Tuple[int, int]] = None
    for _ in range(SYNC_ROUNDS):
        before = reference.now()
        theirs = other.now()
        after = reference.now()
        error = (after - before + 1) // 2
        if best is None or error < best[1]:
            best = (theirs - (before + after) // 2, error)
    assert best is not None
    return best
