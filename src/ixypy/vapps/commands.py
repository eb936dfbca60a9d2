"""The ixypy subcommands of the vector apps: firewall, nat and flowmon, each
forwarding between two devices in both directions."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import click

from ..device import Device
from ..errors import MissingDependency
from .loop import Step


def _require_numpy(command: str) -> None:
    """The vector commands run on NumPy, an extra: say so in one line."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise MissingDependency(f"`ixypy {command}` needs NumPy, which is not installed") from None


def _limits(f):
    f = click.option("--duration", "-t", type=click.FloatRange(min=0, min_open=True),
                     help="Stop after this many seconds.")(f)
    f = click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after sending this many packets.")(f)
    f = click.option("--batch", "batch_size", type=click.IntRange(1, 512), default=256, show_default=True,
                     help="Packets per rx/tx call.")(f)
    f = click.option("--queues", type=click.IntRange(1, 64), default=1, show_default=True,
                     help="Queues to use: queue i of both devices in a worker process of its own (they run on "
                          "as many cores); ixgbe and igb spread received flows over the queues by RSS.")(f)
    return f


def json_file_option(what: str):
    return click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
                        help=f"At exit, write {what} as JSON to this file ('-': to stdout, instead of the text).")


def check_json_writable(json_file: Optional[Path]) -> None:
    """A --json path that cannot be written fails now, not after the run."""
    if json_file is not None and str(json_file) != "-":
        json_file.open("a").close()


def write_json(json_file: Path, text: str) -> bool:
    """Write text to json_file, or to stdout for '-'; True when it went to
    stdout (where it stands instead of the text summary)."""
    if str(json_file) == "-":
        click.echo(text)
        return True
    json_file.write_text(text + "\n")
    return False


def _summary(devices: List[str], seconds: float, done: "Forwarded", **counters: Any) -> str:
    return json.dumps({"devices": devices, "seconds": seconds, "forwarded": done.sent, "per_queue": done.per_queue,
                       **counters})


S = TypeVar("S", bound=Step)
Steps = Sequence[S]               # the processing of each direction: dev1 to dev2, dev2 to dev1
Tally = Dict[str, Any]            # what the steps counted: numbers or NumPy arrays, summed over workers


@dataclass
class Forwarded:
    """What _run forwarded: packets sent in total and per queue, and the
    steps' tallies summed over the queues."""

    sent: int
    per_queue: List[int]
    tally: Tally


def _pairs(a: Device, b: Device, queue: int, steps: Steps):
    return [(a.rx_queue(queue), b.tx_queue(queue), steps[0]), (b.rx_queue(queue), a.tx_queue(queue), steps[1])]


def _run(dev1: str, dev2: str, make_steps: Callable[[], Sequence[S]], tally: Callable[[Sequence[S]], Tally], batch_size: int,
         count: Optional[int], queues: int = 1, duration: Optional[float] = None,
         until: Optional[Callable[[], bool]] = None) -> Forwarded:
    """Forward both ways until Ctrl-C, SIGTERM, `count` packets sent,
    duration or until() (called between batches, in the loop's thread;
    one queue only) returns True. With several queues, queue i of both
    devices runs in worker process i (ixypy.processes), each with steps of
    its own, and the devices spread flows over the queues (spread_flows)."""
    from .. import open as open_device
    from ..apps import Limits
    from ..cli import StopOnSignals, spread_flows
    from ..processes import Progress, run_workers, totals
    from .loop import forward

    with open_device(dev1, queues, queues) as a, open_device(dev2, queues, queues) as b, StopOnSignals() as signalled:
        if queues == 1:
            steps = make_steps()
            deadline = None if duration is None else time.monotonic() + duration
            sent = forward(_pairs(a, b, 0, steps), batch_size, lambda: (
                signalled() or (until is not None and until())
                or (deadline is not None and time.monotonic() >= deadline)), count)
            return Forwarded(sent, [sent], tally(steps))
        for dev in (a, b):
            spread_flows(dev, queues)

        def work(queue: int, progress: Progress) -> Tuple[int, Tally]:
            steps = make_steps()
            sent = forward(_pairs(a, b, queue, steps), batch_size, progress.stopped, None, progress.sent)
            return sent, tally(steps)

        results: List[Tuple[int, Tally]] = run_workers(queues, work, Limits(count, duration, signalled), [a, b])
        return Forwarded(sum(r[0] for r in results), [r[0] for r in results], totals([r[1] for r in results]))


def _per_queue(done: Forwarded) -> str:
    return f" (per queue {done.per_queue})" if len(done.per_queue) > 1 else ""


@click.command()
@click.argument("dev1")
@click.argument("dev2")
@click.option("--rules", "rules_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rules file: 'accept|drop proto src sport dst dport' per line (src, dst: an IPv4 or IPv6 "
                   "prefix, or any), 'default accept|drop'.")
