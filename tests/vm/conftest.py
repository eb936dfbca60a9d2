"""Fixtures for tests that run inside a QEMU guest (see guest.py).

- ``run_in_guest(script, nics=[...], timeout=...) -> GuestResult``: one boot per call.
- ``guest``: one boot per test module, shared by its tests; the module sets
  ``GUEST_NICS = [Nic(...), ...]`` (default: two virtio NICs on hub 0).

Missing QEMU/kernel: skip outside CI, fail when ``CI`` is set. On a failure
the console of every guest the test used is attached to the report. The
terminal summary lists boot and script times. A script whose guest kernel
wedged (``GuestWedged``: an idle CPU never woken, the emulator's fault) runs
once more on a new guest, and the summary lists each such wedge.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import pytest

from .guest import (SRC_DIR, Guest, GuestImage, GuestResult, GuestWedged, MissingPrerequisite, Nic, SharedGuest,
                    kill_all_guests, prepare_image)

DEFAULT_NICS = [Nic("virtio", hub=0), Nic("virtio", hub=0)]

# (test id, what, seconds) for the terminal summary
_timings: List[Tuple[str, str, float]] = []
# (test or module, what) for each guest that wedged and was booted again
_wedges: List[Tuple[str, str]] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """Kernel + initramfs; skips (fails in CI) if a prerequisite is missing."""
    try:
        if not list((SRC_DIR / "ixypy").glob("fastpath/*.so")):  # the guest imports the in-place build
            raise MissingPrerequisite(f"no built extension in {SRC_DIR}/ixypy")
        return prepare_image()
    except MissingPrerequisite as e:
        reason = f"VM tests need QEMU, busybox, cpio, a guest kernel and the built extension ({e})"
        hint = "run tools/install-test-deps and `python setup.py build_ext --inplace`"
        if in_ci():
            pytest.fail(f"{reason}: {hint}", pytrace=False)
        pytest.skip(f"{reason}: {hint}")


@pytest.fixture(scope="session", autouse=True)
def _reap_guests() -> Iterator[None]:
    yield
    kill_all_guests()


def used_guest(node: pytest.Item, guest: Union[Guest, SharedGuest]) -> None:
    """Remember that a test used ``guest``, to attach its console if the test fails."""
    if not hasattr(node, "_ixypy_guests"):
        node._ixypy_guests = []  # type: ignore[attr-defined]
    node._ixypy_guests.append(guest)  # type: ignore[attr-defined]


RunInGuest = Callable[..., GuestResult]


@pytest.fixture
def run_in_guest(guest_image: GuestImage, tmp_path: Path, request: pytest.FixtureRequest) -> RunInGuest:
    """Boot a guest with ``nics``, run ``script`` in it, power it off, return the result.

    ``check=True`` (default) turns a failing script into a test failure with
    the guest traceback; pass ``check=False`` to inspect a failure yourself."""
    boots = 0

    def boot_and_run(script: str, nics: Sequence[Nic], timeout: float, check: bool) -> GuestResult:
        nonlocal boots
        boots += 1
        guest = Guest(list(nics), tmp_path / f"guest-{boots}", guest_image)
        used_guest(request.node, guest)
        with guest:
            _timings.append((request.node.nodeid, "boot", guest.boot_seconds))
            result = guest.run(script, timeout=timeout, check=check)
            _timings.append((request.node.nodeid, "script", result.seconds))
        return result

    def run(script: str, nics: Sequence[Nic] = DEFAULT_NICS, timeout: float = 60.0,
            check: bool = True) -> GuestResult:
        try:
            return boot_and_run(script, nics, timeout, check)
        except GuestWedged as wedged:  # the emulator's fault: once more on a new guest
            _wedges.append((request.node.nodeid, str(wedged).splitlines()[0]))
            return boot_and_run(script, nics, timeout, check)

    return run


@pytest.fixture(scope="module")
def _module_guest(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory,
                  request: pytest.FixtureRequest) -> Iterator[SharedGuest]:
    nics: Optional[Sequence[Nic]] = getattr(request.module, "GUEST_NICS", None)
    run_dir = tmp_path_factory.mktemp("guest-" + request.module.__name__.rsplit(".", 1)[-1])
    with SharedGuest(nics or DEFAULT_NICS, run_dir, guest_image) as guest:
        _timings.append((request.module.__name__, "boot (shared)", guest.boot_seconds))
        yield guest
        _wedges.extend((request.module.__name__, wedge) for wedge in guest.wedges)


class TimedGuest:
    """The module's guest, as one test sees it: ``run`` records the script time."""

    def __init__(self, guest: SharedGuest, nodeid: str) -> None:
        self.guest = guest
        self.nodeid = nodeid

    def __getattr__(self, name: str) -> object:
        return getattr(self.guest, name)

    def run(self, script: str, timeout: float = 60.0, check: bool = True,
            rerun_if_wedged: bool = True) -> GuestResult:
        result = self.guest.run(script, timeout=timeout, check=check, rerun_if_wedged=rerun_if_wedged)
        _timings.append((self.nodeid, "script", result.seconds))
        return result


@pytest.fixture
def guest(_module_guest: SharedGuest, request: pytest.FixtureRequest) -> TimedGuest:
    """The guest booted once for this module (NICs from the module's GUEST_NICS)."""
    used_guest(request.node, _module_guest)
    return TimedGuest(_module_guest, request.node.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for i, g in enumerate(getattr(item, "_ixypy_guests", [])):
            report.sections.append((f"guest console {i} ({g.console_log})", g.console()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    tr = terminalreporter
    if _wedges:
        tr.section("QEMU guests that wedged (the script ran again on a new guest)")
        for where, what in _wedges:
            tr.write_line(f"{where}: {what}")
    if not _timings:
        return
    tr.section("QEMU guest timings")
    for nodeid, what, seconds in _timings:
        tr.write_line(f"{seconds:7.2f} s  {what:14s} {nodeid}")
    tr.write_line(f"{sum(s for _, _, s in _timings):7.2f} s  total boot + script time")
