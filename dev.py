#!/usr/bin/env python3
"""One-command set-up and entry points for a fresh checkout.

    python3 dev.py demo    set everything up, then run the demo guest with a counter summary
    python3 dev.py test    set everything up, then run ruff, mypy and the whole test suite
    python3 dev.py setup   only set up (.venv, packages, AArch64 toolchain, guest builds)

Set-up needs nothing but Python >= 3.11 and pip: it creates ``.venv/`` in the checkout,
installs the pinned packages (including the ``ziglang`` wheel that provides clang/lld
for aarch64-freestanding), builds every guest in ``guests/`` and warms the numba cache.
Every step is skipped when it is already up to date, so the commands are cheap to repeat.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".vpmu-installed"
LINTED = ["vpmu", "tests", "tools", "guests", "dev.py"]       # what ruff checks (mypy: pyproject's files)


def _say(msg: str) -> None:
    print(f"[dev] {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str], **kw) -> None:
    res = subprocess.run(cmd, cwd=ROOT, **kw)
    if res.returncode != 0:
        _say(f"failed ({res.returncode}): {' '.join(map(str, cmd))}")
        sys.exit(res.returncode)


def _install_key() -> str:
    h = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def setup() -> None:
    if sys.version_info < (3, 11):
        _say("Python >= 3.11 is required")
        sys.exit(2)
    if not PY.exists():
        _say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    key = _install_key()
    if not STAMP.exists() or STAMP.read_text() != key:
        _say("installing pinned packages (editable vpmu with dev extras)")
        _run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              "-e", ".[dev]"])
        STAMP.write_text(key)
    # Guests are build outputs; guests/build.py only rebuilds what changed.
    _run([str(PY), str(ROOT / "guests" / "build.py"), "--quiet"])
    # Byte-compile the package (an editable install is not compiled by pip, and with
    # PYTHONDONTWRITEBYTECODE set every run would recompile it: ~0.1 s of start-up).
    _run([str(PY), "-m", "compileall", "-q", str(ROOT / "vpmu")])
    # Compile (or load) the numba kernels once so later runs start warm.
    _run([str(PY), "-c", "import vpmu.pmu.hooks"])


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "help"
    if cmd in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if cmd not in ("setup", "demo", "test"):
        print(f"dev.py: unknown command {cmd!r} (use setup, demo or test)", file=sys.stderr)
        return 2
    setup()
    if cmd == "setup":
        return 0
    env = dict(os.environ)
    if cmd == "demo":
        elf = ROOT / "guests" / "build" / "demo.elf"
        return subprocess.run([str(VENV / "bin" / "vpmu"), "run", "--summary", str(elf)] + argv[2:],
                              cwd=ROOT, env=env).returncode
    # test: the linters (configured in pyproject.toml), then the suite; all of them run, and
    # the status is the first failure's
    lint = [[str(PY), "-m", "ruff", "check", *LINTED], [str(PY), "-m", "mypy"]]
    statuses = []
    for cmd in lint:
        _say(" ".join(cmd[2:]))
        statuses.append(subprocess.run(cmd, cwd=ROOT, env=env).returncode)
    jobs = os.environ.get("VPMU_TEST_JOBS", str(min(2, os.cpu_count() or 1)))
    statuses.append(subprocess.run([str(PY), "-m", "pytest", "-q", "-n", jobs, "tests"] + argv[2:],
                                   cwd=ROOT, env=env).returncode)
    return next((s for s in statuses if s), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
