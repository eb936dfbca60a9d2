"""Intel 82576 SR-IOV virtual function, "igbvf" (PCI 8086:10ca).

A VF is a slice of an 82576 that its physical function's driver (Linux's
igb, on the host or in the VM that owns the PF) hands out: one pool of
queues, its own MSI-X vectors and a mailbox to the PF. Its BAR0 holds only
what the VF may touch (82576 datasheet, section 7.10, virtualization, and
the VF's registers in chapter 8, the register chapter; the number of the VF
register section not checked):
- VTCTRL (offset 0x0000, the PF's CTRL position): RST resets the VF's
  queues and interrupts, not the port;
- VFSTATUS (0x0008): the port's link state (LU, SPEED), read only;
- the VF's queue pair 0 at the igb queue-0 offsets (RDBAL 0x2800 ...
  RXDCTL 0x2828, SRRCTL 0x280C; TDBAL 0x3800 ... TXDCTL 0x3828), which the
  rings, the fast path and the queue start/stop of intel.py use as is;
- VFEIMC (0x1528): the VF's interrupt mask;
- the mailbox: V2PMAILBOX (0x0C40) and its 16-word buffer VMBMEM (0x0800);
- VFGPRC, VFGPTC, VFGORC, VFGOTC (0x0F10, 0x0F14, 0x0F18, 0x0F34): good
  packets and octets received and sent, free-running 32-bit counters that
  reads do not clear.

Everything that belongs to the port (MAC and PHY, RCTL/TCTL, the receive
address filters, VLAN filters, promiscuous modes, RSS) is the PF's. Bring-up
therefore talks to the PF's driver through the mailbox, with the messages
Linux's igb (the PF side) and igbvf (the VF side) agree on:
1. VTCTRL.RST, then wait while V2PMAILBOX.RSTI says the PF is in reset;
2. VF_RESET: the PF resets its view of the VF, enables the VF's rx and tx
   (VFRE, VFTE), answers VF_RESET|ACK with the MAC it assigned in words 1-2,
   or VF_RESET|NACK when it assigned none;
3. with no MAC assigned: SET_MAC_ADDR with a random locally administered
   address (what Linux's igbvf does), which the PF answers ACK (it then
   filters that address to the VF) or NACK (it refuses);
4. the rings, as on the 82576 (intel.py), with the link the PF's.
Replies carry ACK (bit 31) or NACK (bit 30) and CTS (bit 29: the PF takes
further requests); the low 16 bits name the message. The PF may also send a
message of its own (PF_CONTROL_MSG, bit 8: a "ping" on link changes), which
the VF acknowledges and otherwise ignores.

interrupts=True gives the rx queue the VF's MSI-X vector 0 (igbvf_irq).

Close stops the VF's DMA: queues disabled, then VTCTRL.RST (on QEMU's
model it also clears the VF's VFRE/VFTE bits until the next VF_RESET), then
Bus Master Enable off.

The VF is driven over VFIO only (access_methods): its DMA then goes through
the IOMMU mapping ixypy makes for it; UIO is refused before the VF's binding
changes (a bring-up over uio_pci_generic did succeed once in the guest rig,
but nothing beyond it was tested there).

QEMU 10's model (hw/net/igbvf.c, igb_core.c), on which the tests run,
differs from the datasheet here:
- VTCTRL.RST disables the VF's queues and its VFRE/VFTE bits and signals the
  PF (VFLRE) but neither sets RSTI nor clears the ring registers; RSTI is
  never set, and RSTD only once, when the PF driver writes CTRL_EXT.PFRSTD.
  So the driver waits for RSTI clear and does not require RSTD.
- VFSTATUS is the PF's STATUS register.
- The VF's interrupts reach it only while the PF's GPIE selects MSI-X mode
  (Linux's igb does when it uses MSI-X); EIAM auto-masking is not modelled.
- VFGORC/VFGOTC count each frame with its 4 CRC bytes (as DeviceStats does).
- The VF's queue pair 1 (0x2900/0x3900) exists, but receives only with RSS
  in the PF's pool set-up: this driver opens one queue pair.
- Frames between the VF and the PF (or another VF) never reach the wire when
  the destination MAC is one of the port's own (the PF's DTXSWC loopback).
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from ..device import DeviceStats, format_mac
from ..errors import DeviceError, DeviceTimeout, PromiscUnavailable, RssConfigError
from .igb import SRRCTL, SRRCTL_DESCTYPE_ADV_ONEBUF, SRRCTL_DROP_EN, STATUS_LU, STATUS_SPEED_MASK, \
    STATUS_SPEED_MBITS, _rxq, _txq
from ..interrupts import Interrupts
from . import igbvf_irq
from .intel import IntelDevice, LinkRegs

if TYPE_CHECKING:
    from ..bus import Bus

# --- the VF's registers (BAR0 of the VF) ----------------------------------------
VTCTRL = 0x0000
VFSTATUS = 0x0008
VFEIMC = 0x1528
VMBMEM = 0x0800             # 16 words of message buffer
V2PMAILBOX = 0x0C40
VFGPRC = 0x0F10
VFGPTC = 0x0F14
VFGORC = 0x0F18
VFGOTC = 0x0F34

VTCTRL_RST = 1 << 26
VFEIMC_ALL = 0x7            # the VF's three MSI-X vectors

# V2PMAILBOX bits
MBX_REQ = 1 << 0            # VF: a message for the PF is in the buffer
MBX_ACK = 1 << 1            # VF: the PF's message was read
MBX_VFU = 1 << 2            # the VF owns the buffer
MBX_PFU = 1 << 3            # the PF owns the buffer
MBX_PFSTS = 1 << 4          # the PF wrote a message (read clears)
MBX_PFACK = 1 << 5          # the PF read the VF's message (read clears)
MBX_RSTI = 1 << 6           # the PF is in reset
MBX_RSTD = 1 << 7           # the PF's reset is done (read clears)
MBX_READ_CLEARS = MBX_PFSTS | MBX_PFACK | MBX_RSTD
MBX_WORDS = 16

# message words (Linux's igb/igbvf mailbox protocol)
MSG_VF_RESET = 0x01
MSG_SET_MAC_ADDR = 0x02
MSG_PF_CONTROL = 0x0100
MSG_ID_MASK = 0xFFFF
MSG_ACK = 1 << 31
MSG_NACK = 1 << 30
MSG_CTS = 1 << 29

NAMES: Dict[int, str] = {globals()[name]: name for name in (
    "VTCTRL", "VFSTATUS", "VFEIMC", "VMBMEM", "V2PMAILBOX", "VFGPRC", "VFGPTC", "VFGORC", "VFGOTC")}

INTEL = 0x8086
VF_DEVICE_ID = 0x10CA
DEVICE_IDS = {VF_DEVICE_ID: "82576 virtual function"}

MAX_QUEUES = 1
RESET_TIMEOUT = 1.0         # RSTI clear after VTCTRL.RST
MBX_TIMEOUT = 2.0           # Linux's igbvf allows 1 s per posted message; TCG guests are slower
LINK_TIMEOUT = 10.0         # the port's link, which the PF brings up
COUNTER_MASK = 0xFFFFFFFF


class Mailbox:
    """The VF's end of the PF/VF mailbox: V2PMAILBOX and VMBMEM. The bits
    PFSTS, PFACK and RSTD clear when read, so what a read saw is kept until
    the driver consumes it (one read may see the PF's ack and its reply)."""

    def __init__(self, regs, timeout: float = MBX_TIMEOUT) -> None:
        self.regs = regs
        self.timeout = timeout
        self._seen = 0

    def status(self) -> int:
        value = self.regs.read(V2PMAILBOX)
        self._seen |= value & MBX_READ_CLEARS
        return value | self._seen

    def _consume(self, bit: int) -> bool:
        seen = bool(self.status() & bit)
        self._seen &= ~bit
        return seen

    def _wait_for(self, bit: int, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 1e-5
        while not self._consume(bit):
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"the PF did not {what} within {self.timeout:g} s "
                                    f"(V2PMAILBOX reads {self.regs.read(V2PMAILBOX):#010x})",
                                    "the PF's driver answers the VF's mailbox only while its interface is up: "
                                    "`ip link set PF up` on the host that owns the PF")
            time.sleep(delay)
            delay = min(delay * 2, 0.005)

    def _lock(self) -> None:
        """Take the buffer: VFU set, and it reads back set (not while the PF holds it)."""
        deadline = time.monotonic() + self.timeout
        while True:
            self.regs.write(V2PMAILBOX, MBX_VFU)
            if self.status() & MBX_VFU:
                return
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"the VF could not take the mailbox buffer within {self.timeout:g} s "
                                    f"(V2PMAILBOX reads {self.regs.read(V2PMAILBOX):#010x})")
            time.sleep(1e-4)

    def send(self, words: Sequence[int]) -> None:
        """Post a message and wait for the PF's ack of it."""
        self._lock()
        self._seen &= ~MBX_PFACK            # an ack from before is not this message's
        for i, word in enumerate(words):
            self.regs.write(VMBMEM + 4 * i, word)
        self.regs.write(V2PMAILBOX, MBX_REQ)    # REQ; VFU 0 hands the buffer over
        self._wait_for(MBX_PFACK, "acknowledge the VF's message")

    def receive(self) -> List[int]:
        """Wait for the PF's message, read it, acknowledge it."""
        self._wait_for(MBX_PFSTS, "answer the VF's message")
        self._lock()
        words = [self.regs.read(VMBMEM + 4 * i) for i in range(MBX_WORDS)]
        self.regs.write(V2PMAILBOX, MBX_ACK)    # ACK; VFU 0 releases the buffer
        return words

    def request(self, words: Sequence[int]) -> List[int]:
        """Send a message and return the PF's reply to it (its first word
        names the same message), skipping the PF's own control messages."""
        self._consume(MBX_PFSTS)            # a PF message left from before is not the reply
        self.send(words)
        while True:
            reply = self.receive()
            if reply[0] & MSG_ID_MASK == words[0] & MSG_ID_MASK:
                return reply
            if not reply[0] & MSG_PF_CONTROL:
                raise DeviceError(f"the PF answered message {words[0]:#x} with {reply[0]:#010x}")


