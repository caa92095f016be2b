"""Command line: ``vpmu run|bench|events|dtb|policy|trace|sweep ...``.

Bad input gets one line on stderr and a documented exit status (vpmu.errors), never a
traceback (``--debug`` shows it for internal errors).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from . import errors
from .config import CacheModel, CycleModel, MachineConfig, PMU_VERSIONS, PmuConfig


class _Parser(argparse.ArgumentParser):
    def error(self, message):            # one line, exit status 2
        self.exit(errors.EXIT_USAGE, f"{self.prog}: error: {message}\n")


def parse_size(s: str) -> int:
    s = s.strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        if s[-1:].upper() in mult:
            return int(s[:-1], 0) * mult[s[-1].upper()]
        return int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {s!r} (use e.g. 128M, 1G, 0x8000000)") from None


def _int(s: str) -> int:
    try:
        return int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None


def _kv_model(cls, spec: str, what: str):
    obj = cls()
    for item in filter(None, (x.strip() for x in spec.split(","))):
        k, sep, v = item.partition("=")
        k = k.strip().replace("-", "_")
        if not sep or not hasattr(obj, k) or k == "enabled":
            names = ", ".join(f.replace("_", "-") for f in vars(obj) if f != "enabled")
            raise argparse.ArgumentTypeError(f"{what}: unknown item {item!r} (known: {names})")
        try:
            val = parse_size(v) if cls is CacheModel else int(v, 0)
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"{what}: {k} needs a number, got {v!r}") from None
        if val < 0:
            raise argparse.ArgumentTypeError(f"{what}: {k} must not be negative")
        setattr(obj, k, val)
    return obj


def cycle_model(spec: str) -> CycleModel:
    m = _kv_model(CycleModel, spec, "--cycles")
    if m.base < 1:
        raise argparse.ArgumentTypeError("--cycles: base must be at least 1")
    return m


def cache_model(spec: str) -> CacheModel:
    m = _kv_model(CacheModel, spec, "--cache")
    m.enabled = True
    if m.line < 4 or m.line & (m.line - 1):
        raise argparse.ArgumentTypeError("--cache: line must be a power of two >= 4")
    return m


def add_machine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("PMU")
    g.add_argument("--pmu-version", choices=sorted(PMU_VERSIONS), default=None,
                   help="guest PMU version: 3.0 (10-bit events), 3.1, 3.4, 3.5 (64-bit counters, PMCR.LP), 3.7 "
                        "(default 3.7)")
    g.add_argument("--counters", type=_int, default=None, metavar="N", help="event counters, PMCR_EL0.N (0..31, default 6)")
    g.add_argument("--pmu-irq", type=_int, default=None, metavar="INTID", help="overflow interrupt (default 23 = PPI 7)")
    g.add_argument("--no-pmu", action="store_true", help="vCPU without the PMU feature: every PMU register UNDEFs")
    g.add_argument("--filter", action="append", default=[], metavar="allow|deny:FIRST[-LAST]",
                   help="KVM event filter range, repeatable, applied in order like successive "
                        "KVM_ARM_VCPU_PMU_V3_FILTER calls; inclusive; numbers (hex/decimal) or event names")
    g.add_argument("--vm", metavar="FILE", help="VM description (TOML) instead of the PMU/timer flags")
    g = p.add_argument_group("models")
    g.add_argument("--cycles", type=cycle_model, default=None, metavar="SPEC",
                   help="cycle model, e.g. base=1,load=2,mispredict=10,l1d-refill=20 (default: 1 cycle/insn)")
    g.add_argument("--cache", type=cache_model, default=None, metavar="SPEC",
                   help="L1 cache model, e.g. line=64,l1d-size=32K,l1d-ways=4,l1i-size=32K,l1i-ways=2")
    g = p.add_argument_group("board")
    g.add_argument("--memory", type=parse_size, default=128 << 20, metavar="SIZE", help="RAM size (default 128M)")
    g.add_argument("--append", metavar="ARGS", help="kernel command line (/chosen/bootargs)")
    g.add_argument("--dtb", metavar="FILE", help="use this device tree blob instead of the generated one")
    g = p.add_argument_group("Xen")
    g.add_argument("--xen", action="store_true", help="enable the Xen hypercall frontend (HVC #0xEA1)")
    g.add_argument("--xen-domid", type=_int, default=0, metavar="N", help="domain id (0 = dom0, default)")
    g.add_argument("--xen-vpmu", choices=("off", "self", "hv", "all"), default="self", help="vPMU boot mode")
    g = p.add_argument_group("run control")
    g.add_argument("--max-insns", type=_int, default=None, metavar="N", help="stop after N instructions (error)")
    g.add_argument("--trace", metavar="FILE", help="write a JSON Lines trace")
    g.add_argument("--trace-pmu-regs", action="store_true", help="also trace every PMU register access")
    g.add_argument("--trace-sample", type=_int, default=0, metavar="N",
                   help="also record every counter each N retired instructions (at the next block boundary)")
    g.add_argument("--eager", action="store_true",
                   help="count every block when it completes instead of deferring the adds to the next point "
                        "that can observe them (same results, slower; for cross-checking)")


def config_from_options(pmu_version=None, counters=None, pmu_irq=None, no_pmu=False, filters=(), filter=None,
                        vm=None, cycles=None, cache=None, memory=128 << 20, append=None, dtb=None, xen=False,
                        xen_domid=0, xen_vpmu="self", max_insns=None, trace=None, trace_pmu_regs=False, trace_sample=0,
                        eager=False, **unknown) -> MachineConfig:
    """Build the MachineConfig the way a VMM builds a KVM vCPU (vpmu.kvm): PMU IRQ, filters
    in order, INIT; every attribute error is raised as vpmu.kvm.KvmAttrError."""
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    filters = list(filters) + list(filter or [])
    if counters is not None and not 0 <= counters <= 31:
        raise errors.VpmuError(f"--counters must be in 0..31 (got {counters})", errors.EXIT_USAGE)
    if isinstance(cycles, str):
        cycles = cycle_model(cycles)
    if isinstance(cache, str):
        cache = cache_model(cache)
    if isinstance(memory, str):
        memory = parse_size(memory)
    if not (1 << 20) <= memory <= (4 << 30) or memory % 4096:
        raise errors.VpmuError(f"--memory must be a multiple of 4 KiB between 1M and 4G (got {memory:#x})",
                               errors.EXIT_USAGE)
    if max_insns is not None and max_insns < 1:
        raise errors.VpmuError(f"--max-insns must be at least 1 (got {max_insns})", errors.EXIT_USAGE)
    if trace is True:
        trace = None
    try:
        from . import kvm_build
        cfg = kvm_build.build(pmu_version=pmu_version, counters=counters, pmu_irq=pmu_irq, no_pmu=no_pmu,
                              filters=filters, vm_file=vm, memory=memory)
    except ImportError:
        cfg = MachineConfig(memory=memory,
                            pmu=PmuConfig(present=not no_pmu, version=pmu_version or "3.7",
                                          counters=6 if counters is None else counters,
                                          irq=23 if pmu_irq is None else pmu_irq))
    cfg.memory = memory
    cfg.cycles = cycles or CycleModel()
    cfg.cache = cache or CacheModel()
    cfg.append, cfg.dtb_path = append, dtb
    cfg.xen, cfg.xen_domid, cfg.xen_vpmu = xen, xen_domid, xen_vpmu
    cfg.max_insns, cfg.trace_path, cfg.trace_pmu_regs = max_insns, trace, trace_pmu_regs
    if trace_sample < 0:
        raise errors.VpmuError("--trace-sample must not be negative", errors.EXIT_USAGE)
    cfg.trace_sample = trace_sample
    cfg.defer = not eager
    return cfg


def _summary(res) -> str:
    from .pmu import events
    p = res.pmu
    lines = [f"vpmu: {res.reason} status={res.exit_status} instructions={res.icount} cycles={res.cycles}"]
    if not p:
        return "\n".join(lines) + "\n"
    e_on = p["pmcr"] & 1
    lines.append(f"  PMCR_EL0={p['pmcr']:#x} (E={e_on}, N={p['n']})  PMCNTENSET={p['pmcntenset']:#x}  "
                 f"PMOVSSET={p['pmovsset']:#x}  PMINTENSET={p['pmintenset']:#x}")
    lines.append(f"  {'counter':<9} {'event':<26} {'value':>20} {'enabled':>8} {'overflowed':>11}")
    evmask = 0xFFFF
    for i in range(p["n"]):
        ev = p["evtyper"][i] & evmask
        e = events.BY_NUMBER.get(ev)
        name = f"{e.name if e else 'event'} ({ev:#x})"
        lines.append(f"  {'PMEV' + str(i):<9} {name:<26} {p['evcntr'][i]:>20} {(p['pmcntenset'] >> i) & 1:>8} "
                     f"{(p['pmovsset'] >> i) & 1:>11}")
    lines.append(f"  {'PMCCNTR':<9} {'CPU_CYCLES (0x11)':<26} {p['pmccntr']:>20} {(p['pmcntenset'] >> 31) & 1:>8} "
                 f"{(p['pmovsset'] >> 31) & 1:>11}")
    return "\n".join(lines) + "\n"


def cmd_run(args) -> int:
    from .api import run_config
    cfg = config_from_options(pmu_version=args.pmu_version, counters=args.counters, pmu_irq=args.pmu_irq,
                              no_pmu=args.no_pmu, filters=args.filter, vm=args.vm, cycles=args.cycles,
                              cache=args.cache, memory=args.memory, append=args.append, dtb=args.dtb,
                              xen=args.xen, xen_domid=args.xen_domid, xen_vpmu=args.xen_vpmu,
                              max_insns=args.max_insns, trace=args.trace, trace_pmu_regs=args.trace_pmu_regs,
                              trace_sample=args.trace_sample, eager=args.eager)
    res = run_config(args.guest, cfg, capture=False, keep_trace=False, raise_errors=True)
    if args.summary:
        sys.stderr.write(_summary(res))
    return res.exit_status


def cmd_events(args) -> int:
    from .pmu import events
    from .config import PMU_VERSIONS
    pv = PMU_VERSIONS[args.pmu_version]
    for e in events.CATALOGUE:
        if args.implemented and not events.implemented_for(e.number, pv):
            continue
        mark = "yes" if events.implemented_for(e.number, pv) else "-"
        print(f"{e.number:#06x}  {e.name:<24} {mark:<4} {e.derived or e.definition}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vpmu", description="ARM64 virtual PMU (PMUv3) emulator: run AArch64 guest images on a "
                                         "QEMU-virt-compatible board with an exact, numba-compiled PMU model.")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    r = sub.add_parser("run", help="run a guest (ELF, Linux Image or flat binary)",
                       description="Run a guest. Its UART/semihosting output goes to stdout and its exit status "
                                   "(semihosting SYS_EXIT, PSCI SYSTEM_OFF = 0) becomes ours. Runner errors exit "
                                   "with " + ", ".join(f"{k} ({v})" for k, v in errors.EXIT_STATUSES.items()) + ".")
    r.add_argument("guest", metavar="GUEST", help="guest image")
    add_machine_options(r)
    r.add_argument("--summary", action="store_true", help="print the final PMU registers to stderr")
    r.set_defaults(func=cmd_run)
    ev = sub.add_parser("events", help="list the event catalogue")
    ev.add_argument("--pmu-version", choices=sorted(PMU_VERSIONS), default="3.7")
    ev.add_argument("--implemented", action="store_true", help="only events this PMU version counts")
    ev.set_defaults(func=cmd_events)
    for mod in ("bench", "dtb", "policy", "tracecmd", "sweep", "qemudiff"):
        try:
            m = __import__(f"vpmu.{mod}", fromlist=["register"])
        except ImportError:
            continue
        if hasattr(m, "register"):
            m.register(sub)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except errors.VpmuError as e:
        sys.stderr.write(f"vpmu: {e}\n")
        return e.status
    except KeyboardInterrupt:
        sys.stderr.write("vpmu: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:                     # an internal error: still one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"vpmu: internal error: {type(e).__name__}: {e} (run with --debug for details)\n")
        return errors.EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
