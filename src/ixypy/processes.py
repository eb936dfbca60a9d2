"""A process per queue, for applications that run Python for every batch
(the vector apps): worker threads would take turns at the GIL, worker
processes each get a core.

The caller opens the devices and sets them up (queues, RSS); run_workers
then forks one worker per queue. A forked worker shares with its parent
what driving a queue needs: the register BARs (MAP_SHARED mappings of the
BAR files or VFIO regions; the sim's models live in shared memory), the DMA
memory (hugetlbfs, MAP_SHARED; the sim's too) and the UIO or VFIO file
descriptors. Worker i drives its queue pair i only and nothing else of the
devices: each rx queue fills from a mempool of its own, so no two processes
touch one pool (a pool takes no lock), and the frames a worker sends free
into the pool they came from, which is its own. The parent does not drive a
queue while workers run; it keeps the devices open and closes them after
the last worker has ended, which stops their DMA.

Stopping: the parent sets a flag in memory it shares with the workers when
a limit is reached, when its stop() says so (the CLI's Ctrl-C and SIGTERM),
when a worker fails, or when a worker's process ends early; each worker
looks at it once a batch (Progress.stopped). Ctrl-C from a terminal reaches
every process of the group: a worker that gets SIGINT or SIGTERM sets the
flag too, so all stop, and the parent returns as after any stop. A worker
that dies (a signal, an exception) stops the others and run_workers raises
WorkerFailed once all have ended; a worker that does not stop within GRACE
seconds is killed. If the parent dies, the kernel kills its workers
(PR_SET_PDEATHSIG), and the device's last file descriptors close with them:
VFIO resets the NIC, the UIO guard clears its bus mastering (ixypy.guard).
"""
from __future__ import annotations

import ctypes
import mmap
import os
import pickle
import select
import signal
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar

from .apps import STRETCH, Limits, _Clock
from .device import Device
from .errors import WorkerFailed

T = TypeVar("T")

# seconds a worker has to stop once asked, before it is killed
GRACE = 5.0
PR_SET_PDEATHSIG = 1       # linux/prctl.h


class Progress:
    """What a worker shares with its parent and the other workers: the stop
    flag and its packet count (read by the parent for the limits)."""

    def __init__(self, shared: memoryview, index: int) -> None:
        self._shared = shared          # int64: [0] the stop flag, [1 + i] worker i's packets
        self.index = index

    def stopped(self) -> bool:
        return self._shared[0] != 0

    def stop(self) -> None:
        self._shared[0] = 1

    def sent(self, packets: int) -> None:
        """The packets this worker has sent so far."""
        self._shared[1 + self.index] = packets


Work = Callable[[int, Progress], T]


@dataclass
class _Worker(Generic[T]):
    index: int
    pid: int
    out: int                                   # read end of the pipe its result comes through
    data: bytearray = field(default_factory=bytearray)
    overdue: bool = False                      # killed: it did not stop within GRACE
    outcome: Optional[Tuple[bool, Any]] = None    # once it ended: (True, its result) or (False, why it failed)

    def reap(self, block: bool) -> bool:
        """Has it ended? Once it has: all it wrote, read, and its outcome."""
        if self.outcome is None:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if not pid:
                return False
            while self.out >= 0:
                self.read()
            self.outcome = self._outcome(status)
            self.data = bytearray()
        return True

    def read(self) -> None:
        """What its pipe holds (at least one byte, or the end)."""
        chunk = os.read(self.out, 1 << 16)
        if chunk:
            self.data += chunk
        else:
            os.close(self.out)
            self.out = -1

    def _outcome(self, status: int) -> Tuple[bool, Any]:
        if self.overdue:
            return False, f"did not stop within {GRACE} s of being asked to: killed"
        if os.WIFSIGNALED(status):
            return False, f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        try:
            return pickle.loads(bytes(self.data))
        except Exception:
            return False, f"ended with status {os.waitstatus_to_exitcode(status)} and no result"

    def failure(self) -> Optional[str]:
        """Why it failed, or None if it ended with a result (it has ended)."""
        assert self.outcome is not None
        ok, value = self.outcome
        return None if ok else value

    def result(self) -> T:
        assert self.outcome is not None
        return self.outcome[1]


