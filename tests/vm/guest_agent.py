"""Runs inside the test guest: executes the scripts the host drops into the work share.

Protocol (all files in the work share, one job at a time, N = 0, 1, ...):
  host writes  job-N.json  {"script": source, "timeout": seconds}  (atomically)
  agent writes job-N.py (the script, so tracebacks name it), job-N.out and
               job-N.err (the script's unbuffered stdout and stderr, written
               as it runs), then job-N.rc {"exit_code", "timed_out", "seconds"}
  host writes  stop  to end the agent (the guest then powers off)
The agent writes ``ready`` when it starts. Standard library only.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.05
KILL_WAIT_SECONDS = 5.0  # a process stuck in the kernel (D state) may never die


def write_atomically(path: Path, text: str) -> None:
    part = path.with_name("." + path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def run_job(work: Path, n: int) -> None:
    job = json.loads((work / f"job-{n}.json").read_text())
    script = work / f"job-{n}.py"
    script.write_text(job["script"])
    timed_out = False
    t0 = time.monotonic()
    with open(work / f"job-{n}.out", "wb") as out, open(work / f"job-{n}.err", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-u", str(script)], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=work)
        try:
            exit_code = proc.wait(job["timeout"])
        except subprocess.TimeoutExpired:
            proc.kill()
            timed_out = True
            err.write(f"\n[guest agent] killed after {job['timeout']} s\n".encode())
            try:
                exit_code = proc.wait(KILL_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                exit_code = -9
                err.write(f"[guest agent] pid {proc.pid} did not die: stuck in the kernel; "
                          f"see the guest console\n".encode())
    result = {"exit_code": exit_code, "timed_out": timed_out, "seconds": time.monotonic() - t0}
    write_atomically(work / f"job-{n}.rc", json.dumps(result))


def main(work: Path) -> int:
    write_atomically(work / "ready", str(os.getpid()))
    n = 0
    while True:
        if (work / f"job-{n}.json").exists():
            run_job(work, n)
            n += 1
        elif (work / "stop").exists():
            return 0
        else:
            time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
