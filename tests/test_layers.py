"""The import graph of the front half of vpmu: no cycles, and layers that point one way.

Every ``import`` statement counts, function-level ones included (only ``if TYPE_CHECKING:``
blocks are skipped).  The layers:

    cli -> commands -> api / library modules (policy, sweeps, bench, workloads, qemudiff, qemufront,
                                               tracecmd, dtb, guestsdk)
        -> options -> vmdesc -> kvm -> filter -> config / errors / sizes / pmu.events

A module may import only from its own layer's inferiors; the API and the library never
import the command line.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "vpmu"

# The modules this test guards (board/, pmu/, xen/ and native.py are checked by their own
# owners' rules; a cycle through one of ours is still caught below).
OURS = {"vpmu", "vpmu.__main__", "vpmu.api", "vpmu.cli", "vpmu.options", "vpmu.sizes", "vpmu.config",
        "vpmu.errors", "vpmu.filter", "vpmu.vmdesc", "vpmu.policy", "vpmu.dtb", "vpmu.sweeps", "vpmu.sweepreport",
        "vpmu.qemudiff", "vpmu.qemufront", "vpmu.bench", "vpmu.workloads", "vpmu.tracecmd", "vpmu.pytest_plugin"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()
OURS |= {m for m in MODULES if m.startswith(("vpmu.kvm", "vpmu.commands", "vpmu.guestsdk"))}


def _resolve(module: str, node: ast.AST) -> set[str]:
    is_pkg = MODULES[module].name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        target = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) \
            if node.level else node.module
        subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
        names = subs + ([target] if len(subs) < len(node.names) else [])
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree)
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
                for sub in node.body for n in ast.walk(sub)}
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                deps |= _resolve(module, node)
        deps.discard(module)
        graph[module] = deps
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _reaches(start: str, target_prefix: str) -> list[str]:
    """A path from ``start`` to a module under ``target_prefix``, or []."""
    seen, todo = {start: [start]}, [start]
    while todo:
        v = todo.pop()
        for w in sorted(GRAPH[v]):
            if w not in seen:
                seen[w] = seen[v] + [w]
                if w == target_prefix or w.startswith(target_prefix + "."):
                    return seen[w]
                todo.append(w)
    return []


def test_no_import_cycle_through_our_modules():
    cycles = [c for c in _cycles(GRAPH) if OURS & set(c)]
    assert not cycles, cycles


@pytest.mark.parametrize("module", ["vpmu.api", "vpmu.options", "vpmu.vmdesc", "vpmu.kvm", "vpmu.filter",
                                    "vpmu.policy", "vpmu.sweeps", "vpmu.sweepreport", "vpmu.qemudiff",
                                    "vpmu.qemufront", "vpmu.bench", "vpmu.workloads", "vpmu.tracecmd", "vpmu.dtb",
                                    "vpmu.pytest_plugin", "vpmu.guestsdk"])
def test_the_library_never_reaches_the_command_line(module):
    for cli in ("vpmu.cli", "vpmu.commands"):
        assert not _reaches(module, cli), _reaches(module, cli)


@pytest.mark.parametrize("module", ["vpmu.kvm", "vpmu.vmdesc", "vpmu.options", "vpmu.filter", "vpmu.config"])
def test_the_model_side_never_reaches_the_runner(module):
    """KVM's model and the run options build a MachineConfig; running it is the API's job."""
    assert not _reaches(module, "vpmu.api"), _reaches(module, "vpmu.api")
    assert not _reaches(module, "vpmu.board"), _reaches(module, "vpmu.board")


@pytest.mark.parametrize("module", ["vpmu.guestsdk", "vpmu.guestsdk.builder", "vpmu.guestsdk.locate"])
def test_the_guest_sdk_never_reaches_the_emulator(module):
    """Building and finding guests needs no engine, model or board (the plugin loads it per run)."""
    for emulator in ("vpmu.api", "vpmu.board", "vpmu.pmu", "vpmu.native"):
        assert not _reaches(module, emulator), _reaches(module, emulator)


def test_importing_the_api_does_not_load_the_command_line():
    code = "import sys, vpmu.api; print(sorted(m for m in sys.modules if m.startswith(('vpmu.cli', 'vpmu.commands'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