def run_workers(queues: int, work: Work, limits: Limits, devices: Sequence[Device],
                tick: Optional[Callable[[float], None]] = None) -> List[T]:
    """Run work(i, progress) in a forked process per queue i until it returns
    or until limits (packets: the sum of what the workers report with
    progress.sent; work must return once progress.stopped()). Returns the
    workers' results in queue order (they must pickle). devices: the
    devices the workers drive, looked at once a second (DeviceGone).
    Raises WorkerFailed if a worker raised or died; all have ended then."""
    shared = memoryview(mmap.mmap(-1, 8 * (queues + 1))).cast("q")        # MAP_SHARED | MAP_ANONYMOUS
    workers: List[_Worker] = []
    try:
        for i in range(queues):
            workers.append(_fork(i, work, Progress(shared, i)))
        _supervise(workers, shared, limits, _Clock(tick, devices))
    finally:
        shared[0] = 1
        _end(workers)
    failed = [(w.index, why) for w in workers if (why := w.failure()) is not None]
    if failed:
        raise WorkerFailed("; ".join(f"worker {i} (queue {i}) {why}" for i, why in failed))
    return [w.result() for w in workers]


def _fork(index: int, work: Work, progress: Progress) -> _Worker:
    out, into = os.pipe()
    parent = os.getpid()
    with warnings.catch_warnings():
        # Python warns of fork with threads running (the sim's engine, an
        # interrupt thread): the worker runs no code of theirs, and what it
        # shares with them (the models) takes process-shared locks
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os.close(out)
        _work(index, work, progress, into, parent)
    os.close(into)
    return _Worker(index, pid, out)


def _work(index: int, work: Work, progress: Progress, into: int, parent: int) -> None:
    """The worker process: never returns, never runs the parent's clean-up
    (closing the devices is the parent's)."""
    code = 1
    try:
        _die_with(parent)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: progress.stop())
        message = (True, work(index, progress))
        code = 0
    except BaseException as err:
        message = (False, f"raised {type(err).__name__}: {err}")
    try:
        _write_all(into, pickle.dumps(message))
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:           # it ended before prctl
        os._exit(1)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _drain(workers: Sequence[_Worker], timeout: float) -> None:
    """Read what the workers' pipes hold, waiting up to timeout for some
    (a worker blocks on a full pipe until its result is read)."""
    readers = {w.out: w for w in workers if w.out >= 0}
    if not readers:
        time.sleep(timeout)
        return
    for fd in select.select(list(readers), [], [], timeout)[0]:
        readers[fd].read()


def _supervise(workers: Sequence[_Worker], shared: memoryview, limits: Limits, clock: _Clock) -> None:
    """Until all workers ended, one failed, or the first stop."""
    elapsed = 0.0
    while not limits.reached(sum(shared[1:]), elapsed) and not shared[0]:
        _drain(workers, STRETCH)
        ended = [w for w in workers if w.reap(block=False)]
        if len(ended) == len(workers) or any(w.failure() is not None for w in ended):
            return
        elapsed = clock.elapsed()


def _end(workers: Sequence[_Worker]) -> None:
    """Wait for every worker to end (they were asked to), killing those
    that take longer than GRACE; close the pipes."""
    deadline = time.monotonic() + GRACE
    while not all(w.reap(block=False) for w in workers):
        if time.monotonic() >= deadline:
            for w in workers:
                if w.outcome is None:
                    w.overdue = True
                    os.kill(w.pid, signal.SIGKILL)
                    w.reap(block=True)
            break
        _drain(workers, 0.01)


def totals(results: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The workers' tallies (dicts of numbers, NumPy arrays or lists) summed key by key."""
    out: Dict[str, Any] = {}
    for tally in results:
        for key, value in tally.items():
            out[key] = out[key] + value if key in out else value
    return out