class IgbvfDevice(IntelDevice):
    """An 82576 virtual function. Opened by ixypy.open(); do not construct directly."""

    driver_name = "igbvf"
    access_methods = ("vfio",)      # bus.attach_pci refuses UIO before binding anything
    MAX_QUEUES = MAX_QUEUES
    LINK_TIMEOUT = LINK_TIMEOUT
    LINK = LinkRegs(VFSTATUS, STATUS_LU, STATUS_SPEED_MASK, STATUS_SPEED_MBITS)
    STATUS = VFSTATUS
    NAMES = NAMES
    rx_queue_block = staticmethod(_rxq)
    tx_queue_block = staticmethod(_txq)
    _mac: Optional[bytes] = None
    _counters: Optional[List[int]] = None    # VFGPRC, VFGPTC, VFGORC, VFGOTC as last read

    def __init__(self, bus: "Bus", rx_queues: int = 1, tx_queues: int = 1, **kwargs) -> None:
        self.mailbox: Optional[Mailbox] = None
        super().__init__(bus, rx_queues, tx_queues, **kwargs)

    # --- bring-up (the sequence: IntelDevice._bring_up) ------------------------------

    def _disable_interrupts(self) -> None:
        """Mask the VF's three MSI-X causes (VFEIMC)."""
        self.regs.write(VFEIMC, VFEIMC_ALL)

    def _enable_interrupts(self, itr_us: Optional[float]) -> Interrupts:
        """MSI-X: the rx queue on the VF's vector 0 (igbvf_irq)."""
        return igbvf_irq.enable(self, igbvf_irq.DEFAULT_ITR_US if itr_us is None else itr_us)

    def _global_reset(self) -> None:
        """VTCTRL.RST: the VF's queues and interrupts to their defaults (the
        port is not touched); then wait while the mailbox says the PF is in
        reset (RSTI). RSTD is not required (QEMU sets it only once)."""
        self.regs.write(VTCTRL, VTCTRL_RST)
        self.regs.read(VFSTATUS)            # flush the posted write
        self.regs.wait_clear(V2PMAILBOX, MBX_RSTI, RESET_TIMEOUT)

    def _wait_reset_done(self) -> None:
        """VF_RESET through the mailbox: the PF (re)enables the VF's rx and tx
        and tells the MAC it assigned; none assigned: ask for a random one."""
        self.mailbox = Mailbox(self.regs)
        reply = self.mailbox.request([MSG_VF_RESET])
        if reply[0] & MSG_ACK:
            mac = (reply[1] | reply[2] << 32).to_bytes(8, "little")[:6]
            if mac == bytes(6) or mac[0] & 1:
                raise DeviceError(f"the PF assigned the VF the invalid MAC {format_mac(mac)}")
            self._mac = mac
        elif reply[0] & MSG_NACK:
            self.set_mac(_random_mac())
        else:
            raise DeviceError(f"the PF's reply to VF_RESET is neither ACK nor NACK: {reply[0]:#010x}")

    def set_mac(self, mac: "bytes | str") -> None:
        """Ask the PF to filter `mac` (bytes, or aa:bb:cc:dd:ee:ff) to this VF
        (SET_MAC_ADDR). The PF refuses (DeviceError) when its host assigned
        the VF an address (`ip link set PF vf N mac ...`) or mac is not a
        unicast address."""
        raw = bytes.fromhex(mac.replace(":", "")) if isinstance(mac, str) else bytes(mac)
        if len(raw) != 6 or raw[0] & 1 or raw == bytes(6):
            raise ValueError(f"{format_mac(raw) if len(raw) == 6 else mac!r} is not a unicast MAC address")
        assert self.mailbox is not None
        word = int.from_bytes(raw + bytes(2), "little")
        reply = self.mailbox.request([MSG_SET_MAC_ADDR, word & COUNTER_MASK, word >> 32])
        if not reply[0] & MSG_ACK:
            raise DeviceError(f"{self.address}: the PF refused MAC {format_mac(raw)} for the VF "
                              f"(reply {reply[0]:#010x})",
                              "the PF's host set the VF's MAC (`ip link show PF` lists it): use that one, "
                              "or change it there with `ip link set PF vf N mac ADDR` and reopen the VF")
        self._mac = raw

    def _setup_link(self) -> None:
        """The link is the port's: the PF's driver brings it up."""

    def _init_rx(self) -> None:
        """One advanced one-buffer ring per queue (SRRCTL); what the VF
        receives is the PF's filters' choice (its MAC, broadcast)."""
        bsize_kib = self._rx_buffer_kib()
        for n in range(self.num_rx_queues):
            self.rx_queues.append(self._setup_rx_ring(n))
            self.regs.write(SRRCTL(n), SRRCTL_DESCTYPE_ADV_ONEBUF | SRRCTL_DROP_EN | bsize_kib)

    def _init_tx(self) -> None:
        for n in range(self.num_tx_queues):
            self.tx_queues.append(self._setup_tx_ring(n))

    def _enable_rx(self) -> None:
        """Nothing beyond the queue's enable: the PF enabled the VF's rx (VFRE)."""

    def _disable_rx(self) -> None:
        """Nothing beyond the queue's enable (RCTL is the PF's)."""

    def _enable_tx(self) -> None:
        """Nothing beyond the queue's enable: the PF enabled the VF's tx (VFTE)."""

    # --- control -----------------------------------------------------------------------

    @property
    def mac(self) -> str:
        """The MAC the PF assigned (or accepted) at bring-up."""
        if self._mac is None:
            raise DeviceError(f"{self.address}: the VF has no MAC address yet (bring-up did not finish)")
        return format_mac(self._mac)

    def _read_stats(self) -> DeviceStats:
        """What the VF's counters counted since the last read: they are
        free-running 32-bit counters, so the driver keeps the last values
        (the first read, at bring-up, is the base) and takes differences
        modulo 2**32 (read at least once per 2**32 octets: about 34 s at
        1 Gbit/s). Drops and errors are counted by the PF only."""
        r = self.regs.read
        now = [r(VFGPRC), r(VFGPTC), r(VFGORC), r(VFGOTC)]
        last = self._counters if self._counters is not None else now
        self._counters = now
        rx_packets, tx_packets, rx_bytes, tx_bytes = ((n - b) & COUNTER_MASK for n, b in zip(now, last))
        return DeviceStats(rx_packets=rx_packets, tx_packets=tx_packets, rx_bytes=rx_bytes, tx_bytes=tx_bytes)

    @property
    def promisc(self) -> Optional[bool]:
        """None: the PF's filters decide what the VF receives."""
        return None

    def set_promisc(self, enabled: bool) -> None:
        """A VF cannot enter promiscuous mode (the PF owns the filters);
        asking for it off is what the VF already is."""
        if enabled:
            raise PromiscUnavailable(f"{self.address}: an 82576 virtual function cannot enter promiscuous mode: "
                                     f"its physical function's driver decides what it receives")

    def enable_rss(self, *args, **kwargs) -> None:
        raise RssConfigError(f"{self.address}: RSS is the physical function's to set on an 82576 virtual function",
                             "open the VF with one rx queue; spread flows over several VFs instead")

    def disable_rss(self) -> None:
        """RSS is never on for this driver's VF."""

    @property
    def rss_enabled(self) -> bool:
        return False


def _random_mac() -> bytes:
    """A random locally administered unicast address (as Linux's igbvf picks one)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return bytes(raw)
