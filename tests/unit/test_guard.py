"""The DMA guard clears Bus Master Enable when its owner dies, however it
dies, and leaves the device alone when the owner releases it. Real processes
are killed; the config space is a file laid out as the kernel's sysfs
``config`` (COMMAND, 16 bits, at offset 4)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ixypy.guard import DmaGuard

SRC = Path(__file__).resolve().parents[2] / "src"
COMMAND_RUNNING = 0x0406          # memory space, bus master, parity response
COMMAND_STOPPED = 0x0402


def command(config: Path) -> int:
    return int.from_bytes(config.read_bytes()[4:6], "little")


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config"
    path.write_bytes(b"\x86\x80\xfb\x10" + COMMAND_RUNNING.to_bytes(2, "little") + bytes(58))
    return path


def owner(config: Path, then: str) -> subprocess.Popen:
    """A process that opens a guard for config, says so, then does `then`;
    in a process group of its own, as a command run from a shell is."""
    code = f"import sys, time\nfrom ixypy.guard import DmaGuard\nguard = DmaGuard({str(config)!r})\n" \
           f"print(guard.pid, flush=True)\n{then}\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC)}, start_new_session=True)
    proc.guard_pid = int(proc.stdout.readline())
    return proc


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("death", ["SIGKILL", "segfault", "os._exit"])
def test_owner_death_clears_bus_master(config, death):
    then = {"SIGKILL": "time.sleep(60)", "segfault": "import ctypes; ctypes.string_at(0)",
            "os._exit": "import os; os._exit(3)"}[death]
    proc = owner(config, then)
    if death == "SIGKILL":
        proc.kill()
    proc.wait(timeout=30)
    assert gone(proc.guard_pid)          # the guard acted and left
    assert command(config) == COMMAND_STOPPED


def test_release_leaves_the_device_alone(config):
    """The negative control: a guard dismissed by close() must not touch
    the device (by then it may belong to the kernel's driver again)."""
    proc = owner(config, "guard.release()\nprint('released', flush=True)\ntime.sleep(60)")
    assert proc.stdout.readline().strip() == "released"
    assert gone(proc.guard_pid)
    proc.kill()
    proc.wait()
    assert command(config) == COMMAND_RUNNING


def test_ctrl_c_to_the_owners_group_does_not_stop_the_guard(config):
    """A terminal's Ctrl-C reaches the whole foreground group; this owner
    dies of it without closing, and its guard must still be there to act."""
    proc = owner(config, "time.sleep(60)")
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    assert gone(proc.guard_pid)
    assert command(config) == COMMAND_STOPPED


def test_guard_that_cannot_open_the_device_is_refused(tmp_path):
    from ixypy.errors import DeviceError

    with pytest.raises(DeviceError, match="did not start"):
        DmaGuard(tmp_path / "missing")