@json_file_option("the counters (forwarded, passed, dropped, per rule)")
@_limits
def firewall(dev1: str, dev2: str, rules_file: Path, json_file: Optional[Path], batch_size: int, count: Optional[int],
             duration: Optional[float], queues: int) -> None:
    """Forward between two devices, dropping what the 5-tuple rules refuse."""
    _require_numpy("firewall")
    from .firewall import Firewall

    try:
        Firewall(rules_file, batch_size)              # a bad rules file fails before the devices open
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--rules")
    check_json_writable(json_file)
    start = time.monotonic()
    done = _run(dev1, dev2, lambda: [Firewall(rules_file, batch_size), Firewall(rules_file, batch_size)],
                lambda fws: {"passed": sum(fw.passed for fw in fws), "dropped": sum(fw.dropped for fw in fws),
                             "counters": sum(fw.counters for fw in fws)},
                batch_size, count, queues, duration)
    t = done.tally
    if json_file is not None and write_json(json_file, _summary(
            [dev1, dev2], round(time.monotonic() - start, 3), done, passed=t["passed"], dropped=t["dropped"],
            per_rule=t["counters"].tolist())):
        return
    click.echo(f"forwarded {done.sent}{_per_queue(done)}; passed {t['passed']}, dropped {t['dropped']}; "
               f"per rule (last: default) {t['counters'].tolist()}")


@click.command()
@click.argument("inside")
@click.argument("outside")
@click.option("--inside-prefix", required=True, help="e.g. 10.0.0.0/8")
@click.option("--outside-prefix", required=True, help="e.g. 198.51.100.0/24... of the same length")
@click.option("--port", "ports", multiple=True, help="FROM:TO destination port map, outbound (repeatable).")
@json_file_option("the counters (forwarded, rewritten each way)")
@_limits
def nat(inside: str, outside: str, inside_prefix: str, outside_prefix: str, ports, json_file: Optional[Path],
        batch_size: int, count: Optional[int], duration: Optional[float], queues: int) -> None:
    """1:1 prefix NAT and port mapping between an inside and an outside device."""
    _require_numpy("nat")
    from .nat import Nat

    try:
        pmap = {int(a): int(b) for a, b in (p.split(":") for p in ports)}

        def steps() -> List[Nat]:
            return [Nat(inside_prefix, outside_prefix, pmap, batch_size, outbound=True),
                    Nat(inside_prefix, outside_prefix, pmap, batch_size, outbound=False)]

        steps()                                       # bad prefixes fail before the devices open
    except ValueError as err:
        raise click.UsageError(str(err))
    check_json_writable(json_file)
    start = time.monotonic()
    done = _run(inside, outside, steps, lambda n: {"out": n[0].rewritten, "in": n[1].rewritten},
                batch_size, count, queues, duration)
    if json_file is not None and write_json(json_file, _summary(
            [inside, outside], round(time.monotonic() - start, 3), done, rewritten_out=done.tally["out"],
            rewritten_in=done.tally["in"])):
        return
    click.echo(f"forwarded {done.sent}{_per_queue(done)}; rewritten out {done.tally['out']}, in {done.tally['in']}")


@click.command()
@click.argument("dev1")
@click.argument("dev2")
@click.option("--top", "top_n", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="Flows shown, most bytes first.")
@click.option("--max-flows", type=click.IntRange(1, 1 << 24), default=65536, show_default=True,
              help="Flows counted; packets of flows beyond count as untracked.")
@json_file_option("every flow")
@_limits
def flowmon(dev1: str, dev2: str, top_n: int, max_flows: int, json_file: Optional[Path], batch_size: int,
            count: Optional[int], duration: Optional[float], queues: int) -> None:
    """Forward between two devices, counting packets and bytes per flow
    (5-tuple, IPv4 and IPv6): the top talkers live on a terminal (one queue
    only), every flow as JSON at exit (--json). With --queues, each worker
    counts into a table of its own, and the tables are merged at exit."""
    import sys

    from rich.console import Console

    _require_numpy("flowmon")
    from .flowmon import FlowMonitor, FlowTable, LiveView, top_table

    table = FlowTable(max_flows)

    def steps() -> List[FlowMonitor]:
        mine = table if queues == 1 else FlowTable(max_flows)
        return [FlowMonitor(mine, batch_size), FlowMonitor(mine, batch_size)]

    to_stdout = json_file is not None and str(json_file) == "-"
    check_json_writable(json_file)
    live = LiveView(table, top_n) if sys.stdout.isatty() and not to_stdout and queues == 1 else None
    start = time.monotonic()

    def until() -> bool:
        if live is not None:
            live.refresh()
        return False

    try:
        done = _run(dev1, dev2, steps, lambda monitors: {"tables": [monitors[0].table]}, batch_size, count, queues,
                    duration, until if live is not None else None)
    finally:
        if live is not None:
            live.stop()
    seconds = round(time.monotonic() - start, 3)
    if queues > 1:
        for mine in done.tally["tables"]:
            table.merge(mine)
    if json_file is not None and write_json(json_file, table.dump(devices=[dev1, dev2], seconds=seconds,
                                                                 forwarded=done.sent)):
        return
    if live is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 120))
        console.print(top_table(table, top_n, seconds))          # rates: averages over the run
    t = table.totals()
    click.echo(f"forwarded {done.sent}{_per_queue(done)}; {t['flows']} flows, {t['packets']} packets, {t['bytes']} "
               f"bytes; other {t['other_packets']} packets, untracked {t['untracked_packets']} packets; {seconds:.2f} s")


COMMANDS = [firewall, nat, flowmon]
