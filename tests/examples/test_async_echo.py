"""examples/async_echo.py runs as written against the sim pair, and stops
cleanly on Ctrl-C."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from .test_examples import ROOT, run


def test_async_echo():
    stdout = run("async_echo.py", "5000")
    assert "echoed 5000 packets in 25 bursts, 0 out of order" in stdout, stdout
    sleeps, wakeups = map(int, re.search(r"server slept (\d+) times, woken (\d+) times", stdout).groups())
    assert wakeups >= 24 and sleeps >= wakeups, stdout       # it slept between bursts, woken by its interrupt
    assert "rx_packets=5000" in stdout and "tx_packets=5000" in stdout
    assert stdout.rstrip().endswith("devices closed")


def test_async_echo_ctrl_c():
    """SIGINT while it runs: asyncio.run cancels main(), the server task is
    cancelled, the counts are printed, the devices closed, exit status 130,
    no traceback. Mutation shown to fail: the KeyboardInterrupt handler
    removed (a traceback, status -2)."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "async_echo.py"), str(10 ** 9)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        first = proc.stdout.readline()
        assert first.strip() == "echo running", (first, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert re.search(r"echoed \d+ packets in \d+ bursts, 0 out of order", rest), rest
    assert rest.rstrip().endswith("devices closed"), rest
