"""The wire delay options of a sim address (ixypy.sim.parse): times in ns,
us or ms, and the one-line InvalidAddress for what is not one."""
from __future__ import annotations

import pytest

from ixypy.errors import InvalidAddress
from ixypy.sim import DEFAULT_DELAY_FRAMES, parse


@pytest.mark.parametrize("address, delay, jitter, frames", [
    ("sim:pair0,delay=20us,jitter=2us", 20_000, 2_000, DEFAULT_DELAY_FRAMES),
    ("sim:loop,delay=1.5ms", 1_500_000, 0, DEFAULT_DELAY_FRAMES),
    ("sim:igb-pair1,jitter=500ns,delay=0ns,delay_frames=8", 0, 500, 8),
    ("sim:loop", 0, 0, DEFAULT_DELAY_FRAMES),
])
def test_delay_options_in_ns(address: str, delay: int, jitter: int, frames: int):
    parsed = parse(address)
    assert (parsed.delay, parsed.jitter, parsed.delay_frames) == (delay, jitter, frames)


@pytest.mark.parametrize("address, message", [
    ("sim:loop,delay=20", "delay='20' is no time"),
    ("sim:loop,delay=-1us", "delay='-1us' is no time"),
    ("sim:loop,jitter=2s", "jitter='2s' is no time"),
    ("sim:loop,delay=1001ms", "delay='1001ms' is no time"),
    ("sim:loop,delay_frames=0", "delay_frames='0' is no count"),
    ("sim:sink,delay=1us", "no option 'delay' on a sink wire"),
    ("sim:source,jitter=1us", "no option 'jitter' on a source wire"),
    ("sim:virtio-loop,delay=1us", "no option 'delay' on a loop wire"),
])
def test_a_bad_delay_option_is_one_line_with_a_hint(address: str, message: str):
    with pytest.raises(InvalidAddress) as err:
        parse(address)
    assert message in str(err.value)
    assert "hint:" in str(err.value) and "\n" not in str(err.value)
