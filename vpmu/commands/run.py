"""``vpmu run``: run a guest; the run options, ``--summary``."""
from __future__ import annotations

import argparse
import sys

from .. import api, errors
from ..config import PMU_VERSIONS
from ..options import cache_model, config_from_options, cycle_model, parse_size
from ..pmu import events


def register(sub) -> None:
    r = sub.add_parser("run", help="run a guest (ELF, Linux Image or flat binary)",
                       description="Run a guest. Its UART/semihosting output goes to stdout and its exit status "
                                   "(semihosting SYS_EXIT, PSCI SYSTEM_OFF = 0) becomes ours. Runner errors exit "
                                   "with " + ", ".join(f"{k} ({v})" for k, v in errors.EXIT_STATUSES.items()) + ".")
    r.add_argument("guest", metavar="GUEST", help="guest image")
    add_machine_options(r)
    r.add_argument("--summary", action="store_true", help="print the final PMU registers to stderr")
    r.set_defaults(func=cmd_run)


def _int(s: str) -> int:
    try:
        return int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None


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


def _summary(res) -> str:
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
    cfg = config_from_options(pmu_version=args.pmu_version, counters=args.counters, pmu_irq=args.pmu_irq,
                              no_pmu=args.no_pmu, filters=args.filter, vm=args.vm, cycles=args.cycles,
                              cache=args.cache, memory=args.memory, append=args.append, dtb=args.dtb,
                              xen=args.xen, xen_domid=args.xen_domid, xen_vpmu=args.xen_vpmu,
                              max_insns=args.max_insns, trace=args.trace, trace_pmu_regs=args.trace_pmu_regs,
                              trace_sample=args.trace_sample, eager=args.eager)
    res = api.run_config(args.guest, cfg, capture=False, keep_trace=False, raise_errors=True)
    if args.summary:
        sys.stderr.write(_summary(res))
    return res.exit_status
