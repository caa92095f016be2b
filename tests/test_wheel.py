"""The installed package, as a user gets it: the wheel built from this tree, installed into a
fresh virtual environment in a temporary directory outside the checkout, then

    vpmu guest new hello && vpmu guest build hello.c && vpmu run hello.elf

run there with that environment's ``vpmu`` (no PYTHONPATH, nothing from the checkout).  The
wheel must hold the guest SDK (runtime, vpmu.h, linker script template, starter guest).

Slow (about two minutes): building the wheel, installing the pinned dependencies (ziglang is a
100 MB wheel) and compiling the numba kernels for the new installation (into a cache in the
temporary directory, so the user's cache does not collect kernels of deleted installations).
The dependencies' wheels are kept in ``<vpmu cache>/test-wheelhouse`` and installed from there
without an index; only when one is missing (the first run, a changed pin) does pip download
them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from vpmu.cachedir import cache_base

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = cache_base() / "test-wheelhouse"
SDK_FILES = {"vpmu/guestsdk/__init__.py", "vpmu/guestsdk/builder.py", "vpmu/guestsdk/locate.py",
             "vpmu/guestsdk/starter.c", "vpmu/guestsdk/runtime/start.S", "vpmu/guestsdk/runtime/vectors.S",
             "vpmu/guestsdk/runtime/lib.c", "vpmu/guestsdk/runtime/image_head.S",
             "vpmu/guestsdk/runtime/vpmu.h", "vpmu/guestsdk/runtime/link.ld.in"}


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, **kw)
    assert p.returncode == 0, f"{cmd}: status {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def build_wheel(work: Path) -> Path:
    """The wheel of a copy of the package's files (building in the checkout would leave build/
    and vpmu.egg-info there, under the feet of parallel tests)."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "vpmu", src / "vpmu", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(src)])
    wheels = list((work / "dist").glob("vpmu-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install(venv_python: Path, wheel: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--python", str(venv_python)]
    offline = pip + ["install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), str(wheel)]
    if WHEELHOUSE.is_dir() and subprocess.run(offline, capture_output=True, timeout=1200).returncode == 0:
        return
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    run(pip + ["download", "-q", "-d", str(WHEELHOUSE), str(wheel)])
    for own in WHEELHOUSE.glob("vpmu-*.whl"):              # only the dependencies are kept
        own.unlink()
    run(offline)


def test_wheel_in_a_fresh_venv_builds_and_runs_a_guest_outside_the_checkout(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    assert ROOT not in work.parents
    wheel = build_wheel(work)

    names = set(zipfile.ZipFile(wheel).namelist())
    assert SDK_FILES <= names, f"missing from the wheel: {sorted(SDK_FILES - names)}"
    runtime = {p.relative_to(ROOT).as_posix() for p in (ROOT / "vpmu" / "guestsdk" / "runtime").iterdir()}
    assert runtime <= names, f"runtime files missing from the wheel: {sorted(runtime - names)}"

    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    install(venv / "bin" / "python", wheel)

    user = work / "user"
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VPMU_GUESTS", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VPMU_CACHE_DIR"] = str(work / "cache")

    def sh(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", command], cwd=user, env=env, capture_output=True, text=True,
                              timeout=1200)

    where = run([str(venv / "bin" / "python"), "-c", "import vpmu, vpmu.guestsdk as g; print(vpmu.__file__);"
                 "print(g.RUNTIME_DIR)"], cwd=user, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert sh("vpmu --version").stdout == f"vpmu {version}\n"

    p = sh("vpmu guest new hello && vpmu guest build hello.c && vpmu run hello.elf")
    assert p.returncode == 0, p
    assert p.stdout.splitlines() == ["wrote hello.c; build it with: vpmu guest build hello.c", "built hello.elf",
                                     "inst=42", "branches=20"], p.stdout
    assert sorted(x.name for x in user.iterdir()) == ["hello.c", "hello.elf"]

    # no checkout to fall back on: a bare guest name needs a guest directory
    p = sh("vpmu sweep -q -j 1 hello")
    assert p.returncode == 2 and "no guest directory" in p.stderr and p.stderr.count("\n") == 1, p
    p = sh(f"VPMU_GUESTS={user} vpmu sweep -q -j 1 --no-baseline --filters deny:BR_RETIRED hello")
    assert p.returncode == 0, p
    head, _, row = p.stdout.splitlines()
    cells = dict(zip(head.split(), row.split()))
    # the guest's two counters (a column per event), the branch counter's event denied by the filter
    assert (cells["guest"], cells["status"], cells["INST_RETIRED"], cells["BR_RETIRED"]) == \
        ("hello.elf", "0", "42", "0"), \
        p.stdout
