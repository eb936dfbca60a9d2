"""Every hint names things that exist. Hints are collected from the source,
not from a list: every ``default_hint`` of an error class, and every hint
given at a raise site anywhere in src/ixypy (the ``hint=`` keyword or the
second positional argument of an ixypy error class; string literals,
f-strings with their fields as ``{}``, module constants, ``.format()``),
in the .py files with ast and in the Cython .pyx/.pxi files with tokenize.

In each hint:
- ``ixypy CMD ... --opt`` inside backticks: ``ixypy CMD --help`` (click's
  CliRunner) succeeds and lists each --opt;
- ``--opt`` elsewhere: an option of some ixypy command;
- ``Name.attr`` and ``name.attr(...)``: the attribute exists on the real
  class or module (ixypy, dev = Device, PacketBatch, Mempool, Bus, ...); an
  unknown capitalised Name is a failure; ``kw=`` inside the call's
  parentheses are parameters of the callable;
- ``attr(...)`` alone: a method of one of those classes;
- ``kw=True`` / ``kw=False``: a parameter of ixypy.open or of a method of
  one of those classes.
A list of wrong hints (``Mempool.free_batch`` among them) is the negative
control: each must be reported."""
from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from click.testing import CliRunner

import ixypy
import ixypy.vector  # noqa: F401 (a submodule hints name: ixypy.vector.rules)
from ixypy import errors, pci, vfio
from ixypy import Mempool, PacketBatch
from ixypy.fastpath import bench
from ixypy.fastpath.intel import IntelRxQueue, IntelTxQueue
from ixypy.fastpath.queue import Queue
from ixypy.fastpath.virtio import VirtioRxQueue, VirtioTxQueue
from ixypy.bus import Bus
from ixypy.cli import cli
from ixypy.drivers.intel import IntelDevice
from ixypy.device import Device

SRC = Path(ixypy.__file__).resolve().parent

# what a prefix before a dot stands for
OWNERS = {
    "ixypy": ixypy, "dev": Device, "device": Device, "Device": Device,
    "Mempool": Mempool, "pool": Mempool, "PacketBatch": PacketBatch, "batch": PacketBatch,
    "Bus": Bus, "bus": Bus, "PciDevice": pci.PciDevice, "VfioContainer": vfio.VfioContainer,
    "VfioDevice": vfio.VfioDevice, "queue": Queue, "rxq": Queue, "txq": Queue,
}
CLASSES = [Device, IntelDevice, Mempool, PacketBatch, Bus, pci.PciDevice, vfio.VfioDevice, vfio.VfioContainer,
           Queue, IntelRxQueue, IntelTxQueue, VirtioRxQueue, VirtioTxQueue, bench]    # bench: a module of functions
# snake_case words in hints that name something outside ixypy: kernel boot
# options, a kernel module, a QEMU property
EXTERNAL = {"intel_iommu", "amd_iommu", "vfio_iommu_type1", "ctrl_rx", "iommu_platform"}


# ----------------------------------------------------------------------------- collecting

def _error_class_names() -> set:
    """IxyError and its subclasses, in errors.py and wherever else in src."""
    names = {n for n, c in vars(errors).items() if isinstance(c, type) and issubclass(c, errors.IxyError)}
    classes = [node for p in SRC.rglob("*.py") for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for c in classes:
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", None) for b in c.bases}
            if c.name not in names and bases & names:
                names.add(c.name)
                grew = True
    return names


ERROR_CLASSES = _error_class_names()


def _text(node: ast.AST, constants: Dict[str, ast.AST]) -> Optional[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.Name) and node.id in constants:
        return _text(constants[node.id], constants)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _text(node.func.value, constants)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, constants), _text(node.right, constants)
        return None if left is None or right is None else left + right
    return None


def _python_hints(path: Path) -> List[Tuple[str, Optional[str]]]:
    tree = ast.parse(path.read_text())
    constants = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for st in node.body:
                if isinstance(st, ast.Assign) and any(getattr(t, "id", None) == "default_hint" for t in st.targets):
                    out.append((f"{path.relative_to(SRC)}:{st.lineno}", _text(st.value, constants)))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name in ERROR_CLASSES:
                for h in [k.value for k in node.keywords if k.arg == "hint"] or node.args[1:2]:
                    out.append((f"{path.relative_to(SRC)}:{node.lineno}", _text(h, constants)))
    return out


