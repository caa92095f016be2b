"""VM description files: a TOML alternative to the PMU/timer/PV-time command-line flags.

A description says what a VMM would configure through KVM - host PMUs, the vGIC, the vCPU's
PMU (version, selected host PMU, counter number, interrupt, filters in order), timer PPIs
and the PV-time base.  :func:`load` / :func:`loads` apply it through :mod:`vpmu.kvm` in the
order a VMM issues the ioctls, do the first ``KVM_RUN`` checks, and return the resulting
:class:`~vpmu.config.MachineConfig`.  So a description that would fail on real KVM fails
here, with the errno, the attribute and what KVM means by it (:class:`vpmu.kvm.KvmAttrError`).
:meth:`vpmu.options.RunOptions.to_machine_config` uses the same path for ``vpmu run``'s PMU
flags and ``--vm`` files.

Format (all tables and keys optional; unknown keys are an error naming the key)::

    memory = "128M"                     # RAM at 0x4000_0000 (a size: bytes, K/M/G, "1GiB"...)

    [host]                              # the machine KVM runs on
    steal_time = true                   # sched_info available (PV time)
    cpu = 0                             # CPU the VMM thread runs on
    [[host.pmu]]                        # one table per host PMU (default: one, as below)
    type = 8                            # perf type id (/sys/bus/event_source/devices/*/type)
    version = "3.7"                     # 3.0 3.1 3.4 3.5 3.7, "imp_def" or "none"
    counters = 6
    cpus = [0, 1, 2, 3]

    [vgic]
    enabled = true                      # false: no in-kernel irqchip
    nr_spis = 256                       # KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 32 + nr_spis

    [pmu]
    enabled = true                      # false: vCPU without KVM_ARM_VCPU_PMU_V3
    version = "3.4"                     # guest PMUVer (ID_AA64DFR0_EL1), <= min(host, 3.5)
    set_pmu = 8                         # KVM_ARM_VCPU_PMU_V3_SET_PMU
    counters = 4                        # KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS
    irq = 23                            # KVM_ARM_VCPU_PMU_V3_IRQ (default 23 with a vGIC)
    filters = ["deny:BR_MIS_PRED", "allow:0x4000-0x401F"]   # in order, CLI syntax

    [timer]                             # KVM_ARM_VCPU_TIMER_IRQ_* (only those given are set)
    vtimer = 27
    ptimer = 30

    [pvtime]
    ipa = 0x4800_0000                   # KVM_ARM_VCPU_PVTIME_IPA

Order of application (what QEMU does; KVM requires parts of it): create the vGIC device and
set NR_IRQS; create the vCPU with the PMU feature; guest PMUVer (ID register); SET_PMU;
SET_NR_COUNTERS; PMU IRQ; filters in order; vGIC CTRL_INIT (after all vCPUs exist - KVM
refuses new vCPUs afterwards); PMU INIT; timer IRQs; PV time; KVM_RUN checks.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import kvm
from .config import DEFAULT_MEMORY, DEFAULT_PMU_IRQ, PMU_VERSIONS, MachineConfig
from .errors import UsageError
from .filter import parse_filter
from .hostfile import read_regular
from .sizes import parse_size
from .kvm import KvmAttrError  # noqa: F401  (re-exported: failures of a description)

VM_FILE_MAX = 1 << 20           # a description is a few hundred bytes; refuse anything this large


class VmDescError(UsageError, ValueError):
    """The description itself is malformed (bad TOML, unknown key, wrong type...).
    Exit status ``EXIT_USAGE`` (2) in the CLI."""


@dataclass
class HostPmuDesc:
    type: int
    version: str = "3.7"
    counters: int = 6
    cpus: list = field(default_factory=lambda: [0, 1, 2, 3])
    name: str = "armv8_pmuv3_0"


@dataclass
class VmDesc:
    """A parsed description (defaults = what :func:`loads` uses for missing keys)."""
    memory: int = DEFAULT_MEMORY
    host_pmus: list = field(default_factory=lambda: [HostPmuDesc(type=8)])
    steal_time: bool = True
    host_cpu: int = 0
    vgic: bool = True
    nr_spis: Optional[int] = 256
    pmu: bool = True
    pmu_version: Optional[str] = None
    set_pmu: Optional[int] = None
    counters: Optional[int] = None
    irq: Optional[int] = None                    # None: 23 with a vGIC, unset without
    filters: list = field(default_factory=list)   # [(text, FilterRange)]
    timers: dict = field(default_factory=dict)    # name -> PPI
    pvtime_ipa: Optional[int] = None
    stolen_ns_per_ms: int = 0     # deterministic stolen time: ns lost per ms of guest time
    source: str = "<string>"

    def host(self) -> kvm.Host:
        return kvm.Host(pmus=[kvm.HostPmu(type=p.type, version=p.version, counters=p.counters,
                                          cpus=tuple(p.cpus), name=p.name)
                              for p in self.host_pmus],
                        steal_time=self.steal_time, current_cpu=self.host_cpu)


# ---------------------------------------------------------------------------------------------
# Parsing

_SCHEMA: dict[str, Any] = {
    "memory": "size",
    "host": {"steal_time": bool, "cpu": int, "pmu": "pmulist"},
    "vgic": {"enabled": bool, "nr_spis": int},
    "pmu": {"enabled": bool, "version": str, "set_pmu": int, "counters": int, "irq": int,
            "filters": "strlist"},
    "timer": {"vtimer": int, "ptimer": int, "hvtimer": int, "hptimer": int},
    "pvtime": {"ipa": int, "stolen_ns_per_ms": int},
}
_HOST_PMU_KEYS = {"type": int, "version": str, "counters": int, "cpus": "intlist", "name": str}


def _type_name(t: Any) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string", "size": "a size",
            "strlist": "a list of strings", "intlist": "a list of integers",
            "pmulist": "an array of tables ([[host.pmu]])"}.get(t, str(t))


def _check_type(key: str, value: Any, t: Any, source: str) -> Any:
    ok = False
    if t is bool:
        ok = isinstance(value, bool)
    elif t is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t is str:
        ok = isinstance(value, str)
    elif t == "strlist":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif t == "intlist":
        ok = (isinstance(value, list)
              and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    elif t == "size":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return parse_size(value)
            except ValueError:
                raise VmDescError(f"{source}: {key} = {value!r} is not a size "
                                  f"(e.g. 134217728, \"128M\" or \"1GiB\")") from None
    elif t == "pmulist":
        ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
    if not ok:
        raise VmDescError(f"{source}: {key} must be {_type_name(t)}, not {value!r}")
    return value


def _unknown(key: str, known, source: str) -> VmDescError:
    return VmDescError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(known))})")


def parse(text: str, source: str = "<string>") -> VmDesc:
    """Parse and validate a description (no KVM calls).  Raises :class:`VmDescError`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise VmDescError(f"{source}: invalid TOML: {e}") from None
    except RecursionError:              # tomllib parses nested arrays and inline tables recursively
        raise VmDescError(f"{source}: invalid TOML: arrays or tables nested too deeply") from None
    except ValueError as e:             # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        raise VmDescError(f"{source}: invalid TOML: {str(e).split(';')[0]}") from None
    d = VmDesc(source=source)
    for key, value in data.items():
        if key not in _SCHEMA:
            raise _unknown(key, _SCHEMA, source)
        spec = _SCHEMA[key]
        if not isinstance(spec, dict):
            setattr(d, key, _check_type(key, value, spec, source))
            continue
        if not isinstance(value, dict):
            raise VmDescError(f"{source}: {key} must be a table ([{key}])")
        for sub, v in value.items():
            full = f"{key}.{sub}"
            if sub not in spec:
                raise _unknown(full, [f"{key}.{k}" for k in spec], source)
            v = _check_type(full, v, spec[sub], source)
            _store(d, key, sub, v, source)
    if d.memory <= 0:
        raise VmDescError(f"{source}: memory must be positive")
    return d


