#!/usr/bin/env python3
"""Profile a guest run with Linux `perf`, attributing samples to the numba functions of the
native hooks (perf itself only sees anonymous JIT memory) and to Unicorn's symbols.

    .venv/bin/python tools/profile_hooks.py [GUEST] [--append ARGS] [--top N]

Needs `perf` (linux-tools).  The kernels are compiled afresh into a temporary cache (about
a minute): numba keeps the object code, and so the symbol table, only for code it compiled
itself.  Samples taken before the profiled run starts (imports, compilation, a warm-up run
of hello.elf) and after it (interpreter shut-down) are left out.
Example: the benchmark loop, `tools/profile_hooks.py guests/build/bench.elf --append n=2000000`.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import ctypes, io, json, sys, time
from elftools.elf.elffile import ELFFile
from vpmu.pmu import hooks as H
funcs = {}
for name in ("block_hook", "code_hook", "mrs_hook", "msr_hook", "mem_hook", "sys_hook", "edge_hook", "entry"):
    lib = getattr(H, name)._library
    elf = ELFFile(io.BytesIO(lib._get_compiled_object()))
    for s in elf.get_section_by_name(".symtab").iter_symbols():
        if s["st_info"]["type"] == "STT_FUNC" and s["st_size"] > 0:
            a = lib._codegen._engine.get_function_address(s.name)
            if a:
                funcs[s.name] = (a, s["st_size"], name)
from vpmu.api import run_config
from vpmu.options import RunOptions
def run(guest, **kw):                 # as vpmu run without --trace: no trace records are kept
    return run_config(guest, RunOptions.from_keywords(**kw).to_machine_config(), keep_trace=False)
run(sys.argv[4])                      # warm-up: lazy imports and first-use set-up are not the run
options = json.loads(sys.argv[5])
start = time.monotonic()
r = run(sys.argv[1], append=sys.argv[2] or None, **options)
end = time.monotonic()
json.dump({"funcs": funcs, "start": start, "end": end, "status": r.exit_status, "error": r.error},
          open(sys.argv[3], "w"))
"""


def demangle(name: str) -> str:
    """_ZN4vpmu3pmu5hooks5_fastB... -> hooks._fast (numba's Itanium-style names)."""
    m = re.match(r"(cfunc\.)?_ZN((?:\d+\w+?)+)B\d", name)
    if not m:
        return name
    parts, rest = [], m.group(2)
    while rest and rest[0].isdigit():
        n = re.match(r"\d+", rest).group(0)
        parts.append(rest[len(n):len(n) + int(n)])
        rest = rest[len(n) + int(n):]
    return (m.group(1) or "") + ".".join(parts[-2:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("guest", nargs="?", default=str(ROOT / "guests" / "build" / "bench.elf"))
    ap.add_argument("--append", default="", help="guest command line (vpmu run --append)")
    ap.add_argument("--top", type=int, default=25, metavar="N")
    ap.add_argument("--memory", default=None, metavar="SIZE", help="RAM size (vpmu run --memory)")
    ap.add_argument("--max-insns", type=int, default=None, metavar="N", help="stop after N instructions")
    ap.add_argument("--initrd", default=None, metavar="FILE", help="initial RAM disk (vpmu run --initrd)")
    args = ap.parse_args(argv)
    if shutil.which("perf") is None:
        print("profile_hooks.py: needs the `perf` tool (linux-tools)", file=sys.stderr)
        return 2
    if not Path(args.guest).exists():
        print(f"profile_hooks.py: {args.guest}: not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        data, info = os.path.join(tmp, "perf.data"), os.path.join(tmp, "info.json")
        env = dict(os.environ, VPMU_CACHE_DIR=os.path.join(tmp, "cache"))
        p = subprocess.run(["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-o", data, sys.executable, "-c", CHILD,
                            args.guest, args.append, info, str(ROOT / "guests" / "build" / "hello.elf"),
                            json.dumps({k: v for k, v in (("memory", args.memory), ("max_insns", args.max_insns),
                                                                    ("initrd", args.initrd))
                                        if v is not None})],
                           cwd=ROOT, env=env)
        if p.returncode != 0 or not os.path.exists(info):
            print("profile_hooks.py: the profiled run failed", file=sys.stderr)
            return 1
        meta = json.load(open(info))
        script = subprocess.run(["perf", "script", "-i", data, "-F", "time,ip,sym,dso"], capture_output=True,
                                text=True).stdout
    ranges = sorted((a, a + n, demangle(name)) for name, (a, n, _lib) in meta["funcs"].items())
    counts: collections.Counter = collections.Counter()
    for line in script.splitlines():
        m = re.match(r"\s*([\d.]+):\s+([0-9a-f]+)\s+(.*?)\s*\((.*)\)\s*$", line)
        if not m or not meta["start"] <= float(m.group(1)) <= meta["end"]:
            continue
        ip, sym, dso = int(m.group(2), 16), m.group(3), m.group(4)
        for a, b, name in ranges:
            if a <= ip < b:
                counts["hooks: " + name] += 1
                break
        else:
            if "unicorn" in dso:
                counts["unicorn: " + sym] += 1
            elif "perf-" in dso or "[unknown]" in sym or dso == "[unknown]":
                counts["translated guest code (TCG) / other JIT"] += 1
            else:
                counts[os.path.basename(dso)] += 1
    total = sum(counts.values())
    if not total:
        print("profile_hooks.py: no samples after the guest started", file=sys.stderr)
        return 1
    hooks = sum(v for k, v in counts.items() if k.startswith("hooks: "))
    print(f"{total} samples while the guest ran (status {meta['status']}); native hooks {hooks / total:.1%}")
    for k, v in counts.most_common(args.top):
        print(f"  {v / total:6.1%}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