def _literal(token: str) -> str:
    m = re.match(r"(?is)([rbfu]*)('''|\"\"\"|'|\")(.*)\2$", token)
    body = m.group(3)
    if "f" in m.group(1).lower():
        body = re.sub(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", "{}", body)
    return body


FSTRING_START = getattr(tokenize, "FSTRING_START", None)     # Python 3.12+: f-strings come in pieces


def _tokens(text: str) -> List[tokenize.TokenInfo]:
    """The tokens of text, each f-string one STRING token as before 3.12."""
    lines = text.splitlines(keepends=True)

    def span(a: Tuple[int, int], b: Tuple[int, int]) -> str:
        if a[0] == b[0]:
            return lines[a[0] - 1][a[1]:b[1]]
        return lines[a[0] - 1][a[1]:] + "".join(lines[a[0]:b[0] - 1]) + lines[b[0] - 1][:b[1]]

    out: List[tokenize.TokenInfo] = []
    depth, start = 0, None
    for t in tokenize.generate_tokens(io.StringIO(text).readline):
        if FSTRING_START is not None and t.type == FSTRING_START:
            depth += 1
            start = t if depth == 1 else start
        elif depth and t.type == tokenize.FSTRING_END:
            depth -= 1
            if depth == 0 and start is not None:
                out.append(tokenize.TokenInfo(tokenize.STRING, span(start.start, t.end), start.start, t.end, start.line))
        elif not depth:
            out.append(t)
    return out


def _cython_hints(path: Path) -> List[Tuple[str, Optional[str]]]:
    skip = (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    toks = [t for t in _tokens(path.read_text()) if t.type not in skip]
    out = []
    for i, t in enumerate(toks):
        if not (t.type == tokenize.NAME and t.string in ERROR_CLASSES and toks[i + 1].string == "("):
            continue
        depth, args, cur = 0, [], []
        for u in toks[i + 1:]:
            depth += u.string in "([{"
            depth -= u.string in ")]}"
            if depth == 0:
                args.append(cur)
                break
            if depth == 1 and u.string == ",":
                args.append(cur)
                cur = []
            elif not (depth == 1 and u.string == "(" and not cur and not args):
                cur.append(u)
        keyword = [a[2:] for a in args if len(a) > 2 and a[0].string == "hint" and a[1].string == "="]
        positional = [a for a in args if not (len(a) > 1 and a[1].string == "=")]
        for a in keyword or positional[1:2]:
            text = "".join(_literal(x.string) for x in a) if a and all(x.type == tokenize.STRING for x in a) else None
            out.append((f"{path.relative_to(SRC)}:{t.start[0]}", text))
    return out


@lru_cache(maxsize=None)
def collected() -> Tuple[Tuple[str, Optional[str]], ...]:
    hints = []
    for path in sorted(SRC.rglob("*")):
        if path.suffix == ".py":
            hints += _python_hints(path)
        elif path.suffix in (".pyx", ".pxi"):
            hints += _cython_hints(path)
    return tuple(hints)


# ----------------------------------------------------------------------------- checking

@lru_cache(maxsize=None)
def command_help(command: str) -> Optional[str]:
    """`ixypy COMMAND --help`, or None if there is no such command."""
    result = CliRunner().invoke(cli, [command, "--help"])
    return result.output if result.exit_code == 0 and "Usage:" in result.output else None


def _has_option(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def _parameters(fn) -> Optional[set]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        pass
    # a Cython method: its docstring starts with the signature (embedsignature),
    # e.g. "PacketBatch.alloc(self, Mempool pool, n=None, length=None) -> int"
    m = re.match(r"[\w.]+\(([^)]*)\)", getattr(fn, "__doc__", None) or "")
    if m is None:
        return None
    return {re.findall(r"\w+", arg.split("=")[0])[-1] for arg in m.group(1).split(",") if arg.strip()}


@lru_cache(maxsize=None)
def _all_keywords() -> set:
    names = set(_parameters(ixypy.open))
    for cls in CLASSES:
        for attr in dir(cls):
            fn = getattr(cls, attr, None)
            if callable(fn):
                names |= _parameters(fn) or set()
    return names


def problems(hint: str) -> List[str]:
    """What in this hint names something that does not exist."""
    found = []
    spans = re.findall(r"`([^`]*)`", hint)
    for span in spans:
        words = span.split()
        if words[:1] == ["sudo"]:
            words = words[1:]
        if words[:1] != ["ixypy"]:
            continue                                   # another program's command line
        if len(words) < 2 or command_help(words[1]) is None:
            found.append(f"no command `{' '.join(words[:2])}`")
            continue
        for w in words[2:]:
            if w.startswith("-") and not _has_option(command_help(words[1]), w.split("=")[0]):
                found.append(f"`ixypy {words[1]}` has no option {w}")
    outside = re.sub(r"`[^`]*`", " ", hint)
    for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", outside):
        if not any(_has_option(command_help(c) or "", option) for c in cli.commands):
            found.append(f"no ixypy command has the option {option}")
    text = re.sub(r"\b\w+\(s\)", " ", hint)            # "queue(s)" is a plural, not a call
    dotted = set()
    for m in re.finditer(r"(?<![\w./{}-])([A-Za-z_]\w*)\.([A-Za-z_]\w*)(\(([^()]*)\))?", text):
        prefix, attr, call, args = m.group(1), m.group(2), m.group(3), m.group(4)
        dotted.add(m.start(2))
        owner = OWNERS.get(prefix)
        if owner is None:
            if prefix[0].isupper():
                found.append(f"unknown class {prefix} in {m.group(0)}")
            continue
        if not hasattr(owner, attr):
            found.append(f"{prefix}.{attr} does not exist")
            continue
        params = _parameters(getattr(owner, attr)) if call else None
        for kw in re.findall(r"(?<![\w.])([a-z_]\w*)=", args or ""):
            if params is not None and kw not in params:
                found.append(f"{prefix}.{attr}() has no parameter {kw}")
    for m in re.finditer(r"(?<![\w.{}-])([a-z_]\w*)\(([^()]*)\)", text):
        if m.start(1) in dotted:
            continue
        name = m.group(1)
        owners = [cls for cls in CLASSES if hasattr(cls, name)]
        if not owners:
            found.append(f"{name}() is not a method of {', '.join(c.__name__ for c in CLASSES)}")
            continue
        params = [_parameters(getattr(c, name)) for c in owners]
        for kw in re.findall(r"(?<![\w.])([a-z_]\w*)=", m.group(2)):
            if all(p is not None and kw not in p for p in params):
                found.append(f"{name}() has no parameter {kw}")
    for kw in re.findall(r"(?<![\w.-])([a-z_]\w*)=(?:True|False)\b", text):
        if kw not in _all_keywords():
            found.append(f"no API takes {kw}=")
    # any other snake_case word outside backticks (free_batch, num_bufs): a
    # parameter or attribute of the API, or a known outside name
    for word in re.findall(r"(?<![\w./{}-])([a-z]\w*_\w*)(?![\w/])", re.sub(r"`[^`]*`", " ", text)):
        if word not in EXTERNAL and word not in _all_keywords() and not any(hasattr(c, word) for c in [ixypy, *CLASSES]):
            found.append(f"{word} is neither a parameter nor an attribute of the API")
    return found


# ----------------------------------------------------------------------------- tests

def test_hints_are_collected_from_every_kind_of_source():
    hints = collected()
    where = {site.split(":")[0] for site, _ in hints}
    assert {"errors.py", "pci/binding.py", "vfio.py", "memory.py"} <= where, where
    assert any(w.endswith(".pyx") for w in where), where                  # the Cython fast path's hints
    assert sum(site.startswith("errors.py") for site, _ in hints) == \
        sum(1 for c in vars(errors).values() if isinstance(c, type) and vars(c).get("default_hint"))
    assert len(hints) >= 60
    assert [site for site, text in hints if text is None] == []       # a hint the collector cannot read


WRONG = [
    "free the buffers you hold with Mempool.free_batch",              # issue 13: the method never existed
    "bind it with `ixypy bind ADDR --vifo`",
    "run `sudo ixypy rebind ADDR`",
    "or use --uoi",
    "ask for one queue: ixypy.open(addr, rx_queue=1)",
    "call dev.tx_batchs() again",
    "open it with interupts=False",
    "see Mempol.fill",
    "give packets a length with set_len(i, n)",
    "pass alloc(pool, size=60)",
    "or via free_batch, never both",                                  # the old DoubleFree hint
    "use a batch no larger than the ring (num_rx_descriptors / num_tx_descriptors)",   # the old BatchError hint
]


@pytest.mark.parametrize("hint", WRONG)
def test_the_checker_reports_a_wrong_name(hint):
    assert problems(hint), hint


def test_the_checker_accepts_what_exists():
    assert problems("ixypy.open(addr, rx_queues=1, num_rx_desc=64); `sudo ixypy bind ADDR --vfio` (or --uio); "
                    "PacketBatch.free(), dev.tx_batch(), alloc(pool, length=60), interrupts=False, force=True") == []


def test_every_hint_names_only_what_exists():
    bad = {f"{site}: {text!r}": p for site, text in collected() if text and (p := problems(text))}
    assert bad == {}