def _store(d: VmDesc, table: str, key: str, v: Any, source: str) -> None:
    if table == "host":
        if key == "steal_time":
            d.steal_time = v
        elif key == "cpu":
            d.host_cpu = v
        else:
            d.host_pmus = [_host_pmu(i, t, source) for i, t in enumerate(v)]
            if not d.host_pmus:
                raise VmDescError(f"{source}: host.pmu is empty (omit it for the default PMU)")
    elif table == "vgic":
        if key == "enabled":
            d.vgic = v
        else:
            d.nr_spis = v
    elif table == "pmu":
        if key == "enabled":
            d.pmu = v
        elif key == "version":
            if v not in PMU_VERSIONS:
                raise VmDescError(f"{source}: pmu.version {v!r} is not one of {', '.join(PMU_VERSIONS)}")
            d.pmu_version = v
        elif key == "set_pmu":
            d.set_pmu = v
        elif key == "counters":
            d.counters = v
        elif key == "irq":
            d.irq = v
        else:
            parsed = []
            for i, text in enumerate(v):
                try:
                    parsed.append((text, parse_filter(text)))
                except ValueError as e:
                    raise VmDescError(f"{source}: pmu.filters[{i}]: {e}") from None
            d.filters = parsed
    elif table == "timer":
        d.timers[key] = v
    elif table == "pvtime":
        if key == "ipa":
            d.pvtime_ipa = v
        else:
            if v < 0 or v > 1_000_000:
                raise VmDescError(f"{source}: pvtime.stolen_ns_per_ms must be 0..1000000 (got {v})")
            d.stolen_ns_per_ms = v


