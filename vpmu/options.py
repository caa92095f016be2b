"""Run options: what ``vpmu run`` and ``vpmu.run()`` accept, turned into a MachineConfig.

:func:`config_from_options` builds the :class:`~vpmu.config.MachineConfig` the way a VMM
builds a KVM vCPU (through :mod:`vpmu.vmdesc` and :mod:`vpmu.kvm`); :func:`parse_size`,
:func:`cycle_model` and :func:`cache_model` parse the option values.
"""
from __future__ import annotations

import argparse

from . import errors
from .config import CacheModel, CycleModel, MachineConfig, PmuConfig


def parse_size(s: str) -> int:
    s = s.strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        if s[-1:].upper() in mult:
            return int(s[:-1], 0) * mult[s[-1].upper()]
        return int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {s!r} (use e.g. 128M, 1G, 0x8000000)") from None


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
