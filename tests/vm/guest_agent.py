"""Runs inside the test guest: executes the scripts the host drops into the work share.

Protocol (all files in the work share, one job at a time, N = 0, 1, ...):
  host writes  job-N.json  {"script": source, "timeout": seconds}  (atomically)
  agent writes job-N.py (the script, so tracebacks name it), job-N.out and
               job-N.err (the script's unbuffered stdout and stderr, written
               as it runs), then job-N.rc {"exit_code", "timed_out", "seconds"}
  host writes  stop  to end the agent (the guest then powers off)
The agent writes ``ready`` when it starts. Standard library only.

When a script times out, the agent first writes to job-N.err what the
kernel says of it: each process and thread of the script's tree, its state,
wchan and kernel stack, and the tasks the kernel lists as blocked (sysrq w);
again if the killed script does not die. The kernel's hung-task detector
reports tasks blocked for HUNG_TASK_SECONDS on the console.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 0.05
KILL_WAIT_SECONDS = 5.0  # a process stuck in the kernel (D state) may never die
HUNG_TASK_SECONDS = 30


def read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"({e.strerror})"


def process_tree(root: int) -> list:
    """root and its descendants."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read(f"/proc/{entry}/stat")
            if ")" in stat:
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def kernel_state(root: int) -> str:
    """State, wchan and kernel stack of every thread of root's process tree."""
    lines = []
    for pid in process_tree(root):
        for tid in sorted(os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}/task") else []):
            task = f"/proc/{pid}/task/{tid}"
            state = next((l for l in read(f"{task}/status").splitlines() if l.startswith("State:")), "State: ?")
            lines.append(f"pid {pid} tid {tid} {read(f'{task}/comm').strip()} {state} "
                         f"wchan {read(f'{task}/wchan').strip() or '-'}")
            lines.extend("    " + l for l in read(f"{task}/stack").splitlines())
    return "\n".join(lines)


def blocked_tasks() -> str:
    """The kernel's list of blocked (D state) tasks: sysrq w, read back from /dev/kmsg."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return f"(/dev/kmsg: {e.strerror})"
    try:
        os.lseek(fd, 0, os.SEEK_END)
        with open("/proc/sysrq-trigger", "w") as trigger:
            trigger.write("w")
        records = []
        while True:
            try:
                records.append(os.read(fd, 8192).decode(errors="replace").split(";", 1)[-1].rstrip())
            except BlockingIOError:
                break
        return "\n".join(records)
    except OSError as e:
        return f"(sysrq w: {e.strerror})"
    finally:
        os.close(fd)


def report_stuck(err, pid: int, when: str) -> None:
    err.write(f"[guest agent] {when}: kernel state of the script's tasks\n{kernel_state(pid)}\n"
              f"[guest agent] blocked tasks (sysrq w)\n{blocked_tasks()}\n".encode())
    err.flush()


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
            timed_out = True
            err.write(f"\n[guest agent] timed out after {job['timeout']} s\n".encode())
            report_stuck(err, proc.pid, "before the kill")
            proc.kill()
            err.write(b"[guest agent] killed\n")
            try:
                exit_code = proc.wait(KILL_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                exit_code = -9
                err.write(f"[guest agent] pid {proc.pid} did not die: stuck in the kernel\n".encode())
                report_stuck(err, proc.pid, "after the kill")
    result = {"exit_code": exit_code, "timed_out": timed_out, "seconds": time.monotonic() - t0}
    write_atomically(work / f"job-{n}.rc", json.dumps(result))


def main(work: Path) -> int:
    hung = "/proc/sys/kernel/hung_task_timeout_secs"
    if os.path.exists(hung):
        with open(hung, "w") as f:
            f.write(str(HUNG_TASK_SECONDS))
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
