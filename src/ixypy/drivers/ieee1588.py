"""The IEEE 1588 clock of the 82576 (igb): its system time, and the times
it latches when a chosen frame leaves or arrives (82576 datasheet 7.9,
registers 8.16).

- SYSTIM counts in ns once TIMINCA is set to add 16 ns every 16 ns clock
  period (INCPERIOD 1, INCVALUE 16).
- tx: a packet sent with its descriptor's 1588 bit
  (IntelTxQueue.tx_timestamped) has its send time latched in TXSTMPL/H
  (TSYNCTXCTL.VALID set) until TXSTMPH is read.
- rx: a PTP version 2 frame over Ethernet (EtherType 0x88F7, matched by
  an ETQF filter with its 1588 bit) whose message type is TSYNCRXCFG's has
  its arrival time latched in RXSTMPL/H (TSYNCRXCTL.VALID set), and
  attributes of its PTP header in RXSATRL/H, until they are read.

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
frame comes (ixypy.latency sends one probe at a time). The ixypy 82576
model (sim:igb-...) has no 1588 clock: enable() finds SYSTIM standing
still and says so.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional, Tuple

from ..errors import TimestampsUnavailable

if TYPE_CHECKING:
    from .intel import Registers

# --- registers (82576 datasheet 8.16, time sync) -----------------------------------
SYSTIML = 0x0B600
SYSTIMH = 0x0B604
TIMINCA = 0x0B608
TSYNCTXCTL = 0x0B614
TXSTMPL = 0x0B618
TXSTMPH = 0x0B61C
TSYNCRXCTL = 0x0B620
RXSTMPL = 0x0B624
RXSTMPH = 0x0B628
RXSATRL = 0x0B62C
RXSATRH = 0x0B630
TSYNCRXCFG = 0x05F50


def ETQF(n: int) -> int: return 0x05CB0 + 4 * n    # EtherType queue filters 0..7


# --- bits ------------------------------------------------------------------------
TIMINCA_NS = (1 << 24) | 16          # INCPERIOD 31:24 = 1 clock period (16 ns), INCVALUE 23:0 = 16: SYSTIM in ns
TSYNC_VALID = 1 << 0                 # TSYNCTXCTL / TSYNCRXCTL: a time is latched
TSYNC_ENABLED = 1 << 4
TSYNCRXCTL_TYPE_L2_V2 = 0 << 1       # TYPE 3:1 = 000b: PTP v2 over Ethernet (with an ETQF 1588 filter)
TSYNCRXCFG_MSGT_SHIFT = 8            # 15:8: the v2 message type to time-stamp
ETQF_FILTER_ENABLE = 1 << 26
ETQF_1588 = 1 << 30
ETQF_PTP = 3                         # the filter used here

PTP_ETHERTYPE = 0x88F7
PTP_VERSION = 2
PTP_SYNC = 0x0                       # messageType of a Sync message (IEEE 1588-2008, 13.3.2.2)
PTP_SYNC_LENGTH = 44                 # a Sync message: 34-byte header and a 10-byte originTimestamp
PTP_SEQUENCE_ID = 30                 # the header's sequenceId, from the PTP message's start (13.3.1)

CLOCK_CHECK_SECONDS = 0.002          # enable(): SYSTIM must move in this time
SYNC_ROUNDS = 32                     # clock_offset(): reads bracketed, the tightest kept


class Ieee1588Clock:
    """One NIC's 1588 clock and its tx and rx time latches (registers of
    the 82576). Made by IgbDevice.ieee1588()."""

    def __init__(self, regs: "Registers", name: str) -> None:
        self.regs = regs
        self.name = name

    def enable(self) -> None:
        """Run SYSTIM in ns; latch the send time of packets sent with
        tx_timestamped and the arrival time of PTP v2 Sync messages over
        Ethernet. Stale latched times are dropped. Raises
        TimestampsUnavailable when SYSTIM does not count."""
        regs = self.regs
        regs.write(TIMINCA, TIMINCA_NS)
        regs.write(ETQF(ETQF_PTP), ETQF_FILTER_ENABLE | ETQF_1588 | PTP_ETHERTYPE)
        regs.write(TSYNCRXCFG, PTP_SYNC << TSYNCRXCFG_MSGT_SHIFT)
        regs.write(TSYNCRXCTL, TSYNC_ENABLED | TSYNCRXCTL_TYPE_L2_V2)
        regs.write(TSYNCTXCTL, TSYNC_ENABLED)
        self.read_tx()
        self.read_rx()
        before = self.now()
        time.sleep(CLOCK_CHECK_SECONDS)
        if self.now() == before:
            self.disable()
            raise TimestampsUnavailable(f"{self.name}: its IEEE 1588 clock (SYSTIM) does not count (the ixypy "
                                        f"models, sim:..., have none)")

    def disable(self) -> None:
        """Stop latching (SYSTIM keeps counting)."""
        self.regs.write(TSYNCTXCTL, 0)
        self.regs.write(TSYNCRXCTL, 0)
        self.regs.write(ETQF(ETQF_PTP), 0)

    def now(self) -> int:
        """SYSTIM in ns (SYSTIML first: its read latches SYSTIMH)."""
        low = self.regs.read(SYSTIML)
        return low | self.regs.read(SYSTIMH) << 32

    def read_tx(self) -> Optional[int]:
        """The latched send time (ns), freeing the latch; None if none."""
        if not self.regs.read(TSYNCTXCTL) & TSYNC_VALID:
            return None
        low = self.regs.read(TXSTMPL)
        return low | self.regs.read(TXSTMPH) << 32

    def read_rx(self) -> Optional[int]:
        """The latched arrival time (ns), freeing the latch; None if none."""
        if not self.regs.read(TSYNCRXCTL) & TSYNC_VALID:
            return None
        low = self.regs.read(RXSTMPL)
        ns = low | self.regs.read(RXSTMPH) << 32
        self.regs.read(RXSATRL)
        self.regs.read(RXSATRH)
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


def ptp_probe_frame(size: int, dst_mac: str, src_mac: str) -> bytes:
    """A PTP v2 Sync message over Ethernet of `size` bytes (without FCS),
    padded with zeros: what the rx latch takes. Its sequenceId (frame byte
    14 + PTP_SEQUENCE_ID) and what follows are 0, for the sender to write."""
    header = bytearray(PTP_SYNC_LENGTH)
    header[0] = PTP_SYNC                  # transportSpecific 0, messageType
    header[1] = PTP_VERSION
    header[2:4] = PTP_SYNC_LENGTH.to_bytes(2, "big")
    ether = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) \
        + PTP_ETHERTYPE.to_bytes(2, "big")
    frame = ether + bytes(header)
    return frame + bytes(max(0, size - len(frame)))