def _host_pmu(i: int, t: dict, source: str) -> HostPmuDesc:
    kw = {}
    for k, v in t.items():
        full = f"host.pmu[{i}].{k}"
        if k not in _HOST_PMU_KEYS:
            raise _unknown(full, [f"host.pmu[{i}].{x}" for x in _HOST_PMU_KEYS], source)
        kw[k] = _check_type(full, v, _HOST_PMU_KEYS[k], source)
    if "type" not in kw:
        raise VmDescError(f"{source}: host.pmu[{i}] needs a 'type' (perf type id)")
    p = HostPmuDesc(**kw)
    try:
        kvm.HostPmu(type=p.type, version=p.version, counters=p.counters, cpus=tuple(p.cpus))
    except ValueError as e:
        raise VmDescError(f"{source}: host.pmu[{i}]: {e}") from None
    return p


# ---------------------------------------------------------------------------------------------
# Applying it through vpmu.kvm

def _call(desc: VmDesc, attribute: str, group: Any, attr: Any, fn, *args, what: str = ""):
    try:
        return fn(*args)
    except OSError as e:
        raise KvmAttrError(e, attribute, group, attr, what, desc.source) from None


def apply(desc: VmDesc) -> tuple[kvm.Vm, kvm.Vcpu]:
    """Issue the KVM calls of ``desc`` in VMM order, up to (not including) KVM_RUN."""
    P, T = kvm.KVM_ARM_VCPU_PMU_V3_CTRL, kvm.KVM_ARM_VCPU_TIMER_CTRL
    vm = _call(desc, "KVM_SET_USER_MEMORY_REGION", "KVM_SET_USER_MEMORY_REGION", None,
               kvm.Vm, desc.host(), desc.memory)
    vgic = None
    if desc.vgic:
        vgic = _call(desc, "KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)", "KVM_CREATE_DEVICE", None,
                     vm.create_device, kvm.KVM_DEV_TYPE_ARM_VGIC_V3)
        if desc.nr_spis is not None:
            _call(desc, "KVM_DEV_ARM_VGIC_GRP_NR_IRQS", "vGIC", kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
                  vgic.set_attr, kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0,
                  kvm.VGIC_NR_PRIVATE_IRQS + desc.nr_spis, what=f"nr_spis = {desc.nr_spis}")
    vcpu = _call(desc, "KVM_ARM_VCPU_INIT", "KVM_ARM_VCPU_INIT", None, vm.create_vcpu, desc.pmu)
    if desc.pmu_version is not None:
        try:
            _call(desc, "KVM_SET_ONE_REG(ID_AA64DFR0_EL1.PMUVer)", "KVM_SET_ONE_REG", None,
                  vcpu.set_id_pmuver, desc.pmu_version, what=f"version = {desc.pmu_version!r}")
        except ValueError as e:
            raise VmDescError(f"{desc.source}: pmu.version: {e}") from None
    if desc.set_pmu is not None:
        _call(desc, "KVM_ARM_VCPU_PMU_V3_SET_PMU", P, kvm.KVM_ARM_VCPU_PMU_V3_SET_PMU,
              vcpu.set_attr, P, kvm.KVM_ARM_VCPU_PMU_V3_SET_PMU, desc.set_pmu,
              what=f"set_pmu = {desc.set_pmu}")
    if desc.counters is not None:
        _call(desc, "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS", P, kvm.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS,
              vcpu.set_attr, P, kvm.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, desc.counters,
              what=f"counters = {desc.counters}")
    irq = desc.irq if desc.irq is not None else (DEFAULT_PMU_IRQ if desc.vgic and desc.pmu else None)
    if irq is not None:
        _call(desc, "KVM_ARM_VCPU_PMU_V3_IRQ", P, kvm.KVM_ARM_VCPU_PMU_V3_IRQ,
              vcpu.set_attr, P, kvm.KVM_ARM_VCPU_PMU_V3_IRQ, irq, what=f"irq = {irq}")
    for i, (text, rng) in enumerate(desc.filters):
        for s in rng.to_structs():
            _call(desc, "KVM_ARM_VCPU_PMU_V3_FILTER", P, kvm.KVM_ARM_VCPU_PMU_V3_FILTER,
                  vcpu.set_attr, P, kvm.KVM_ARM_VCPU_PMU_V3_FILTER, s,
                  what=f"filters[{i}] = {text!r}")
    if vgic is not None:
        _call(desc, "KVM_DEV_ARM_VGIC_CTRL_INIT", "vGIC", kvm.KVM_DEV_ARM_VGIC_GRP_CTRL,
              vgic.set_attr, kvm.KVM_DEV_ARM_VGIC_GRP_CTRL, kvm.KVM_DEV_ARM_VGIC_CTRL_INIT)
    if desc.pmu:
        _call(desc, "KVM_ARM_VCPU_PMU_V3_INIT", P, kvm.KVM_ARM_VCPU_PMU_V3_INIT,
              vcpu.set_attr, P, kvm.KVM_ARM_VCPU_PMU_V3_INIT)
    names = {v: k for k, v in kvm.TIMER_NAMES.items()}
    for name in ("vtimer", "ptimer", "hvtimer", "hptimer"):
        if name in desc.timers:
            a = names[name]
            _call(desc, kvm.attr_name(T, a), T, a, vcpu.set_attr, T, a, desc.timers[name],
                  what=f"timer.{name} = {desc.timers[name]}")
    if desc.pvtime_ipa is not None:
        V, a = kvm.KVM_ARM_VCPU_PVTIME_CTRL, kvm.KVM_ARM_VCPU_PVTIME_IPA
        _call(desc, "KVM_ARM_VCPU_PVTIME_IPA", V, a, vcpu.set_attr, V, a, desc.pvtime_ipa,
              what=f"pvtime.ipa = {desc.pvtime_ipa:#x}")
    return vm, vcpu


def build(desc: VmDesc) -> MachineConfig:
    """Apply ``desc`` and do the first-``KVM_RUN`` checks; return the MachineConfig.
    (A supported-CPUs mismatch raises :class:`vpmu.kvm.KvmExitFailEntry`.)"""
    _vm, vcpu = apply(desc)
    cfg = _call(desc, "KVM_RUN", "KVM_RUN", None, vcpu.run)
    cfg.stolen_ns_per_ms = desc.stolen_ns_per_ms
    return cfg


def loads(text: str, source: str = "<string>") -> MachineConfig:
    """Parse, apply and check a description given as TOML text."""
    return build(parse(text, source))


def parse_file(path) -> VmDesc:
    """Read and parse a description file (no KVM calls)."""
    p = Path(path)
    raw = read_regular(str(p), "the VM description", VM_FILE_MAX, "a VM description may have", VmDescError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise VmDescError(f"{p}: cannot read: {e}") from None
    return parse(text, str(p))


def load(path) -> MachineConfig:
    """Parse, apply and check a description file."""
    return build(parse_file(path))
