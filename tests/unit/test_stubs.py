"""The .pyi stubs of the compiled fast path name exactly what the modules
offer: every public class, function, method and attribute of each module is
in its stub, and every name in a stub exists at run time."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ixypy.fastpath

FASTPATH = Path(ixypy.fastpath.__file__).parent
MODULES = sorted(p.stem for p in FASTPATH.glob("*.pyx"))
# defined in a stub only for the type checker: the constructor's signature
# (Cython's __cinit__) and the buffer protocol (a C slot before Python 3.12)
TYPING_ONLY = {"__init__", "__buffer__"}


def stub_names(module: str) -> dict:
    """{name: set of member names (None for a function)} from module's .pyi."""
    tree = ast.parse((FASTPATH / f"{module}.pyi").read_text())
    names: dict = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} - TYPING_ONLY
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = None
    return names


def public(names) -> set:
    return {n for n in names if not n.startswith("_") or (n.startswith("__") and n.endswith("__"))}


def runtime_names(module: str) -> dict:
    mod = importlib.import_module(f"ixypy.fastpath.{module}")
    names: dict = {}
    for name, obj in vars(mod).items():
        if isinstance(obj, type) and obj.__module__ == mod.__name__:
            names[name] = {n for n in vars(obj) if n in ("__len__", "__getitem__", "__call__") or not n.startswith("_")}
        elif callable(obj) and getattr(obj, "__module__", None) == mod.__name__:
            names[name] = None
    return names


def test_every_module_has_a_stub():
    assert MODULES == sorted(p.stem for p in FASTPATH.glob("*.pyi"))
    assert {"batch", "queue", "intel", "virtio", "ops"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_stub_matches_module(module):
    stub, runtime = stub_names(module), runtime_names(module)
    assert set(public(stub)) == set(public(runtime)), f"{module}.pyi: classes and functions differ"
    for name, members in runtime.items():
        if name in stub and members is not None:
            assert stub[name] == members, f"{module}.pyi: members of {name} differ"

