"""pytest plugin (registered through the ``pytest11`` entry point ``vpmu``).

Fixtures:
- ``vpmu_run(guest, **options) -> RunResult``: run a guest with ``vpmu run``'s options as
  keyword arguments (:class:`vpmu.options.RunOptions`, as ``vpmu.run()``); ``guest`` is a path or a
  bare name looked up in the guest directory
  (``--vpmu-guests DIR``, ini ``vpmu_guests``, default ``guests/build`` under the rootdir).
  A runner-side error (bad image, instruction limit...) fails the test with its one-line
  reason unless ``expect_error=True`` is passed.  A bad option value raises what ``vpmu.run()``
  raises (:class:`vpmu.errors.UsageError` with the option's one-line message,
  ``KvmAttrError``; a ``TypeError`` for a misspelt name), never another exception from inside
  the runner.  ``guest`` may be an ``os.PathLike``.
- ``vpmu_guest_dir``: that directory.

Assertion helpers live in :mod:`vpmu.testing` (overflow counts, interrupts following
overflows, trace agreement up to an icount, guest key=value results).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--vpmu-guests", default=None, help="directory of built guest images (vpmu plugin)")
    parser.addini("vpmu_guests", "directory of built guest images (vpmu plugin)", default="guests/build")


@pytest.fixture(scope="session")
def vpmu_guest_dir(pytestconfig) -> Path:
    d = pytestconfig.getoption("--vpmu-guests") or pytestconfig.getini("vpmu_guests")
    p = Path(d)
    if not p.is_absolute():
        p = Path(pytestconfig.rootpath) / p
    return p


def resolve_guest(guest_dir: Path, guest: str) -> str:
    if os.sep in guest or guest.endswith((".elf", ".bin", ".img")):
        return guest
    p = guest_dir / f"{guest}.elf"
    if not p.exists():
        raise FileNotFoundError(f"guest {guest!r} not built: {p} missing (run: python3 dev.py setup)")
    return str(p)


@pytest.fixture
def vpmu_run(vpmu_guest_dir):
    from vpmu import api

    def run(guest, expect_error: bool = False, **options):
        res = api.run(resolve_guest(vpmu_guest_dir, os.fspath(guest)), **options)
        if res.error and not expect_error:
            tail = "\n".join(res.output.splitlines()[-10:])
            pytest.fail(f"{guest}: {res.error}\n--- guest output (tail) ---\n{tail}", pytrace=False)
        return res

    return run
