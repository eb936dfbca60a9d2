"""A stateless firewall: first-match 5-tuple rules (protocol, source and
destination IPv4 or IPv6 prefixes, port ranges) read from a file, compiled into
lookup tables (ixypy.fastpath.classify) and applied to whole batches: parse,
first match, counters and keep/drop in one C call per batch (Firewall is
a Classifier compiled from a rules file).

Rules file, one rule a line (``#`` starts a comment)::

    # action  proto  src            sport       dst             dport
    drop      udp    10.0.0.0/8     any         any             53
    accept    tcp    any            1024-65535  192.168.0.0/16  80-443
    drop      any    2001:db8::/32  any         any             any
    accept    tcp    any            any         2001:db8:1::/48 443
    default   accept

proto: tcp, udp, icmp, icmp6, any or a number; src and dst: an IPv4 prefix
(``10.0.0.0/8``, ``0.0.0.0/0``), an IPv6 prefix (``2001:db8::/32``, any
length 0-128, ``::/0``; RFC 4291 notation), a bare address (/32, /128) or
``any``. A rule with IPv4 prefixes matches IPv4 packets only, one with IPv6
prefixes IPv6 packets only, one with ``any`` for both addresses every
family; a rule with an IPv4 and an IPv6 prefix is refused
(errors.InvalidRule): write one rule per family. A port range other than
``any`` needs a UDP/TCP header (not a non-first fragment). Frames that are
not IP, or malformed (``ixypy.vector.BAD``), match no rule: the default
applies.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple, Union

import numpy as np

from .. import vector as vec
from ..errors import InvalidRule
from ..fastpath.batch import PacketBatch
from ..fastpath.classify import Classifier

ACTIONS = {"accept": True, "drop": False}


def parse_rules(text: str) -> Tuple[List[Tuple[str, str, str, str, str]], List[bool], bool]:
    """(rules as vec.rules() entries, their actions, the default action)."""
    entries, actions, default = [], [], True
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            if words[0] == "default":
                (action,) = words[1:]
                default = ACTIONS[action]
                continue
            action, proto, src, sport, dst, dport = words
            actions.append(ACTIONS[action])
            entries.append((proto, src, sport, dst, dport))
            vec.rules([entries[-1]])            # check it now, with its line number
        except InvalidRule as err:
            raise InvalidRule(f"rules line {lineno}: {line.strip()!r}: {err.message}") from None
        except (ValueError, KeyError) as err:
            raise ValueError(f"rules line {lineno}: {line.strip()!r}: expected 'accept|drop proto src sport dst dport' "
                             f"or 'default accept|drop' ({err})") from None
    return entries, actions, default


class Firewall(Classifier):
    """Filters batches in place: fw(batch) drops what the rules refuse and
    returns the count kept (the classifier's call: one C call per batch).
    counters: packets per rule, the last entry for the default (a numpy
    int64 view of the classifier's counts); verdict: keep (True) or drop
    per rule, the last the default (assigning it changes the classifier's
    actions); passed, dropped. capacity is accepted, as every vector app's
    step takes it, and not needed: the classifier keeps no columns, so it
    filters batches of any size."""

    def __init__(self, rules: Union[str, Path], capacity: int = 256) -> None:
        text = Path(rules).read_text() if isinstance(rules, Path) else rules
        entries, actions, default = parse_rules(text)
        self.rules = vec.rules(entries)
        super().__init__(self.rules, actions, default)
        self.counters = np.frombuffer(self.counts, np.int64)
        self._verdict = np.frombuffer(self.actions, np.bool_)

    @property
    def verdict(self) -> np.ndarray:
        return self._verdict

    @verdict.setter
    def verdict(self, value) -> None:
        self._verdict[:] = value
