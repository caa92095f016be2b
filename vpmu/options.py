"""Run options: everything ``vpmu run`` and ``vpmu.run()`` accept, as one typed value.

:class:`RunOptions` is the one table of a run's options.  Each field carries its command-line
form as metadata (:class:`CliForm`: argument group, flag, metavar, help, value parser), so
``vpmu run`` builds its parser from this class (:mod:`vpmu.commands.run`) and
``vpmu.run(elf, **kw)`` takes the same names (:meth:`RunOptions.from_keywords` rejects an
unknown name and suggests the nearest one).  Values are checked when the object is made; a
bad one raises :class:`vpmu.errors.UsageError` (exit status 2) naming the option.

:meth:`RunOptions.to_machine_config` is the single place where options become a
:class:`~vpmu.config.MachineConfig`.  The PMU flags, or a ``--vm`` description, are applied
through :mod:`vpmu.kvm` in the order a VMM issues the ioctls (:func:`vpmu.vmdesc.build`), so a
combination real KVM refuses fails here with its errno (:class:`vpmu.kvm.KvmAttrError`, exit
status 105); then the models, board and run-control options are added.

The PMU flags and a ``--vm`` file (docs/kvm.md, "The runner's flags"):

- without ``--vm`` the flags describe the emulated hardware: the implied host has one PMU of
  ``pmu_version`` (default 3.7) with ``counters`` counters (default 6), and the guest gets
  exactly ``pmu_version`` - including 3.7, which real KVM caps to 3.5 (the flag names the
  guest's PMUVer; a documented choice);
- with ``--vm`` the file describes the host and the VM and KVM's rules apply unchanged;
  ``pmu_version``, ``counters``, ``pmu_irq`` and ``no_pmu`` override its ``[pmu]`` table when
  given, ``filters`` are applied after the file's, and ``memory`` overrides the file's
  ``memory`` only when given (the file's value, default 128M, otherwise).
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional, Union

from .config import (APPEND_MAX, COUNT_MAX, CYCLE_COST_MAX, MEMORY_MAX, MEMORY_MIN, PMU_VERSIONS,
                     PMUVER_V3P5, VIRTIO_CONSOLE_BACKENDS, XEN_DOMID_MAX, CacheModel, CycleModel,
                     MachineConfig, TraceLimit)
from .errors import UsageError
from .filter import parse_filter
from .pmu.layout import CACHE_MAX_LINES
from .sizes import format_size, parse_size
from .vmdesc import HostPmuDesc, VmDesc, VmDescError, build, parse_file

XEN_VPMU_MODES = ("off", "self", "hv", "all")
MAX_COUNTERS = 31                       # PMCR_EL0.N is 5 bits; 31 is the cycle counter's index
RTC_MAX = (1 << 32) - 1                 # the PL031's count is 32 bits

# What the flags imply without --vm: the host PMU (perf type 8 as on most arm64 hosts) and its
# counters; the PMU version default is the newest modelled one.
DEFAULT_PMU_VERSION = "3.7"
DEFAULT_COUNTERS = 6
IMPLIED_HOST_PMU_TYPE = 8


# ---------------------------------------------------------------------------------------------
# Option values as text (the command line, and strings given to vpmu.run())

def parse_int(text: str) -> int:
    """An integer in any base Python accepts (``23``, ``0x17``).  ValueError: ``not a number``."""
    try:
        return int(text, 0)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {text!r}") from None


def _kv_model(cls, spec: str, what: str, sizes: bool, limit: int):
    obj = cls()
    if not isinstance(spec, str):
        raise ValueError(f"{what}: expected text like 'name=value,...', not {spec!r}")
    for item in filter(None, (x.strip() for x in spec.split(","))):
        k, sep, v = item.partition("=")
        k = k.strip().replace("-", "_")
        if not sep or not hasattr(obj, k) or k == "enabled":
            names = ", ".join(f.replace("_", "-") for f in vars(obj) if f != "enabled")
            raise ValueError(f"{what}: unknown item {item!r} (known: {names})")
        try:
            val = parse_size(v) if sizes else int(v, 0)
        except ValueError:
            raise ValueError(f"{what}: {k} needs a number, got {v!r}") from None
        if val < 0:
            raise ValueError(f"{what}: {k} must not be negative")
        if val > limit:
            raise ValueError(f"{what}: {k.replace('_', '-')}={v.strip()} is too large (at most {limit})")
        setattr(obj, k, val)
    return obj


def parse_cycle_model(spec: str) -> CycleModel:
    """``--cycles base=1,load=2,mispredict=10,l1d-refill=20`` (ValueError on a bad item)."""
    m = _kv_model(CycleModel, spec, "--cycles", sizes=False, limit=CYCLE_COST_MAX)
    problem = m.problem()
    if problem:
        raise ValueError(f"--cycles: {problem}")
    return m


def parse_cache_model(spec: str) -> CacheModel:
    """``--cache line=64,l1d-size=32K,...`` (sizes as :func:`vpmu.sizes.parse_size`); the
    model is enabled from the start of the run."""
    m = _kv_model(CacheModel, spec, "--cache", sizes=True, limit=MEMORY_MAX)
    m.enabled = True
    problem = m.problem(CACHE_MAX_LINES)
    if problem:
        raise ValueError(f"--cache: {problem}")
    return m


def parse_trace_limit(text: str) -> TraceLimit:
    """``--trace-limit``: a number of records (``100000``, ``0x1000``) or, with a byte unit, a
    size of the trace file (``64MiB``, ``512KB``, ``4096B``; :func:`vpmu.sizes.parse_size`).
    ``0`` means no limit."""
    if not isinstance(text, str):
        raise ValueError(f"--trace-limit: expected a number of records or a size in bytes, not {text!r}")
    t = text.strip()
    try:
        is_size = t[-1:].lower() == "b" and not t[:2].lower() == "0x"
        size, records = (parse_size(t), 0) if is_size else (0, int(t, 0))
    except ValueError:
        raise ValueError(f"--trace-limit: not a number of records or a size ending in B: {text!r} "
                         "(e.g. 1000000 records, 64MiB)") from None
    try:
        return TraceLimit(records=records, size=size)
    except ValueError as e:
        raise ValueError(f"--trace-limit: {e}") from None


# ---------------------------------------------------------------------------------------------
# The table

@dataclass(frozen=True)
class CliForm:
    """How a :class:`RunOptions` field appears on the ``vpmu run`` command line."""
    group: str                                      # argument group in --help
    help: str
    metavar: Optional[str] = None
    flag: Optional[str] = None                      # default: --field-name
    parse: Optional[Callable[[str], Any]] = None    # text -> value; ValueError on bad text
    choices: Optional[tuple] = None
    repeat: bool = False                            # the flag may be given several times

    def flag_for(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def _option(default: Any, **cli: Any) -> Any:
    return field(default=default, metadata={"cli": CliForm(**cli)})


@dataclass(frozen=True)
class RunOptions:
    """The options of one run (``vpmu run --help`` has the same names with dashes).

    String values are accepted where the command line takes text: ``memory="1G"``,
    ``cycles="base=2"``, ``cache="line=64,l1d-size=512"``.  ``None`` means "not given" (the
    default, or the ``--vm`` file's value, applies).
    """
    # -- PMU (applied through vpmu.kvm like a VMM would)
    pmu_version: Optional[str] = _option(
        None, group="PMU", choices=tuple(sorted(PMU_VERSIONS)),
        help="guest PMU version: 3.0 (10-bit events), 3.1, 3.4, 3.5 (64-bit counters, PMCR.LP), 3.7 "
             "(default 3.7)")
    counters: Optional[int] = _option(
        None, group="PMU", metavar="N", parse=parse_int,
        help="event counters, PMCR_EL0.N (0..31, default 6)")
    pmu_irq: Optional[int] = _option(
        None, group="PMU", metavar="INTID", parse=parse_int, help="overflow interrupt (default 23 = PPI 7)")
    no_pmu: bool = _option(
        False, group="PMU", help="vCPU without the PMU feature: every PMU register UNDEFs")
    filters: tuple = _option(
        (), group="PMU", flag="--filter", repeat=True, metavar="allow|deny:FIRST[-LAST]",
        help="KVM event filter range, repeatable, applied in order like successive "
             "KVM_ARM_VCPU_PMU_V3_FILTER calls; inclusive; numbers (hex/decimal), Arm event names "
             "or perf's (deny:branch-misses, allow:instructions-cycles, deny:r10)")
    vm: Optional[str] = _option(
        None, group="PMU", metavar="FILE",
        help="VM description (TOML: host, vGIC, PMU, timers, PV time, memory) instead of the "
             "PMU/timer flags; the flags given override it (docs/kvm.md)")
    # -- models
    cycles: Optional[CycleModel] = _option(
        None, group="models", metavar="SPEC", parse=parse_cycle_model,
        help="cycle model, e.g. base=1,load=2,mispredict=10,l1d-refill=20 (default: 1 cycle/insn)")
    cache: Optional[CacheModel] = _option(
        None, group="models", metavar="SPEC", parse=parse_cache_model,
        help="L1 cache model, e.g. line=64,l1d-size=32K,l1d-ways=4,l1i-size=32K,l1i-ways=2")
    # -- board
    memory: Optional[int] = _option(
        None, group="board", metavar="SIZE", parse=parse_size,
        help="RAM size, e.g. 128M, 1GiB, 0x8000000 (default 128M, or the --vm file's memory)")
    append: Optional[str] = _option(
        None, group="board", metavar="ARGS", help="kernel command line (/chosen/bootargs)")
    dtb: Optional[str] = _option(
        None, group="board", metavar="FILE",
        help="use this device tree blob instead of the generated one (QEMU's edits applied: /memory, "
             "/chosen, /psci)")
    initrd: Optional[str] = _option(
        None, group="board", metavar="FILE",
        help="initial RAM disk, loaded as QEMU's -initrd (Image/flat kernels: at RAM + min(RAM/2, 128M) or "
             "after the kernel) and named by /chosen/linux,initrd-start/end")
    virtio_console: Optional[str] = _option(
        None, group="board", choices=VIRTIO_CONSOLE_BACKENDS,
        help="add QEMU virt's 32 virtio-mmio transports (0x0a000000, SPI 16-47) with a legacy virtio "
             "console on the last one, its port 0 connected to: testdev (QEMU's chr-testdev: the guest "
             "writing 'Nq' ends the run with status (N << 1) | 1, kvm-unit-tests' exit path), stdio "
             "(standard output) or null (docs/qemu-compat.md)")
    no_semihosting: bool = _option(
        False, group="board",
        help="no Arm semihosting: HLT #0xF000 is an Undefined Instruction, as on QEMU without -semihosting "
             "(default: on at EL1; it reaches the console and the run's exit, never host files)")
    rtc_base: Optional[int] = _option(
        None, group="board", metavar="SECONDS", parse=parse_int,
        help="the PL031 RTC's time at the start of the run, in seconds since the epoch (default: the host "
             "clock; give it for deterministic runs)")
    seed: int = _option(
        0, group="board", metavar="N", parse=parse_int,
        help="derive /chosen/rng-seed and kaslr-seed (Linux's early entropy and KASLR offset) from N "
             "(default 0: every run boots the same)")
    # -- Xen
    xen: bool = _option(False, group="Xen", help="enable the Xen hypercall frontend (HVC #0xEA1)")
    xen_domid: int = _option(
        0, group="Xen", metavar="N", parse=parse_int, help="domain id (0 = dom0, default)")
    xen_vpmu: str = _option("self", group="Xen", choices=XEN_VPMU_MODES, help="vPMU boot mode")
    # -- run control
    max_insns: Optional[int] = _option(
        None, group="run control", metavar="N", parse=parse_int, help="stop after N instructions (error)")
    max_output: Optional[int] = _option(
        None, group="run control", metavar="SIZE", parse=parse_size,
        help="stop (status 103) when the guest writes more than SIZE bytes of console output: UART, "
             "semihosting, Xen console (default 1G)")
    trace: Optional[str] = _option(None, group="run control", metavar="FILE", help="write a JSON Lines trace")
    trace_pmu_regs: bool = _option(
        False, group="run control", help="also trace every PMU register access")
    trace_sample: int = _option(
        0, group="run control", metavar="N", parse=parse_int,
        help="also record every counter each N retired instructions (at the next block boundary)")
    trace_limit: TraceLimit = _option(
        TraceLimit(), group="run control", metavar="N|SIZE", parse=parse_trace_limit,
        help=f"stop recording after N trace records or SIZE bytes (e.g. 64MiB): a final 'truncated' "
             f"record says so, the exit or error record still ends the trace; 0 = no limit "
             f"(default {TraceLimit.DEFAULT_RECORDS} records)")
    eager: bool = _option(
        False, group="run control",
        help="count every block when it completes instead of deferring the adds to the next point "
             "that can observe them (same results, slower; for cross-checking)")

    # -- making and checking ------------------------------------------------------------------
    @classmethod
    def from_keywords(cls, **kw: Any) -> "RunOptions":
        """``vpmu.run()``'s keywords.  An unknown name raises TypeError with the nearest
        known name (``filter`` -> ``did you mean 'filters'?``)."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in kw if k not in names]
        if unknown:
            parts = []
            for k in unknown:
                close = difflib.get_close_matches(k, names, n=1)
                parts.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise TypeError(f"unknown run option{'s' if len(parts) > 1 else ''} {', '.join(parts)}; "
                            f"the options are {', '.join(names)}")
        return cls(**kw)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.pmu_version is not None and self.pmu_version not in PMU_VERSIONS:
            raise UsageError(f"--pmu-version: unknown version {self.pmu_version!r} "
                             f"(use one of {', '.join(PMU_VERSIONS)})")
        for name in ("counters", "pmu_irq", "max_insns", "xen_domid", "trace_sample", "rtc_base", "seed"):
            _check_int(name, getattr(self, name), optional=name not in ("xen_domid", "trace_sample", "seed"))
        if self.rtc_base is not None and not 0 <= self.rtc_base <= RTC_MAX:
            raise UsageError(f"--rtc-base must be in 0..{RTC_MAX} (the PL031 counts 32-bit seconds; "
                             f"got {self.rtc_base})")
        if not 0 <= self.seed < 1 << 64:
            raise UsageError(f"--seed must be in 0..2**64-1 (got {self.seed})")
        if self.counters is not None and not 0 <= self.counters <= MAX_COUNTERS:
            raise UsageError(f"--counters must be in 0..{MAX_COUNTERS} (got {self.counters})")
        put("filters", _filters(self.filters))
        put("vm", None if self.vm is None else os.fspath(self.vm))
        put("cycles", _model(self.cycles, CycleModel, parse_cycle_model))
        put("cache", _model(self.cache, CacheModel, parse_cache_model))
        put("memory", _memory(self.memory))
        if self.virtio_console is not None and self.virtio_console not in VIRTIO_CONSOLE_BACKENDS:
            raise UsageError(f"--virtio-console must be one of {', '.join(VIRTIO_CONSOLE_BACKENDS)} "
                             f"(got {self.virtio_console!r})")
        if self.xen_vpmu not in XEN_VPMU_MODES:
            raise UsageError(f"--xen-vpmu must be one of {', '.join(XEN_VPMU_MODES)} (got {self.xen_vpmu!r})")
        # Numbers the model holds in uint64 arena words and adds to counts: below 2**63, so a
        # sum with the instruction count cannot wrap.
        if self.max_insns is not None and not 1 <= self.max_insns <= COUNT_MAX:
            raise UsageError(f"--max-insns must be at least 1 (got {self.max_insns})" if self.max_insns < 1
                             else f"--max-insns must be at most 2**63-1 (got {self.max_insns})")
        if not 0 <= self.trace_sample <= COUNT_MAX:
            raise UsageError("--trace-sample must not be negative" if self.trace_sample < 0
                             else f"--trace-sample must be at most 2**63-1 (got {self.trace_sample})")
        # KVM_ARM_VCPU_PMU_V3_IRQ reads an int: a value outside it cannot reach KVM at all
        if self.pmu_irq is not None and not -2**31 <= self.pmu_irq < 2**31:
            raise UsageError(f"--pmu-irq {self.pmu_irq} does not fit the attribute's int (KVM_ARM_VCPU_PMU_V3_IRQ)")
        # domid_t: ids from DOMID_FIRST_RESERVED (0x7FF0) up are DOMID_SELF, DOMID_IO, ... (xen.h)
        if not 0 <= self.xen_domid <= XEN_DOMID_MAX:
            raise UsageError(f"--xen-domid must be a domain id in 0..{XEN_DOMID_MAX:#x} (got {self.xen_domid}; "
                             "0x7ff0 and up are reserved ids such as DOMID_SELF)")
        put("append", _append(self.append))
        put("trace_limit", _trace_limit(self.trace_limit))
        put("max_output", _max_output(self.max_output))
        put("trace", None if self.trace is None else os.fspath(self.trace))
        put("dtb", None if self.dtb is None else os.fspath(self.dtb))
        put("initrd", None if self.initrd is None else os.fspath(self.initrd))

    # -- the machine ------------------------------------------------------------------------
    def vm_description(self) -> tuple[VmDesc, Optional[str]]:
        """The VM a VMM would configure for these options: the ``--vm`` file with the flags
        applied over it, or the VM the flags imply.  Also returns the guest PMU version to
        report when it is above KVM's cap (only without ``--vm``, see the module docstring)."""
        above_cap = None
        if self.vm is not None:
            desc = parse_file(self.vm)
            if self.pmu_version is not None:
                desc.pmu_version = self.pmu_version
        else:
            desc = VmDesc(source="command line")
            version = self.pmu_version or DEFAULT_PMU_VERSION
            desc.host_pmus = [HostPmuDesc(type=IMPLIED_HOST_PMU_TYPE, version=version,
                                          counters=DEFAULT_COUNTERS if self.counters is None else self.counters)]
            if PMU_VERSIONS[version] > PMUVER_V3P5:
                above_cap = version
        if self.memory is not None:
            desc.memory = self.memory
        elif not MEMORY_MIN <= desc.memory <= MEMORY_MAX:
            raise VmDescError(f"{desc.source}: memory = {format_size(desc.memory)} is outside what the "
                              f"board supports ({format_size(MEMORY_MIN)}..{format_size(MEMORY_MAX)})")
        if self.no_pmu:
            desc.pmu = False
        if self.counters is not None:
            desc.counters = self.counters
        if self.pmu_irq is not None:
            desc.irq = self.pmu_irq
        desc.filters = desc.filters + [(text, parse_filter(text)) for text in self.filters]
        return desc, above_cap

    def to_machine_config(self) -> MachineConfig:
        """The :class:`~vpmu.config.MachineConfig` of a run with these options (see the module
        docstring).  Raises :class:`vpmu.errors.UsageError` / :class:`vpmu.vmdesc.VmDescError`
        (status 2) or :class:`vpmu.kvm.KvmAttrError` / ``KvmExitFailEntry`` (status 105)."""
        desc, above_cap = self.vm_description()
        cfg = build(desc)
        if above_cap is not None and cfg.pmu.present:
            cfg.pmu.version = above_cap
        cfg.cycles = self.cycles or CycleModel()
        cfg.cache = self.cache or CacheModel()
        cfg.append, cfg.dtb_path, cfg.initrd_path = self.append, self.dtb, self.initrd
        cfg.semihosting = not self.no_semihosting
        cfg.rtc_base, cfg.seed = self.rtc_base, self.seed
        cfg.virtio_console = self.virtio_console
        cfg.xen, cfg.xen_domid, cfg.xen_vpmu = self.xen, self.xen_domid, self.xen_vpmu
        cfg.max_insns, cfg.trace_path = self.max_insns, self.trace
        if self.max_output is not None:
            cfg.max_output = self.max_output
        cfg.trace_pmu_regs, cfg.trace_sample = self.trace_pmu_regs, self.trace_sample
        cfg.trace_limit = self.trace_limit
        cfg.defer = not self.eager
        return cfg


# ---------------------------------------------------------------------------------------------
# Checks of single values

def _check_int(name: str, value: Any, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"--{name.replace('_', '-')} must be an integer, not {value!r}")


def _filters(items: Any) -> tuple:
    if items is None:
        return ()
    if isinstance(items, str):
        raise UsageError(f"filters must be a list of 'allow|deny:FIRST[-LAST]' items, not the string {items!r}")
    out = tuple(items)
    for text in out:
        try:
            parse_filter(text)
        except ValueError as e:
            raise UsageError(f"--filter: {e}") from None
    return out


def _model(value: Any, cls: type, parse: Callable[[str], Any]) -> Any:
    if isinstance(value, CycleModel) and value.problem():
        raise UsageError(f"--cycles: {value.problem()}")
    if isinstance(value, CacheModel) and value.problem(CACHE_MAX_LINES):
        raise UsageError(f"--cache: {value.problem(CACHE_MAX_LINES)}")
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return parse(value)
        except ValueError as e:
            raise UsageError(str(e)) from None
    raise UsageError(f"expected a {cls.__name__} or its text form, not {value!r}")


def _append(value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"--append must be text, not {value!r}")
    if len(value) > APPEND_MAX:
        raise UsageError(f"--append is {len(value)} characters; the device tree's /chosen/bootargs takes at "
                         f"most {APPEND_MAX}")
    bad = next((c for c in value if not " " <= c <= "~"), None)
    if bad is not None:
        raise UsageError(f"--append contains {bad!r}: only printable ASCII is supported (/chosen/bootargs)")
    return value


def _trace_limit(value: Any) -> TraceLimit:
    if isinstance(value, TraceLimit):
        return value
    if isinstance(value, str):
        try:
            return parse_trace_limit(value)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return TraceLimit(records=value)
        except ValueError as e:
            raise UsageError(f"--trace-limit: {e}") from None
    raise UsageError(f"--trace-limit must be a number of records, a size such as '64MiB' or a TraceLimit, "
                     f"not {value!r}")


def _size(flag: str, value: Union[int, str, None]) -> Optional[int]:
    """A size option's value (bytes, or text such as '64MiB'), None when not given."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = parse_size(value)
        except ValueError as e:
            raise UsageError(f"{flag}: {e}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{flag} must be a size, not {value!r}")
    return value


def _max_output(value: Union[int, str, None]) -> Optional[int]:
    value = _size("--max-output", value)
    if value is not None and value < 1:
        raise UsageError(f"--max-output must be at least 1 byte (got {value})")
    return value


def _memory(value: Union[int, str, None]) -> Optional[int]:
    value = _size("--memory", value)
    if value is None:
        return None
    if not MEMORY_MIN <= value <= MEMORY_MAX or value % 4096:
        raise UsageError(f"--memory must be a multiple of 4 KiB between 1M and 4G (got {value:#x})")
    return value

