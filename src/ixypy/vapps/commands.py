"""The ixypy subcommands of the vector apps: firewall, nat and flowmon, each
forwarding between two devices in both directions."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import click


def _limits(f):
    f = click.option("--count", "-n", type=click.IntRange(min=1), help="Stop after sending this many packets.")(f)
    f = click.option("--batch", "batch_size", type=click.IntRange(1, 512), default=256, show_default=True,
                     help="Packets per rx/tx call.")(f)
    return f


def _run(dev1: str, dev2: str, steps, batch_size: int, count: Optional[int],
         until: Optional[Callable[[], bool]] = None) -> int:
    """Forward both ways until Ctrl-C, SIGTERM, `count` packets sent or
    until() (called between batches, in the loop's thread) returns True."""
    from .. import open as open_device
    from ..cli import StopOnSignals
    from .loop import forward

    with open_device(dev1) as a, open_device(dev2) as b, StopOnSignals() as signalled:
        stop = signalled if until is None else (lambda: signalled() or until())
        pairs = [(a.rx_queue(0), b.tx_queue(0), steps[0]), (b.rx_queue(0), a.tx_queue(0), steps[1])]
        return forward(pairs, batch_size, stop, count)


@click.command()
@click.argument("dev1")
@click.argument("dev2")
@click.option("--rules", "rules_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rules file: 'accept|drop proto src sport dst dport' per line, 'default accept|drop'.")
@_limits
def firewall(dev1: str, dev2: str, rules_file: Path, batch_size: int, count: Optional[int]) -> None:
    """Forward between two devices, dropping what the 5-tuple rules refuse."""
    from .firewall import Firewall

    try:
        fws = [Firewall(rules_file, batch_size), Firewall(rules_file, batch_size)]
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--rules")
    sent = _run(dev1, dev2, fws, batch_size, count)
    click.echo(f"forwarded {sent}; passed {fws[0].passed + fws[1].passed}, dropped {fws[0].dropped + fws[1].dropped}; "
               f"per rule (last: default) {(fws[0].counters + fws[1].counters).tolist()}")


@click.command()
@click.argument("inside")
@click.argument("outside")
@click.option("--inside-prefix", required=True, help="e.g. 10.0.0.0/8")
@click.option("--outside-prefix", required=True, help="e.g. 198.51.100.0/24... of the same length")
@click.option("--port", "ports", multiple=True, help="FROM:TO destination port map, outbound (repeatable).")
@_limits
def nat(inside: str, outside: str, inside_prefix: str, outside_prefix: str, ports, batch_size: int,
        count: Optional[int]) -> None:
    """1:1 prefix NAT and port mapping between an inside and an outside device."""
    from .nat import Nat

    try:
        pmap = {int(a): int(b) for a, b in (p.split(":") for p in ports)}
        steps = [Nat(inside_prefix, outside_prefix, pmap, batch_size, outbound=True),
                 Nat(inside_prefix, outside_prefix, pmap, batch_size, outbound=False)]
    except ValueError as err:
        raise click.UsageError(str(err))
    sent = _run(inside, outside, steps, batch_size, count)
    click.echo(f"forwarded {sent}; rewritten out {steps[0].rewritten}, in {steps[1].rewritten}")


@click.command()
@click.argument("dev1")
@click.argument("dev2")
@click.option("--top", "top_n", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="Flows shown, most bytes first.")
@click.option("--max-flows", type=click.IntRange(1, 1 << 24), default=65536, show_default=True,
              help="Flows counted; packets of flows beyond count as untracked.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="At exit, write every flow as JSON to this file ('-': to stdout, instead of the table).")
@click.option("--duration", "-t", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@_limits
def flowmon(dev1: str, dev2: str, top_n: int, max_flows: int, json_file: Optional[Path], duration: Optional[float],
            batch_size: int, count: Optional[int]) -> None:
    """Forward between two devices, counting packets and bytes per flow
    (5-tuple, IPv4 and IPv6): the top talkers live on a terminal, every flow
    as JSON at exit (--json)."""
    import sys
    import time

    from rich.console import Console

    from .flowmon import FlowMonitor, FlowTable, LiveView, top_table

    table = FlowTable(max_flows)
    steps = [FlowMonitor(table, batch_size), FlowMonitor(table, batch_size)]
    to_stdout = json_file is not None and str(json_file) == "-"
    if json_file is not None and not to_stdout:
        json_file.open("a").close()              # a path that cannot be written fails now, not after the run
    live = LiveView(table, top_n) if sys.stdout.isatty() and not to_stdout else None
    start = time.monotonic()
    deadline = start + duration if duration else None

    def until() -> bool:
        if live is not None:
            live.refresh()
        return deadline is not None and time.monotonic() >= deadline

    try:
        sent = _run(dev1, dev2, steps, batch_size, count, until if live is not None or deadline else None)
    finally:
        if live is not None:
            live.stop()
    seconds = round(time.monotonic() - start, 3)
    if json_file is not None:
        text = table.dump(devices=[dev1, dev2], seconds=seconds, forwarded=sent)
        if to_stdout:
            click.echo(text)
            return
        json_file.write_text(text + "\n")
    if live is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=max(console.width, 120))
        console.print(top_table(table, top_n, seconds))          # rates: averages over the run
    t = table.totals()
    click.echo(f"forwarded {sent}; {t['flows']} flows, {t['packets']} packets, {t['bytes']} bytes; other "
               f"{t['other_packets']} packets, untracked {t['untracked_packets']} packets; {seconds:.2f} s")


COMMANDS = [firewall, nat, flowmon]
