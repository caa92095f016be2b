"""pytest plugin (registered through the ``pytest11`` entry point ``vpmu``).

Fixtures:
- ``vpmu_run(guest, **options) -> RunResult``: run a guest with ``vpmu run``'s options as
  keyword arguments (vpmu.options.RunOptions, as ``vpmu.run()``); ``guest`` is a path, or a
  bare name NAME for NAME.elf in the guest directory.  A runner-side error (bad image,
  instruction limit...) fails the test with its one-line reason unless ``expect_error=True``
  is passed.  A bad option value raises what ``vpmu.run()`` raises
  (:class:`vpmu.errors.UsageError` with the option's one-line message, ``KvmAttrError``; a
  ``TypeError`` for a misspelt name), never another exception from inside the runner.
  ``guest`` may be an ``os.PathLike``.
- ``vpmu_guest_dir``: the guest directory (a Path), or None when none is configured.  It is,
  first set: the command-line option ``--vpmu-guests DIR``; the ini option ``vpmu_guests``
  (relative to the rootdir); the environment variable ``VPMU_GUESTS``;
  and, a development convenience, ``guests/build`` of the vpmu checkout the package runs from.

Assertion helpers live in vpmu.testing (overflow counts, interrupts following overflows,
trace agreement up to an icount, guest key=value results).  Guests are built with
``vpmu guest build`` (vpmu.guestsdk).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import pytest

from .guestsdk import locate

_HINT = f"--vpmu-guests DIR, ini option vpmu_guests or {locate.ENV_VAR}=DIR"


def pytest_addoption(parser):
    parser.addoption("--vpmu-guests", default=None, metavar="DIR",
                     help=f"directory of built guest images, NAME.elf (vpmu plugin; else ini vpmu_guests, "
                          f"else ${locate.ENV_VAR})")
    parser.addini("vpmu_guests", "directory of built guest images, relative to the rootdir (vpmu plugin)",
                  default="")


@pytest.fixture(scope="session")
def vpmu_guest_dir(pytestconfig) -> Path | None:
    d = pytestconfig.getoption("--vpmu-guests") or pytestconfig.getini("vpmu_guests")
    if d:
        p = Path(d)
        return p if p.is_absolute() else Path(pytestconfig.rootpath) / p
    return locate.guest_dir()


def resolve_guest(guest_dir: Path | None, guest: str) -> str:
    """The image `guest` names: a path as it is, or NAME.elf in `guest_dir` (FileNotFoundError if missing)."""
    try:
        return locate.find_guest(guest, guest_dir, hint=_HINT)
    except locate.GuestNotFound as e:
        raise FileNotFoundError(str(e)) from None


@pytest.fixture
def vpmu_run(vpmu_guest_dir):
    from vpmu import api

    def run(guest: Union[str, "os.PathLike[str]"], expect_error: bool = False, **options):
        try:
            path = resolve_guest(vpmu_guest_dir, os.fspath(guest))
        except FileNotFoundError as e:
            pytest.fail(str(e), pytrace=False)
        res = api.run(path, **options)
        if res.error and not expect_error:
            tail = "\n".join(res.output.splitlines()[-10:])
            pytest.fail(f"{guest}: {res.error}\n--- guest output (tail) ---\n{tail}", pytrace=False)
        return res

    return run
