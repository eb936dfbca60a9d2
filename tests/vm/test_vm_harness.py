"""The guest rig itself: a failing script is reported with its traceback;
stdout written before a crash is kept; a runaway script is killed."""
import re

import pytest

from .guest import GuestError

pytestmark = pytest.mark.vm

NO_NICS: list = []


def test_failing_script_reports_traceback(run_in_guest):
    script = (
        "print('before the failure', flush=True)\n"
        "def inner():\n"
        "    raise RuntimeError('boom from the guest')\n"
        "inner()\n"
    )
    result = run_in_guest(script, nics=NO_NICS, check=False)
    assert result.exit_code == 1
    assert "before the failure" in result.stdout
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: boom from the guest" in result.stderr
    assert "in inner" in result.stderr
    with pytest.raises(GuestError) as failure:
        result.check()
    message = str(failure.value)
    assert "exited with 1" in message and "RuntimeError: boom from the guest" in message
    assert "guest console" in message


def test_script_timeout_kills_script_not_guest(guest):
    # 15 s: enough for Python to start under TCG on a loaded host, far below the 60 s sleep
    result = guest.run("import time\nprint('started')\ntime.sleep(60)\n", timeout=15, check=False)
    assert result.timed_out and result.exit_code != 0
    assert "started" in result.stdout  # unbuffered: kept although the script was killed
    # what the kernel said of the script before the kill (without report_stuck: absent)
    assert "kernel state of the script's tasks" in result.stderr
    assert re.search(r"pid \d+ tid \d+ python\S* State:\s+S \(sleeping\)", result.stderr), result.stderr
    assert "blocked tasks (sysrq w)" in result.stderr
    assert guest.run("print(6 * 7)").stdout.strip() == "42"  # the guest still answers
