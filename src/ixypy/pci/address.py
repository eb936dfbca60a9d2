"""PCI addresses: ``DDDD:BB:DD.F``, parsed and normalised."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidAddress

_ADDR_RE = re.compile(r"(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")


@dataclass(frozen=True, order=True)
class PciAddress:
    """A PCI address ``DDDD:BB:DD.F``; :meth:`parse` accepts ``BB:DD.F`` too."""

    domain: int
    bus: int
    device: int
    function: int

    @classmethod
    def parse(cls, text: object) -> "PciAddress":
        if isinstance(text, PciAddress):
            return text
        if not isinstance(text, str):
            raise InvalidAddress(f"invalid PCI address {text!r}: expected a string like 0000:03:00.0")
        m = _ADDR_RE.fullmatch(text.strip())
        if m is None:
            raise InvalidAddress(f"invalid PCI address {text!r}: expected DDDD:BB:DD.F, e.g. 0000:03:00.0")
        domain, bus, dev, fn = (int(g, 16) if g else 0 for g in m.groups())
        if dev > 0x1F:
            raise InvalidAddress(f"invalid PCI address {text!r}: device number {dev:#x} is above 0x1f")
        return cls(domain, bus, dev, fn)

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.device:02x}.{self.function:x}"


def normalize_address(text: object) -> str:
    """``"03:00.0"`` -> ``"0000:03:00.0"``; raises :class:`InvalidAddress`."""
    return str(PciAddress.parse(text))
