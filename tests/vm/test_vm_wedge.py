"""A guest kernel that wedges (an idle CPU whose timer never fires: an
emulator fault seen once in CI) is told apart from every other failure, and a
shared guest that wedges is booted again and the script run once more."""
from __future__ import annotations

import time

import pytest

from .guest import GuestError, GuestWedged, SharedGuest, kernel_wedge

# As the CI run of 2026-11-30 printed it (QEMU 10.0 TCG, Linux 6.1, two vCPUs)
WEDGED = """\
[   92.143527] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
[   92.143971] rcu: 	1-...!: (0 ticks this GP) idle=def8/0/0x0 softirq=6677/6677 fqs=0 (false positive?)
[   92.144403] 	(detected by 0, t=5252 jiffies, g=15441, q=28 ncpus=2)
[   91.135942] NMI backtrace for cpu 1 skipped: idling at native_safe_halt+0xb/0x10
[   92.144864] rcu: rcu_preempt kthread timer wakeup didn't happen for 5251 jiffies! g15441 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x402
[   92.145547] rcu: 	Possible timer handling issue on cpu=1 timer-softirq=3047
"""

# A CPU that does not idle but spins (what a driver bug in the kernel looks like)
BUSY = """\
[   40.000001] rcu: INFO: rcu_preempt self-detected stall on CPU
[   40.000002] rcu: 	0-....: (5250 ticks this GP) idle=3514/1/0x4000000000000000 softirq=100/100 fqs=2600
[   40.000003] RIP: 0010:uio_read+0x40/0x100 [uio]
"""


def test_the_wedge_of_the_ci_run_is_recognised():
    """Mutation tried for the cases below: a wedge without the timer line
    (kernel_wedge not checking _NO_TIMER): the third case failed."""
    wedge = kernel_wedge("Booting the kernel.\n" + WEDGED)
    assert wedge is not None and "CPU 1 idles in native_safe_halt" in wedge


@pytest.mark.parametrize("console", [
    "",
    BUSY,                                                                 # a stall, but of a busy CPU
    WEDGED.replace("kthread timer wakeup didn't happen", "kthread starved"),  # the timer did fire
    "\n".join(line for line in WEDGED.splitlines() if "detected stalls" not in line),
], ids=["quiet", "busy-cpu", "timer-fired", "no-stall"])
def test_other_failures_are_not_a_wedge(console):
    assert kernel_wedge(console) is None


# What the guest kernel prints when it wedges, written to its log, then the
# agent stopped: to the host this is the wedge (no answer, that console)
FAKE_WEDGE = """
import os, signal, time
if time.time() < UNTIL:
    with open("/dev/kmsg", "w") as kmsg:
        for line in WEDGED.splitlines():
            kmsg.write("<3>" + line.split("] ", 1)[1] + "\\n")
            kmsg.flush()
    os.kill(os.getppid(), signal.SIGSTOP)
    time.sleep(600)
print("answered")
"""


@pytest.mark.vm
def test_a_shared_guest_that_wedges_is_booted_again(guest_image, tmp_path):
    """The first run wedges its guest (until UNTIL); the script then runs on a
    second guest and answers. Mutations tried: SharedGuest.run without the
    reboot: the GuestWedged reached the test; ignoring rerun_if_wedged=False:
    no GuestWedged raised. Both failed."""
    with SharedGuest([], tmp_path, guest_image) as shared:
        # the first run starts within seconds and the host waits 15 + 30 s for it
        script = f"UNTIL = {time.time() + 30!r}\nWEDGED = {WEDGED!r}\n" + FAKE_WEDGE
        first = shared.current
        result = shared.run(script, timeout=15)
        assert result.stdout.strip() == "answered"
        assert shared.current is not first and len(shared.wedges) == 1
        assert "CPU 1 idles in native_safe_halt" in shared.wedges[0]
        with pytest.raises(GuestError) as failed:  # a script's own failure is not retried
            shared.run("raise SystemExit(3)")
        assert not isinstance(failed.value, GuestWedged) and len(shared.wedges) == 1
        script = f"UNTIL = {time.time() + 30!r}\nWEDGED = {WEDGED!r}\n" + FAKE_WEDGE
        with pytest.raises(GuestWedged):                # what the soak asks for: no second chance
            shared.run(script, timeout=15, rerun_if_wedged=False)
        assert len(shared.wedges) == 1
