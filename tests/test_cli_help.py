"""``vpmu --version`` and the help texts: every command's and subcommand's ``--help`` is plain
text (no reStructuredText markup from the docstrings it is made of)."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vpmu.cli import build_parser, main, plain_text

ROOT = Path(__file__).resolve().parent.parent
RST = re.compile(r"`|:(class|mod|func|meth|attr|data|exc|ref|doc):")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of the parser tree: (), ("run",), ("policy", "lint"), ..."""
    out = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += commands(sub, path + (name,))
    return out


ALL = commands(build_parser())


def test_the_tree_has_every_command():
    names = {p[0] for p in ALL if p}
    assert {"run", "stat", "events", "guest", "bench", "dtb", "policy", "trace", "sweep", "qemu-diff", "qemu"} <= names
    assert ("guest", "new") in ALL and ("guest", "build") in ALL and ("policy", "lint") in ALL


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "vpmu")
def test_help_is_plain_text(path, capsys):
    try:
        status = main([*path, "--help"])
    except SystemExit as e:                 # argparse's help action
        status = e.code
    assert status == 0
    out = capsys.readouterr().out
    if path == ("qemu",):
        # QEMU's -help: the version line first (harnesses probe it), then the usage
        assert out.startswith("QEMU emulator version") and "\nusage: vpmu-system-aarch64" in out
    else:
        assert out.startswith("usage: vpmu")
    bad = [line for line in out.splitlines() if RST.search(line)]
    assert not bad, f"reStructuredText markup in vpmu {' '.join(path)} --help: {bad}"


def test_plain_text_strips_roles_literals_and_interpreted_text():
    assert plain_text("``vpmu sweep`` runs :class:`vpmu.options.RunOptions` like `perf stat`; a ``x`` b") \
        == "vpmu sweep runs vpmu.options.RunOptions like perf stat; a x b"


def test_version_is_the_distributions():
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    p = subprocess.run([sys.executable, "-m", "vpmu", "--version"], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, f"vpmu {version}\n", "")
    import vpmu
    assert vpmu.__version__ == vpmu.version() == version
