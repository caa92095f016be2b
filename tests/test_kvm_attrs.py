"""vpmu.kvm: every errno row of kvm-pmu.md section 1 in KVM's check order, the first-run
checks, the MachineConfig it yields, explain(), and the vmdesc loader built on it.

Rows that prove an *order* build a situation where two rules fail at once and assert that
the earlier one (per pmu-emul.c / arch_timer.c / pvtime.c / guest.c) wins; the ``also``
column names the rule that would fail next, and the test checks that vpmu.kvm.checks_for()
lists the rules in the same order.
"""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from vpmu import kvm, vmdesc
from vpmu.config import MachineConfig
from vpmu.errors import UsageError
from vpmu.filter import KvmPmuEventFilter, parse_filter
from vpmu.kvm import (BAD_ADDRESS, INVALID_GPA, KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR,
                      KVM_SET_DEVICE_ATTR, Host, HostPmu, KvmDeviceAttr, Vm)
from vpmu.options import RunOptions

P = kvm.KVM_ARM_VCPU_PMU_V3_CTRL
T = kvm.KVM_ARM_VCPU_TIMER_CTRL
V = kvm.KVM_ARM_VCPU_PVTIME_CTRL
IRQ, INIT, FILTER, SET_PMU, NR = 0, 1, 2, 3, 4
VTIMER, PTIMER, HVTIMER, HPTIMER = 0, 1, 2, 3
IPA = kvm.KVM_ARM_VCPU_PVTIME_IPA
ALLOW, DENY = 0, 1
RAM = kvm.RAM_BASE


def flt(base, n, action=DENY):
    return KvmPmuEventFilter(base, n, action)


def make(vgic: str | None = "init", pmu: bool = True, vcpus: int = 1, host: Host | None = None,
         nr_spis: int | None = None):
    """A VM with ``vcpus`` vCPUs; vgic None / "created" / "init"."""
    vm = Vm(host)
    if vgic:
        vm.create_vgic(nr_spis=nr_spis, init=False)
    cpus = [vm.create_vcpu(pmu=pmu) for _ in range(vcpus)]
    if vgic == "init":
        vm.vgic.init()
    return vm, cpus


def ready(vcpu, irq=23):
    """IRQ (if irqchip) + INIT."""
    if vcpu.vm.vgic is not None:
        vcpu.set_attr(P, IRQ, irq)
    vcpu.set_attr(P, INIT)
    return vcpu


def ran_vm(vcpus=2):
    """A VM whose vCPU 0 has run; vCPU 1 has the PMU feature but no IRQ/INIT yet."""
    vm, cpus = make(vcpus=vcpus)
    ready(cpus[0]).run()
    return vm, cpus


two_pmu_host = lambda **kw: Host(pmus=[HostPmu(type=8, cpus=(0, 1, 2, 3)),  # noqa: E731
                                       HostPmu(type=9, counters=4, cpus=(4, 5, 6, 7),
                                               name="armv8_pmuv3_1")], **kw)


# ---------------------------------------------------------------------------------------------
# The errno table

@dataclass
class Row:
    id: str
    op: str                  # set / get / has / other
    group: object
    attr: object
    err: int
    check: str
    fn: Callable
    also: list = field(default_factory=list)   # rules that would also fail, in KVM's later order


ROWS: list[Row] = []


def row(id, op, group, attr, err, check, also=()):
    def deco(fn):
        ROWS.append(Row(id, op, group, attr, err, check, fn, list(also)))
        return fn
    return deco


# -- dispatch (guest.c / arm.c) ---------------------------------------------------------------
@row("dispatch: attr struct faults", "set", P, IRQ, errno.EFAULT, "dispatch.efault", ["dispatch.group"])
def _():
    make()[1][0].ioctl(KVM_SET_DEVICE_ATTR, BAD_ADDRESS)


@row("dispatch: get attr struct faults", "get", P, IRQ, errno.EFAULT, "dispatch.efault")
def _():
    make()[1][0].ioctl(KVM_GET_DEVICE_ATTR, BAD_ADDRESS)


@row("dispatch: unknown group (set) before the payload", "set", 3, 0, errno.ENXIO, "dispatch.group")
def _():
    make()[1][0].set_attr(3, 0, BAD_ADDRESS)


@row("dispatch: unknown group (get)", "get", 3, 0, errno.ENXIO, "dispatch.group")
def _():
    make()[1][0].get_attr(3, 0)


@row("dispatch: unknown group (has)", "has", 3, 0, errno.ENXIO, "dispatch.group")
def _():
    make()[1][0].has_attr(3, 0)


# -- PMU group common prefix ------------------------------------------------------------------
@row("pmu: no PMU feature", "set", P, IRQ, errno.ENODEV, "pmu.nodev", ["irq.no_irqchip"])
def _():
    make(vgic=None, pmu=False)[1][0].set_attr(P, IRQ, 23)


@row("pmu: no PMU feature beats unknown attr id", "set", P, 99, errno.ENODEV, "pmu.nodev",
     ["pmu.unknown_attr"])
def _():
    make(pmu=False)[1][0].set_attr(P, 99)


@row("pmu: no PMU feature beats a faulting filter", "set", P, FILTER, errno.ENODEV, "pmu.nodev",
     ["filter.efault"])
def _():
    make(pmu=False)[1][0].set_attr(P, FILTER, BAD_ADDRESS)


@row("pmu: after INIT even an unknown attr id is EBUSY", "set", P, 99, errno.EBUSY, "pmu.created",
     ["pmu.unknown_attr"])
def _():
    ready(make()[1][0]).set_attr(P, 99)


for _attr, _val, _also in [(IRQ, 23, "irq.busy"), (INIT, None, None), (FILTER, flt(0, 1, 3), "filter.invalid"),
                           (SET_PMU, 99, "set_pmu.notfound"), (NR, 99, "nr.too_many")]:
    def _mk(attr=_attr, val=_val):
        def fn():
            ready(make()[1][0]).set_attr(P, attr, val)
        return fn
    ROWS.append(Row(f"pmu: attr {_attr} after INIT is EBUSY before its own checks", "set", P, _attr,
                    errno.EBUSY, "pmu.created", _mk(), [_also] if _also else []))


@row("pmu: IRQ after INIT without irqchip is EBUSY (not EINVAL)", "set", P, IRQ, errno.EBUSY,
     "pmu.created", ["irq.no_irqchip"])
def _():
    ready(make(vgic=None)[1][0]).set_attr(P, IRQ, 23)


@row("pmu: unknown attr id", "set", P, 99, errno.ENXIO, "pmu.unknown_attr")
def _():
    make()[1][0].set_attr(P, 99)


# -- IRQ --------------------------------------------------------------------------------------
@row("irq: no irqchip is checked before reading the value", "set", P, IRQ, errno.EINVAL,
     "irq.no_irqchip", ["irq.efault"])
def _():
    make(vgic=None)[1][0].set_attr(P, IRQ, BAD_ADDRESS)


@row("irq: faulting pointer (vGIC only created)", "set", P, IRQ, errno.EFAULT, "irq.efault")
def _():
    make(vgic="created")[1][0].set_attr(P, IRQ, BAD_ADDRESS)


for _v in (0, 15, -1, 1020, 1 << 31):
    ROWS.append(Row(f"irq: {_v} is neither PPI nor SPI", "set", P, IRQ, errno.EINVAL, "irq.range",
                    (lambda v=_v: make()[1][0].set_attr(P, IRQ, v))))


@row("irq: range checked before 'already set'", "set", P, IRQ, errno.EINVAL, "irq.range", ["irq.busy"])
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 23)
    v.set_attr(P, IRQ, 15)


@row("irq: PPI differs from another vCPU's", "set", P, IRQ, errno.EINVAL, "irq.inconsistent")
def _():
    vm, (a, b) = make(vcpus=2)
    a.set_attr(P, IRQ, 23)
    b.set_attr(P, IRQ, 24)


@row("irq: different PPI on the same vCPU is EINVAL, not EBUSY", "set", P, IRQ, errno.EINVAL,
     "irq.inconsistent", ["irq.busy"])
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 23)
    v.set_attr(P, IRQ, 24)


@row("irq: same SPI twice on the same vCPU is EINVAL (validity precedes busy)", "set", P, IRQ,
     errno.EINVAL, "irq.inconsistent", ["irq.busy"])
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 40)
    v.set_attr(P, IRQ, 40)


@row("irq: same SPI on two vCPUs", "set", P, IRQ, errno.EINVAL, "irq.inconsistent")
def _():
    vm, (a, b) = make(vcpus=2)
    a.set_attr(P, IRQ, 40)
    b.set_attr(P, IRQ, 40)


@row("irq: SPI on vCPU0 then PPI on vCPU1 (asymmetric)", "set", P, IRQ, errno.EINVAL, "irq.inconsistent")
def _():
    vm, (a, b) = make(vcpus=2)
    a.set_attr(P, IRQ, 40)
    b.set_attr(P, IRQ, 23)


@row("irq: same PPI twice on the same vCPU is EBUSY", "set", P, IRQ, errno.EBUSY, "irq.busy")
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 23)
    v.set_attr(P, IRQ, 23)


@row("irq: a different SPI after an SPI is EBUSY", "set", P, IRQ, errno.EBUSY, "irq.busy")
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 40)
    v.set_attr(P, IRQ, 41)


# -- INIT -------------------------------------------------------------------------------------
@row("init: vGIC not initialised beats missing IRQ", "set", P, INIT, errno.ENODEV,
     "init.vgic_uninit", ["init.no_irq"])
def _():
    make(vgic="created")[1][0].set_attr(P, INIT)


@row("init: vGIC present but IRQ never set", "set", P, INIT, errno.ENXIO, "init.no_irq")
def _():
    make()[1][0].set_attr(P, INIT)


@row("init: SPI beyond the vGIC's nr_spis", "set", P, INIT, errno.EINVAL, "init.bad_irq")
def _():
    v = make(vgic="created", nr_spis=32)[1][0]      # NR_IRQS 64: SPIs 32..63
    v.vm.vgic.init()
    v.set_attr(P, IRQ, 64)                           # architecturally an SPI: accepted by IRQ
    v.set_attr(P, INIT)


@row("init: IRQ 1019 with the default vGIC size", "set", P, INIT, errno.EINVAL, "init.bad_irq")
def _():
    v = make(vgic="created")[1][0]
    v.set_attr(P, IRQ, 1019)
    v.vm.vgic.init()                                 # default 224 SPIs
    v.set_attr(P, INIT)


@row("init: PPI already owned by this vCPU's timer", "set", P, INIT, errno.EEXIST, "init.owned")
def _():
    v = make()[1][0]
    with pytest.raises(OSError):                     # timers claim 27/30, then PMU check fails
        v.run()
    v.set_attr(P, IRQ, 27)
    v.set_attr(P, INIT)


@row("init: twice", "set", P, INIT, errno.EBUSY, "pmu.created")
def _():
    ready(make()[1][0]).set_attr(P, INIT)


# -- FILTER -----------------------------------------------------------------------------------
@row("filter: faulting pointer beats VM-has-run", "set", P, FILTER, errno.EFAULT, "filter.efault",
     ["filter.has_run"])
def _():
    ran_vm()[1][1].set_attr(P, FILTER, BAD_ADDRESS)


@row("filter: bad action beats VM-has-run", "set", P, FILTER, errno.EINVAL, "filter.invalid",
     ["filter.has_run"])
def _():
    ran_vm()[1][1].set_attr(P, FILTER, flt(0, 1, 2))


@row("filter: range past the host space beats VM-has-run", "set", P, FILTER, errno.EINVAL,
     "filter.invalid", ["filter.has_run"])
def _():
    ran_vm()[1][1].set_attr(P, FILTER, flt(0xFFFF, 2))


@row("filter: VM has run", "set", P, FILTER, errno.EBUSY, "filter.has_run")
def _():
    ran_vm()[1][1].set_attr(P, FILTER, flt(0x11, 1))


@row("filter: u32 sum, no wrap", "set", P, FILTER, errno.EINVAL, "filter.invalid")
def _():
    make()[1][0].set_attr(P, FILTER, flt(0xFFFF, 0xFFFF))


@row("filter: 1024-event host, one past the end", "set", P, FILTER, errno.EINVAL, "filter.invalid")
def _():
    make(host=Host(pmus=[HostPmu(type=8, version="3.0")]))[1][0].set_attr(P, FILTER, flt(0x3FF, 2))


@row("filter: action 3", "set", P, FILTER, errno.EINVAL, "filter.invalid")
def _():
    make()[1][0].set_attr(P, FILTER, flt(0, 1, 3))


# -- SET_PMU ----------------------------------------------------------------------------------
@row("set_pmu: faulting pointer", "set", P, SET_PMU, errno.EFAULT, "set_pmu.efault")
def _():
    make()[1][0].set_attr(P, SET_PMU, BAD_ADDRESS)


@row("set_pmu: unknown perf type", "set", P, SET_PMU, errno.ENXIO, "set_pmu.notfound")
def _():
    make()[1][0].set_attr(P, SET_PMU, 99)


@row("set_pmu: unknown perf type after run is ENXIO, not EBUSY", "set", P, SET_PMU, errno.ENXIO,
     "set_pmu.notfound")
def _():
    ran_vm()[1][1].set_attr(P, SET_PMU, 99)


@row("set_pmu: VM has run (even the current PMU)", "set", P, SET_PMU, errno.EBUSY, "set_pmu.busy")
def _():
    ran_vm()[1][1].set_attr(P, SET_PMU, 8)


@row("set_pmu: a filter exists and the PMU differs", "set", P, SET_PMU, errno.EBUSY, "set_pmu.busy")
def _():
    v = make(host=two_pmu_host())[1][0]
    v.set_attr(P, FILTER, flt(0x11, 1))
    v.set_attr(P, SET_PMU, 9)


# -- SET_NR_COUNTERS ------------------------------------------------------------------------------
@row("nr: faulting pointer", "set", P, NR, errno.EFAULT, "nr.efault", ["nr.too_many"])
def _():
    make()[1][0].set_attr(P, NR, BAD_ADDRESS)


@row("nr: more than the PMU has", "set", P, NR, errno.EINVAL, "nr.too_many")
def _():
    make()[1][0].set_attr(P, NR, 7)


@row("nr: negative is a huge unsigned int", "set", P, NR, errno.EINVAL, "nr.too_many")
def _():
    make()[1][0].set_attr(P, NR, -1)


@row("nr: limit is the *selected* PMU's", "set", P, NR, errno.EINVAL, "nr.too_many")
def _():
    v = make(host=two_pmu_host(current_cpu=4))[1][0]   # default PMU = type 9 (4 counters)
    v.set_attr(P, NR, 5)


@row("nr: no PMU selected (white box: unreachable through the API)", "set", P, NR, errno.EINVAL,
     "nr.no_pmu", ["nr.too_many"])
def _():
    vm, (v,) = make()
    vm.arm_pmu = None
    v.set_attr(P, NR, 99)


# -- timer group (arch_timer.c) ------------------------------------------------------------------
@row("timer: no irqchip before reading the value", "set", T, VTIMER, errno.EINVAL, "timer.no_irqchip",
     ["timer.efault"])
def _():
    make(vgic=None)[1][0].set_attr(T, VTIMER, BAD_ADDRESS)


@row("timer: faulting pointer", "set", T, VTIMER, errno.EFAULT, "timer.efault", ["timer.unknown_attr"])
def _():
    make()[1][0].set_attr(T, 7, BAD_ADDRESS)


for _v in (15, 32, 0, -5):
    ROWS.append(Row(f"timer: {_v} is not a PPI", "set", T, PTIMER, errno.EINVAL, "timer.not_ppi",
                    (lambda v=_v: make()[1][0].set_attr(T, PTIMER, v))))


@row("timer: value is validated before the attr id", "set", T, 7, errno.EINVAL, "timer.not_ppi",
     ["timer.unknown_attr"])
def _():
    make()[1][0].set_attr(T, 7, 15)


@row("timer: bad value beats frozen", "set", T, VTIMER, errno.EINVAL, "timer.not_ppi", ["timer.frozen"])
def _():
    ran_vm()[1][1].set_attr(T, VTIMER, 40)


@row("timer: frozen beats unknown attr", "set", T, 7, errno.EBUSY, "timer.frozen", ["timer.unknown_attr"])
def _():
    ran_vm()[1][1].set_attr(T, 7, 20)


@row("timer: frozen after the first run", "set", T, HVTIMER, errno.EBUSY, "timer.frozen")
def _():
    ran_vm()[1][0].set_attr(T, HVTIMER, 20)


@row("timer: unknown attr", "set", T, 4, errno.ENXIO, "timer.unknown_attr")
def _():
    make()[1][0].set_attr(T, 4, 20)


# -- PV time (pvtime.c) ----------------------------------------------------------------------------
@row("pvtime: host without steal time, before reading", "set", V, IPA, errno.ENXIO,
     "pvtime.unsupported", ["pvtime.efault"])
def _():
    make(host=Host(steal_time=False))[1][0].set_attr(V, IPA, BAD_ADDRESS)


@row("pvtime: unknown attr", "set", V, 1, errno.ENXIO, "pvtime.unsupported")
def _():
    make()[1][0].set_attr(V, 1, RAM)


@row("pvtime: faulting pointer", "set", V, IPA, errno.EFAULT, "pvtime.efault", ["pvtime.align"])
def _():
    make()[1][0].set_attr(V, IPA, BAD_ADDRESS)


@row("pvtime: unaligned beats already-set", "set", V, IPA, errno.EINVAL, "pvtime.align",
     ["pvtime.exists"])
def _():
    v = make()[1][0]
    v.set_attr(V, IPA, RAM)
    v.set_attr(V, IPA, RAM + 8)


@row("pvtime: already set beats outside-memslot", "set", V, IPA, errno.EEXIST, "pvtime.exists",
     ["pvtime.memslot"])
def _():
    v = make()[1][0]
    v.set_attr(V, IPA, RAM)
    v.set_attr(V, IPA, 0x1000)


@row("pvtime: outside every memslot", "set", V, IPA, errno.EINVAL, "pvtime.memslot")
def _():
    make()[1][0].set_attr(V, IPA, 0x1000)


@row("pvtime: first byte after RAM", "set", V, IPA, errno.EINVAL, "pvtime.memslot")
def _():
    make()[1][0].set_attr(V, IPA, RAM + (128 << 20))


# -- GET ---------------------------------------------------------------------------------------------
@row("get irq: no irqchip is checked before the PMU feature", "get", P, IRQ, errno.EINVAL,
     "get.irq.no_irqchip", ["get.irq.nodev"])
def _():
    make(vgic=None, pmu=False)[1][0].get_attr(P, IRQ)


@row("get irq: no PMU feature", "get", P, IRQ, errno.ENODEV, "get.irq.nodev", ["get.irq.unset"])
def _():
    make(pmu=False)[1][0].get_attr(P, IRQ)


@row("get irq: never set, before the copy-out", "get", P, IRQ, errno.ENXIO, "get.irq.unset",
     ["get.efault"])
def _():
    make()[1][0].get_attr(P, IRQ, BAD_ADDRESS)


@row("get irq: copy-out faults", "get", P, IRQ, errno.EFAULT, "get.efault")
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 23)
    v.get_attr(P, IRQ, BAD_ADDRESS)


for _a in (INIT, FILTER, SET_PMU, NR, 99):
    ROWS.append(Row(f"get pmu attr {_a}: only IRQ is readable", "get", P, _a, errno.ENXIO,
                    "get.pmu.not_readable", (lambda a=_a: ready(make()[1][0]).get_attr(P, a))))


@row("get timer: unknown attr before the copy-out", "get", T, 4, errno.ENXIO, "get.timer.unknown",
     ["get.efault"])
def _():
    make()[1][0].get_attr(T, 4, BAD_ADDRESS)


@row("get timer: copy-out faults", "get", T, VTIMER, errno.EFAULT, "get.efault")
def _():
    make()[1][0].get_attr(T, VTIMER, BAD_ADDRESS)


@row("get pvtime: unsupported", "get", V, IPA, errno.ENXIO, "pvtime.unsupported", ["get.efault"])
def _():
    make(host=Host(steal_time=False))[1][0].get_attr(V, IPA, BAD_ADDRESS)


@row("get pvtime: copy-out faults", "get", V, IPA, errno.EFAULT, "get.efault")
def _():
    make()[1][0].get_attr(V, IPA, BAD_ADDRESS)


# -- HAS ---------------------------------------------------------------------------------------------
@row("has pmu: unknown attr", "has", P, 5, errno.ENXIO, "has.pmu")
def _():
    make()[1][0].has_attr(P, 5)


for _a in (IRQ, INIT, FILTER, SET_PMU, NR):
    ROWS.append(Row(f"has pmu attr {_a} without PMU feature", "has", P, _a, errno.ENXIO, "has.pmu",
                    (lambda a=_a: make(pmu=False)[1][0].has_attr(P, a))))


@row("has timer: unknown attr", "has", T, 4, errno.ENXIO, "has.timer")
def _():
    make()[1][0].has_attr(T, 4)


@row("has pvtime: unsupported host", "has", V, IPA, errno.ENXIO, "has.pvtime")
def _():
    make(host=Host(steal_time=False))[1][0].has_attr(V, IPA)


@row("has pvtime: unknown attr", "has", V, 1, errno.ENXIO, "has.pvtime")
def _():
    make()[1][0].has_attr(V, 1)


# -- KVM_RUN (kvm_arch_vcpu_run_pid_change) ----------------------------------------------------------
@row("run: PMU vCPU never INIT'ed", "other", "KVM_RUN", None, errno.EINVAL, "run.pmu_uninit")
def _():
    v = make()[1][0]
    v.set_attr(P, IRQ, 23)
    v.run()


@row("run: PMU INIT'ed before the vGIC existed", "other", "KVM_RUN", None, errno.EINVAL, "run.pmu_irq")
def _():
    vm, (v,) = make(vgic=None)
    v.set_attr(P, INIT)            # no irqchip: INIT checks nothing
    vm.create_vgic()
    v.run()


@row("run: vtimer and ptimer share a PPI", "other", "KVM_RUN", None, errno.EINVAL, "run.timer")
def _():
    v = make()[1][0]
    v.set_attr(T, PTIMER, 27)
    ready(v).run()


@row("run: vtimer on the PMU's PPI", "other", "KVM_RUN", None, errno.EINVAL, "run.timer")
def _():
    v = make()[1][0]
    v.set_attr(T, VTIMER, 23)
    ready(v, 23).run()


@row("run: timer conflict is found before the missing PMU INIT", "other", "KVM_RUN", None,
     errno.EINVAL, "run.timer", ["run.pmu_uninit"])
def _():
    v = make()[1][0]
    v.set_attr(T, PTIMER, 27)
    v.run()


# -- vCPU / vGIC / memory / ID register --------------------------------------------------------------
@row("vcpu: created after vGIC init", "other", "KVM_ARM_VCPU_INIT", None, errno.EBUSY,
     "vcpu.after_vgic_init")
def _():
    make()[0].create_vcpu()


@row("vcpu: PMU and non-PMU vCPUs in one VM", "other", "KVM_ARM_VCPU_INIT", None, errno.EINVAL,
     "vcpu.features")
def _():
    make(vgic=None)[0].create_vcpu(pmu=False)


for _h, _why in [(Host(pmus=[]), "no PMU"), (Host(pmus=[HostPmu(type=8, version="imp_def")]), "IMP_DEF PMU"),
                 (Host(pmus=[HostPmu(type=8, version="3.1", cpus=(0, 1)),
                             HostPmu(type=9, version="3.4", cpus=(2, 3))]), "PMUVer differs (FTR_EXACT)")]:
    ROWS.append(Row(f"vcpu: PMU feature on a host with {_why}", "other", "KVM_ARM_VCPU_INIT", None,
                    errno.EINVAL, "vcpu.pmu_unsupported", (lambda h=_h: Vm(h).create_vcpu(pmu=True))))


@row("vcpu: no host PMU covers the current CPU", "other", "KVM_ARM_VCPU_INIT", None, errno.ENODEV,
     "vcpu.no_default_pmu")
def _():
    Vm(Host(pmus=[HostPmu(type=8, cpus=(1, 2))], current_cpu=0)).create_vcpu()


@row("vgic: created twice", "other", "KVM_CREATE_DEVICE", None, errno.EEXIST, "vgic.exists")
def _():
    make()[0].create_vgic()


@row("vgic: created after a vCPU ran", "other", "KVM_CREATE_DEVICE", None, errno.EBUSY, "vgic.has_run")
def _():
    vm, (v,) = make(vgic=None)
    ready(v).run()
    vm.create_vgic()


for _n in (48, 63, 100, 1024, 2048):
    ROWS.append(Row(f"vgic: NR_IRQS {_n}", "other", "vGIC", kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
                    errno.EINVAL, "vgic.nr_irqs_range",
                    (lambda n=_n: Vm().create_vgic(nr_spis=n - 32, init=False))))


@row("vgic: NR_IRQS after init (default size supplied)", "other", "vGIC",
     kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, errno.EBUSY, "vgic.nr_irqs_busy")
def _():
    make()[0].vgic.set_attr(kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 96)


@row("vgic: NR_IRQS pointer faults", "other", "vGIC", kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, errno.EFAULT,
     "vgic.efault", ["vgic.nr_irqs_range"])
def _():
    Vm().create_device().set_attr(kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, BAD_ADDRESS)


@row("vgic: unknown control attr", "other", "vGIC", None, errno.ENXIO, "vgic.unknown")
def _():
    Vm().create_device().set_attr(kvm.KVM_DEV_ARM_VGIC_GRP_CTRL, 5)


@row("memslot: resizing slot 0", "other", "KVM_SET_USER_MEMORY_REGION", None, errno.EINVAL,
     "memslot.resize")
def _():
    Vm().set_user_memory_region(0, RAM, 0x2000)


@row("memslot: deleting a slot that does not exist", "other", "KVM_SET_USER_MEMORY_REGION", None,
     errno.EINVAL, "memslot.missing")
def _():
    Vm().set_user_memory_region(5, 0, 0)


@row("memslot: overlap", "other", "KVM_SET_USER_MEMORY_REGION", None, errno.EEXIST, "memslot.overlap")
def _():
    Vm().set_user_memory_region(1, RAM + 0x1000, 0x1000)


@row("memslot: resizing beats overlapping (kvm_main.c)", "other", "KVM_SET_USER_MEMORY_REGION", None,
     errno.EINVAL, "memslot.resize", ["memslot.overlap"])
def _():
    vm = Vm()
    vm.set_user_memory_region(1, RAM + (256 << 20), 0x1000)
    vm.set_user_memory_region(1, RAM, 0x2000)         # a new size, and over slot 0's RAM


@row("memslot: unaligned", "other", "KVM_SET_USER_MEMORY_REGION", None, errno.EINVAL, "memslot.align")
def _():
    Vm().set_user_memory_region(1, 0x1000, 100)


@row("id reg: PMUVer above min(host, v3p5)", "other", "KVM_SET_ONE_REG", None, errno.EINVAL,
     "idreg.too_high")
def _():
    make()[1][0].set_id_pmuver("3.7")


@row("id reg: changed after the VM ran", "other", "KVM_SET_ONE_REG", None, errno.EBUSY, "idreg.busy",
     ["idreg.too_high"])
def _():
    ran_vm()[1][0].set_id_pmuver("3.7")


@pytest.mark.parametrize("r", ROWS, ids=[r.id for r in ROWS])
def test_errno_row(r: Row):
    with pytest.raises(OSError) as ei:
        r.fn()
    e = ei.value
    assert (e.errno, e.check) == (r.err, r.check), f"{errno.errorcode[e.errno]} {e.check}"
    assert str(e) == f"[Errno {r.err}] {__import__('os').strerror(r.err)}"   # exactly like ioctl
    order = kvm.checks_for(r.group, r.attr, r.op if r.op != "other" else "set")
    assert r.check in order
    for later in r.also:
        assert later in order and order.index(r.check) < order.index(later), later


def test_eexist_is_a_file_exists_error_like_ioctl():
    v = make()[1][0]
    v.set_attr(V, IPA, RAM)
    with pytest.raises(FileExistsError):
        v.set_attr(V, IPA, RAM + 64)


# ---------------------------------------------------------------------------------------------
# Successful paths that the rules imply

def test_ppi_then_spi_is_accepted_asymmetry():
    # kvm-pmu.md 6.6: vCPU0=PPI 23 then vCPU1=SPI 40 passes pmu_irq_is_valid
    vm, (a, b) = make(vcpus=2)
    a.set_attr(P, IRQ, 23)
    assert b.set_attr(P, IRQ, 40) == 0
    assert (a.get_attr(P, IRQ), b.get_attr(P, IRQ)) == (23, 40)


def test_same_ppi_on_every_vcpu_and_distinct_spis():
    vm, cpus = make(vcpus=3)
    for c in cpus:
        ready(c, 23)           # every vCPU owns its own instance of PPI 23
    vm2, cpus2 = make(vcpus=3)
    for i, c in enumerate(cpus2):
        ready(c, 40 + i)
    for c in cpus + cpus2:
        c.run()


def test_irq_checks_only_the_architectural_spi_range():
    v = make(nr_spis=32)[1][0]
    assert v.set_attr(P, IRQ, 1019) == 0


def test_init_without_irqchip_needs_no_irq():
    vm, (v,) = make(vgic=None)
    assert v.set_attr(P, INIT) == 0
    cfg = v.run()
    # userspace irqchip: KVM reports the level in device_irq_level; the board, playing the
    # VMM, wires it like QEMU virt (PPI 23)
    assert cfg.pmu.present and cfg.pmu.irq == 23


def test_filter_through_a_vcpu_that_has_not_inited():
    # section 1.4 note: the filter is VM-wide, the 'created' check per vCPU
    vm, (a, b) = make(vcpus=2)
    ready(a)
    assert b.set_attr(P, FILTER, flt(0x11, 1, DENY)) == 0
    assert not vm.pmu_filter.allowed(0x11)


def test_filter_accepts_the_8_byte_struct():
    vm, (v,) = make()
    v.set_attr(P, FILTER, flt(0x21, 1, ALLOW).pack())
    assert vm.pmu_filter.allowed(0x21) and not vm.pmu_filter.allowed(0x20)


@pytest.mark.parametrize("version, nr", [("3.0", 1024), ("3.1", 65536), ("3.7", 65536)])
def test_filter_exact_host_space_accepted_one_more_rejected(version, nr):
    v = make(host=Host(pmus=[HostPmu(type=8, version=version)]))[1][0]
    v.set_attr(P, FILTER, flt(nr - 1, 1))              # ends at the last event
    with pytest.raises(OSError) as ei:
        v.set_attr(P, FILTER, flt(nr - 1, 2))
    assert ei.value.errno == errno.EINVAL


def test_rule6_1_filter_bounds_use_the_host_space_not_the_guest():
    # host v3p1 (16-bit) with the guest lowered to v3p0 (10-bit): 0x400 is still accepted
    vm, (v,) = make(host=Host(pmus=[HostPmu(type=8, version="3.1")]))
    v.set_id_pmuver("3.0")
    assert v.set_attr(P, FILTER, flt(0x400, 0x100, ALLOW)) == 0
    cfg = ready(v).run()
    assert cfg.pmu.version == "3.0"
    assert len(cfg.pmu.filter_bitmap) == 65536 and cfg.pmu.filter_bitmap[0x400] == 1


def test_rule6_2_first_filter_fixes_default_even_with_zero_events():
    vm, (v,) = make()
    v.set_attr(P, FILTER, flt(0, 0, ALLOW))
    v.set_attr(P, FILTER, flt(0x11, 1, DENY))
    assert vm.pmu_filter.allowed_count() == 0
    vm2, (w,) = make()
    w.set_attr(P, FILTER, flt(0, 0, DENY))
    w.set_attr(P, FILTER, flt(0x11, 1, ALLOW))
    assert vm2.pmu_filter.allowed_count() == 65536


def test_rule6_5_and_6_7_summary():
    # 6.5 same-vCPU duplicate SPI EINVAL / PPI EBUSY; 6.7 get IRQ w/o irqchip EINVAL before ENODEV
    v = make()[1][0]
    v.set_attr(P, IRQ, 40)
    with pytest.raises(OSError) as spi:
        v.set_attr(P, IRQ, 40)
    w = make()[1][0]
    w.set_attr(P, IRQ, 23)
    with pytest.raises(OSError) as ppi:
        w.set_attr(P, IRQ, 23)
    u = make(vgic=None, pmu=False)[1][0]
    with pytest.raises(OSError) as get:
        u.get_attr(P, IRQ)
    assert (spi.value.errno, ppi.value.errno, get.value.errno) == (errno.EINVAL, errno.EBUSY, errno.EINVAL)


def test_set_pmu_same_pmu_with_filter_and_reset_of_counters():
    vm, (v,) = make(host=two_pmu_host())
    assert vm.arm_pmu.type == 8 and vm.nr_pmu_counters == 6      # default: covers CPU 0
    v.set_attr(P, NR, 2)
    v.set_attr(P, FILTER, flt(0x11, 1))
    assert v.set_attr(P, SET_PMU, 8) == 0                       # same PMU: fine with a filter
    assert vm.nr_pmu_counters == 6                               # SET_PMU cancels SET_NR_COUNTERS


def test_set_pmu_narrows_supported_cpus_and_kvm_run_fails_entry():
    vm, (v,) = make(host=two_pmu_host())
    v.set_attr(P, SET_PMU, 9)
    assert vm.supported_cpus == frozenset({4, 5, 6, 7}) and vm.nr_pmu_counters == 4
    ready(v)
    with pytest.raises(kvm.KvmExitFailEntry) as ei:
        v.run()
    assert ei.value.cpu == 0
    assert ei.value.hardware_entry_failure_reason == kvm.KVM_EXIT_FAIL_ENTRY_CPU_UNSUPPORTED
    assert vm.has_run                                  # entry failure comes after the first-run setup
    vm.host.current_cpu = 5
    assert v.run().pmu.counters == 4


def test_default_pmu_does_not_narrow_supported_cpus():
    vm, (v,) = make(host=two_pmu_host(current_cpu=4))
    assert vm.arm_pmu.type == 9
    assert vm.supported_cpus == frozenset(range(8))


def test_set_nr_counters_bounds_and_vm_wide():
    vm, (a, b) = make(vcpus=2)
    assert a.set_attr(P, NR, 6) == 0 and a.set_attr(P, NR, 0) == 0
    b.set_attr(P, NR, 3)
    ready(a)
    assert a.run().pmu.counters == 3


def test_set_nr_counters_follows_the_kernel_not_the_doc():
    # vcpu.rst promises EBUSY after a filter or after the VM ran; pmu.c checks neither
    vm, (a, b) = ran_vm()
    assert b.set_attr(P, NR, 2) == 0                       # through the vCPU that has not INIT'ed
    assert vm.nr_pmu_counters == 2
    vm2, (c,) = make()
    c.set_attr(P, FILTER, flt(0x11, 1))
    assert c.set_attr(P, NR, 1) == 0


def test_get_and_has():
    vm, (v,) = make()
    v.set_attr(P, IRQ, 31)
    assert v.get_attr(P, IRQ) == 31
    assert [v.has_attr(P, a) for a in (IRQ, INIT, FILTER, SET_PMU, NR)] == [0] * 5
    u = make(vgic=None, pmu=False)[1][0]
    assert [u.has_attr(T, a) for a in range(4)] == [0] * 4       # independent of irqchip
    assert [u.get_attr(T, a) for a in range(4)] == [27, 30, 28, 26]
    assert u.has_attr(V, IPA) == 0
    assert u.get_attr(V, IPA) == INVALID_GPA == 0xFFFF_FFFF_FFFF_FFFF
    assert v.ioctl(KVM_HAS_DEVICE_ATTR, KvmDeviceAttr(P, IRQ)) == 0


def test_timer_ppis_are_vm_wide_including_later_vcpus():
    vm = Vm()
    vm.create_vgic(init=False)
    a = vm.create_vcpu()
    a.set_attr(T, VTIMER, 20)
    a.set_attr(T, HPTIMER, 21)
    b = vm.create_vcpu()
    assert b.get_attr(T, VTIMER) == 20 and b.get_attr(T, HPTIMER) == 21


def test_hyp_timers_are_not_checked_without_nested_virt():
    v = make()[1][0]
    v.set_attr(T, HVTIMER, 27)              # same as vtimer, but only EL1 timers claim PPIs
    cfg = ready(v).run()
    assert cfg.timer_ppis == {"vtimer": 27, "ptimer": 30, "hvtimer": 27, "hptimer": 26}


def test_timers_become_immutable_only_on_success():
    vm, (v,) = make()
    v.set_attr(T, PTIMER, 27)
    ready(v)
    with pytest.raises(OSError):
        v.run()
    assert not vm.timer_ppis_immutable and not vm.has_run
    v.set_attr(T, PTIMER, 30)               # still settable: retry after fixing the conflict
    v.run()
    assert vm.timer_ppis_immutable and vm.has_run


def test_pvtime_is_per_vcpu_and_reads_back():
    vm, (a, b) = make(vcpus=2)
    a.set_attr(V, IPA, RAM + 0x1000)
    b.set_attr(V, IPA, RAM + 0x1040)
    assert (a.get_attr(V, IPA), b.get_attr(V, IPA)) == (RAM + 0x1000, RAM + 0x1040)
    last = RAM + (128 << 20) - 64
    c = make()[1][0]
    assert c.set_attr(V, IPA, last) == 0


def test_pvtime_needs_a_memslot_added_later_ok():
    vm, (v,) = make()
    vm.set_user_memory_region(1, 0x900_0000, 0x1000)
    assert v.set_attr(V, IPA, 0x900_0040) == 0


def test_failed_run_does_not_mark_the_vm():
    vm, (v,) = make()
    v.set_attr(P, IRQ, 23)
    with pytest.raises(OSError):
        v.run()
    assert not vm.has_run
    assert v.set_attr(P, FILTER, flt(0x11, 1)) == 0          # still allowed
    v.set_attr(P, INIT)
    v.run()
    assert vm.has_run


def test_after_run():
    vm, (a, b) = ran_vm()
    assert a.set_id_pmuver("3.5") == 0                     # same value: accepted
    with pytest.raises(OSError) as ei:
        b.set_attr(P, SET_PMU, 8)
    assert ei.value.errno == errno.EBUSY
    assert a.run() is not None                             # later runs skip the checks


def test_vgic_nr_irqs_and_lazy_init():
    vm = Vm()
    g = vm.create_device()
    g.set_attr(kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 64)
    with pytest.raises(OSError) as ei:
        g.set_attr(kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, 96)
    assert ei.value.errno == errno.EBUSY
    with pytest.raises(OSError) as ei:
        g.set_attr(kvm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, BAD_ADDRESS)
    assert ei.value.errno == errno.EFAULT
    assert g.nr_spis == 32 and not g.initialized
    v = vm.create_vcpu(pmu=False)
    v.run()                                                # KVM_RUN initialises the vGIC lazily
    assert g.initialized
    big = Vm().create_vgic(nr_spis=992 - 32)
    assert big.nr_spis == 960                              # 992 = largest multiple of 32 <= 1023


def test_memslot_resize_delete_and_move():
    vm = Vm()
    with pytest.raises(OSError) as ei:
        vm.set_user_memory_region(0, RAM, 0x2000)
    assert ei.value.check == "memslot.resize"
    vm.set_user_memory_region(0, RAM, 0)
    assert vm.ram_size == 0
    with pytest.raises(OSError) as ei:
        vm.set_user_memory_region(0, RAM, 0)
    assert ei.value.check == "memslot.missing"
    vm.set_user_memory_region(0, RAM, 64 << 20)
    assert vm.ram_size == 64 << 20


# ---------------------------------------------------------------------------------------------
# MachineConfig

@pytest.mark.parametrize("host_version, guest", [("3.0", "3.0"), ("3.1", "3.1"), ("3.4", "3.4"),
                                                 ("3.5", "3.5"), ("3.7", "3.5")])
def test_guest_pmuver_is_capped_at_v3p5(host_version, guest):
    v = make(host=Host(pmus=[HostPmu(type=8, version=host_version)]))[1][0]
    assert ready(v).run().pmu.version == guest


def test_machine_config_contents():
    vm, (v,) = make(nr_spis=64)
    v.set_attr(P, NR, 4)
    v.set_attr(P, IRQ, 33)
    v.set_attr(P, FILTER, flt(0x10, 1, DENY))
    v.set_attr(P, INIT)
    v.set_attr(T, VTIMER, 20)
    v.set_attr(V, IPA, RAM + 0x100)
    cfg = v.run()
    assert cfg.memory == 128 << 20
    assert (cfg.pmu.present, cfg.pmu.version, cfg.pmu.counters, cfg.pmu.irq) == (True, "3.5", 4, 33)
    bm = cfg.pmu.filter_bitmap
    assert isinstance(bm, bytearray) and len(bm) == 65536 and bm.count(0) == 1 and bm[0x10] == 0
    assert cfg.timer_ppis == {"vtimer": 20, "ptimer": 30, "hvtimer": 28, "hptimer": 26}
    assert cfg.pvtime_ipa == RAM + 0x100
    bm[0] = 0                                   # a copy: the VM's filter is unchanged
    assert vm.pmu_filter.allowed(0)


def test_machine_config_without_filter_and_without_pmu():
    cfg = ready(make()[1][0]).run()
    assert cfg.pmu.filter_bitmap is None and cfg.pvtime_ipa is None
    cfg = make(pmu=False)[1][0].run()
    assert cfg.pmu.present is False and cfg.pmu.counters == 0 and cfg.pmu.irq == 23


def test_machine_config_1024_event_host_bitmap():
    v = make(host=Host(pmus=[HostPmu(type=8, version="3.0", counters=2)]))[1][0]
    v.set_attr(P, FILTER, flt(8, 1, ALLOW))
    cfg = ready(v).run()
    assert cfg.pmu.version == "3.0" and cfg.pmu.counters == 2
    assert len(cfg.pmu.filter_bitmap) == 1024 and cfg.pmu.filter_bitmap.count(1) == 1


def test_run_returns_the_config_the_runner_runs(vpmu_guest_dir):
    """KVM_RUN yields the vCPU's MachineConfig; vpmu.api.run_config runs a guest with it (the
    KVM model never imports the runner)."""
    import vpmu.api
    v = ready(make()[1][0], irq=22)
    cfg = v.run()
    assert isinstance(cfg, MachineConfig) and cfg.pmu.irq == 22
    r = vpmu.api.run_config(str(vpmu_guest_dir / "vm_probe.elf"), cfg)
    assert r.ok and r.kv()["dt_pmu_intid"] == "22"


def test_constants_have_linux_values():
    assert (kvm.KVM_ARM_VCPU_PMU_V3, kvm.KVM_ARM_VCPU_PMU_V3_CTRL, kvm.KVM_ARM_VCPU_TIMER_CTRL,
            kvm.KVM_ARM_VCPU_PVTIME_CTRL) == (3, 0, 1, 2)
    assert (kvm.KVM_ARM_VCPU_PMU_V3_IRQ, kvm.KVM_ARM_VCPU_PMU_V3_INIT, kvm.KVM_ARM_VCPU_PMU_V3_FILTER,
            kvm.KVM_ARM_VCPU_PMU_V3_SET_PMU, kvm.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS) == (0, 1, 2, 3, 4)
    assert (kvm.KVM_ARM_VCPU_TIMER_IRQ_VTIMER, kvm.KVM_ARM_VCPU_TIMER_IRQ_PTIMER,
            kvm.KVM_ARM_VCPU_TIMER_IRQ_HVTIMER, kvm.KVM_ARM_VCPU_TIMER_IRQ_HPTIMER) == (0, 1, 2, 3)
    assert (kvm.KVM_PMU_EVENT_ALLOW, kvm.KVM_PMU_EVENT_DENY, kvm.KVM_ARM_VCPU_PVTIME_IPA) == (0, 1, 0)
    assert kvm.KVM_DEV_ARM_VGIC_CTRL_INIT == 0 and kvm.KVM_DEV_ARM_VGIC_GRP_CTRL == 4
    assert KVM_SET_DEVICE_ATTR == 0x4018AEE1 and KVM_GET_DEVICE_ATTR == 0x4018AEE2
    assert KVM_HAS_DEVICE_ATTR == 0x4018AEE3 and kvm.KVM_RUN == 0xAE80


# ---------------------------------------------------------------------------------------------
# explain()

def test_explain_brief_example_and_specific_check():
    assert kvm.explain(errno.EBUSY, P, INIT, "pmu.created") == (
        "EBUSY: the PMU of this vCPU is already initialised (KVM_ARM_VCPU_PMU_V3_INIT was "
        "called); no PMU attribute may be set after INIT")
    both = kvm.explain(errno.EBUSY, P, FILTER)
    assert both.startswith("EBUSY: ") and "already initialised" in both and "already run" in both
    assert kvm.explain(errno.EINVAL, "KVM_RUN").startswith("EINVAL: the timer PPIs conflict")
    assert kvm.explain(errno.EPERM, P, IRQ) == "EPERM: Operation not permitted"
    assert kvm.attr_name(P, SET_PMU) == "KVM_ARM_VCPU_PMU_V3_SET_PMU"
    assert kvm.attr_name(T, 9) == "KVM_ARM_VCPU_TIMER_CTRL attr 9"


def test_explanation_table_is_consistent():
    from vpmu.kvm.explain import CHECK_ORDER
    used = {c for checks in CHECK_ORDER.values() for c in checks}
    assert used <= set(kvm.EXPLANATIONS)
    assert set(kvm.EXPLANATIONS) <= used                 # no orphan explanations
    for code, (err, text) in kvm.EXPLANATIONS.items():
        assert err in errno.errorcode and "\n" not in text
    tested = {r.check for r in ROWS}
    missing = used - tested
    assert not missing, f"checks without an errno row: {sorted(missing)}"


def test_the_code_walks_the_one_check_order():
    """KVM's check order is kept once, in explain.CHECK_ORDER: the code has exactly one test
    per rule and walks the table (so it cannot order the rules differently)."""
    from vpmu.kvm import vcpu, vgic, vm
    from vpmu.kvm.explain import CHECK_ORDER
    tests = [vcpu._ATTR_CHECKS, vcpu._ID_REG_CHECKS, vcpu._RUN_CHECKS, vm._CREATE_DEVICE_CHECKS,
             vm._VCPU_INIT_CHECKS, vm._MEMSLOT_CHECKS, vgic._ATTR_CHECKS]
    coded = [c for t in tests for c in t]
    assert len(coded) == len(set(coded))
    assert set(coded) == {c for checks in CHECK_ORDER.values() for c in checks} == set(kvm.EXPLANATIONS)


def test_every_raised_error_explains_itself():
    for r in ROWS:
        with pytest.raises(OSError) as ei:
            r.fn()
        line = kvm.explain(ei.value.errno, r.group, r.attr, ei.value.check,
                           r.op if r.op != "other" else "set")
        assert line.startswith(errno.errorcode[r.err] + ": ")
        assert line[len(errno.errorcode[r.err]) + 2:] == kvm.EXPLANATIONS[r.check][1]


# ---------------------------------------------------------------------------------------------
# vmdesc

FULL = """
memory = "256M"
[host]
steal_time = true
cpu = 0
[[host.pmu]]
type = 8
version = "3.7"
counters = 6
cpus = [0, 1, 2, 3]

[vgic]
nr_spis = 256

[pmu]
version = "3.4"
counters = 4
irq = 23
filters = ["deny:BR_MIS_PRED", "allow:0x4000-0x401F"]

[timer]
vtimer = 27
ptimer = 30

[pvtime]
ipa = 0x4800_0000
"""


def test_vmdesc_full():
    cfg = vmdesc.loads(FULL)
    assert cfg.memory == 256 << 20
    assert (cfg.pmu.version, cfg.pmu.counters, cfg.pmu.irq) == ("3.4", 4, 23)
    bm = cfg.pmu.filter_bitmap
    assert bm[0x10] == 0 and bm[0x11] == 1 and bm[0x4000] == 1 and bm.count(0) == 1
    assert cfg.pvtime_ipa == 0x4800_0000 and cfg.timer_ppis["vtimer"] == 27


def test_vmdesc_defaults():
    cfg = vmdesc.loads("")
    assert (cfg.pmu.present, cfg.pmu.version, cfg.pmu.counters, cfg.pmu.irq) == (True, "3.5", 6, 23)
    assert cfg.pmu.filter_bitmap is None and cfg.memory == 128 << 20


def test_vmdesc_without_vgic_or_pmu():
    cfg = vmdesc.loads("[vgic]\nenabled = false\n")
    assert cfg.pmu.present and cfg.pmu.irq == 23
    cfg = vmdesc.loads("[pmu]\nenabled = false\n")
    assert not cfg.pmu.present


@pytest.mark.parametrize("text, key", [
    ("bogus = 1", "'bogus'"),
    ("[pmu]\nirqq = 23", "'pmu.irqq'"),
    ("[host]\n[[host.pmu]]\ntype = 8\ncolour = 1", "'host.pmu[0].colour'"),
    ("[timer]\nvirt = 27", "'timer.virt'"),
])
def test_vmdesc_unknown_keys_are_named(text, key):
    with pytest.raises(vmdesc.VmDescError) as ei:
        vmdesc.loads(text, "vm.toml")
    assert key in str(ei.value) and str(ei.value).startswith("vm.toml: unknown key")


@pytest.mark.parametrize("text, message", [
    ("memory = [1]", "memory must be a size"),
    ("memory = \"lots\"", "is not a size"),
    ("[pmu]\nirq = \"23\"", "pmu.irq must be an integer"),
    ("[pmu]\nenabled = 1", "pmu.enabled must be a boolean"),
    ("[pmu]\nfilters = [\"allow:0x12-0x11\"]", "pmu.filters[0]: bad filter"),
    ("[pmu]\nversion = \"4.0\"", "pmu.version '4.0' is not one of 3.0, 3.1"),
    ("[host]\n[[host.pmu]]\nversion = \"3.1\"", "needs a 'type'"),
    ("[host]\n[[host.pmu]]\ntype = 8\nversion = \"9\"", "unknown PMU version"),
    ("pmu = 3", "pmu must be a table"),
    ("x = ", "invalid TOML"),
])
def test_vmdesc_format_errors(text, message):
    with pytest.raises(vmdesc.VmDescError, match=re.escape(message)):
        vmdesc.loads(text)


@pytest.mark.parametrize("text, attribute, name, check", [
    ("[pmu]\ncounters = 7", "KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS", "EINVAL", "nr.too_many"),
    ("[pmu]\nset_pmu = 99", "KVM_ARM_VCPU_PMU_V3_SET_PMU", "ENXIO", "set_pmu.notfound"),
    ("[pmu]\nirq = 1020", "KVM_ARM_VCPU_PMU_V3_IRQ", "EINVAL", "irq.range"),
    ("[vgic]\nenabled = false\n[pmu]\nirq = 23", "KVM_ARM_VCPU_PMU_V3_IRQ", "EINVAL", "irq.no_irqchip"),
    ("[pmu]\nenabled = false\nfilters = [\"deny:0x11\"]", "KVM_ARM_VCPU_PMU_V3_FILTER", "ENODEV", "pmu.nodev"),
    ("[host]\n[[host.pmu]]\ntype = 8\nversion = \"3.0\"\n[pmu]\nfilters = [\"allow:0x4000\"]",
     "KVM_ARM_VCPU_PMU_V3_FILTER", "EINVAL", "filter.invalid"),
    ("[vgic]\nnr_spis = 32\n[pmu]\nirq = 64", "KVM_ARM_VCPU_PMU_V3_INIT", "EINVAL", "init.bad_irq"),
    ("[timer]\nvtimer = 23", "KVM_RUN", "EINVAL", "run.timer"),
    ("[timer]\nptimer = 40", "KVM_ARM_VCPU_TIMER_IRQ_PTIMER", "EINVAL", "timer.not_ppi"),
    ("[pvtime]\nipa = 0x1000", "KVM_ARM_VCPU_PVTIME_IPA", "EINVAL", "pvtime.memslot"),
    ("[host]\nsteal_time = false\n[pvtime]\nipa = 0x40000000", "KVM_ARM_VCPU_PVTIME_IPA", "ENXIO",
     "pvtime.unsupported"),
    ("[pmu]\nversion = \"3.7\"", "KVM_SET_ONE_REG(ID_AA64DFR0_EL1.PMUVer)", "EINVAL", "idreg.too_high"),
    ("[vgic]\nnr_spis = 16", "KVM_DEV_ARM_VGIC_GRP_NR_IRQS", "EINVAL", "vgic.nr_irqs_range"),
    ("memory = 1000", "KVM_SET_USER_MEMORY_REGION", "EINVAL", "memslot.align"),
])
def test_vmdesc_kvm_failures_carry_errno_attribute_and_meaning(text, attribute, name, check):
    with pytest.raises(vmdesc.KvmAttrError) as ei:
        vmdesc.loads(text, "vm.toml")
    e = ei.value
    assert (e.attribute, e.errno_name, e.check) == (attribute, name, check)
    assert e.explanation == f"{name}: {kvm.EXPLANATIONS[check][1]}"
    assert str(e).startswith(f"vm.toml: {attribute}") and f"failed: {name}: " in str(e)
    assert "\n" not in str(e)


def test_vmdesc_load_file_and_docs_example(tmp_path):
    p = tmp_path / "vm.toml"
    p.write_text(FULL)
    assert vmdesc.load(p).pmu.counters == 4
    with pytest.raises(vmdesc.VmDescError, match="cannot read"):
        vmdesc.load(tmp_path / "missing.toml")
    docs = Path(__file__).resolve().parents[1] / "docs" / "kvm.md"
    blocks = re.findall(r"```toml\n(.*?)```", docs.read_text(), re.S)
    assert blocks, "docs/kvm.md has no toml example"
    for b in blocks:
        vmdesc.loads(b, "docs/kvm.md")           # every example in the docs is valid


def test_vmdesc_filters_apply_in_order_with_structs():
    cfg = vmdesc.loads('[pmu]\nfilters = ["allow:0-0xFFFF", "deny:CPU_CYCLES"]')
    assert cfg.pmu.filter_bitmap.count(0) == 1 and cfg.pmu.filter_bitmap[0x11] == 0
    vm, vcpu = vmdesc.apply(vmdesc.parse('[pmu]\nfilters = ["allow:0x8"]'))
    assert vm.pmu_filter.default_allow is False and not vm.has_run
    assert parse_filter("allow:0x8").to_structs() == [KvmPmuEventFilter(8, 1, ALLOW)]


def test_docs_rule_table_matches_the_code():
    """docs/kvm.md's attribute table lists, per attribute, the rule ids in KVM's order with
    their errno; it must agree with checks_for() and EXPLANATIONS."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "kvm.md").read_text()
    rows = re.findall(r"^\| ([^|]+?) \| (\d+) \| `([a-z_.]+)` \| [^|]+ \| (E[A-Z]+) \|$", docs, re.M)
    table: dict[str, list] = {}
    for label, n, check, err in rows:
        table.setdefault(label, []).append(check)
        assert int(n) == len(table[label]), label
        assert errno.errorcode[kvm.EXPLANATIONS[check][0]] == err, check
    s = lambda checks, k: checks[k:]  # noqa: E731
    expected = {
        "any vCPU attribute": ["dispatch.efault", "dispatch.group"],
        "PMU_V3_CTRL prefix (set)": ["pmu.nodev", "pmu.created"],
        "PMU_V3_IRQ (set)": s(kvm.checks_for(P, IRQ), 4),
        "PMU_V3_INIT (set)": s(kvm.checks_for(P, INIT), 4),
        "PMU_V3_FILTER (set)": s(kvm.checks_for(P, FILTER), 4),
        "PMU_V3_SET_PMU (set)": s(kvm.checks_for(P, SET_PMU), 4),
        "PMU_V3_SET_NR_COUNTERS (set)": s(kvm.checks_for(P, NR), 4),
        "unknown PMU attr (set)": s(kvm.checks_for(P, 99), 4),
        "PMU_V3_IRQ (get)": s(kvm.checks_for(P, IRQ, "get"), 2),
        "other PMU attr (get)": s(kvm.checks_for(P, INIT, "get"), 2),
        "PMU attr (has)": s(kvm.checks_for(P, IRQ, "has"), 2),
        "TIMER_IRQ_* (set)": s(kvm.checks_for(T, VTIMER), 2),
        "TIMER_IRQ_* (get)": s(kvm.checks_for(T, VTIMER, "get"), 2),
        "TIMER_IRQ_* (has)": s(kvm.checks_for(T, VTIMER, "has"), 2),
        "PVTIME_IPA (set)": s(kvm.checks_for(V, IPA), 2),
        "PVTIME_IPA (get)": s(kvm.checks_for(V, IPA, "get"), 2),
        "PVTIME_IPA (has)": s(kvm.checks_for(V, IPA, "has"), 2),
        "KVM_RUN (first run of a vCPU)": kvm.checks_for("KVM_RUN"),
        "KVM_ARM_VCPU_INIT (create_vcpu)": kvm.checks_for("KVM_ARM_VCPU_INIT"),
    }
    assert table == expected


# ---------------------------------------------------------------------------------------------
# The runner's flags through KVM (vpmu.options.RunOptions.to_machine_config)

def test_flags_default_and_pmu_version_is_the_guests():
    cfg = RunOptions().to_machine_config()
    assert (cfg.pmu.version, cfg.pmu.counters, cfg.pmu.irq, cfg.pmu.filter_bitmap) == ("3.7", 6, 23, None)
    cfg = RunOptions(pmu_version="3.4", counters=12, pmu_irq=40).to_machine_config()
    assert (cfg.pmu.version, cfg.pmu.counters, cfg.pmu.irq) == ("3.4", 12, 40)


def test_flags_filters_use_the_versions_space():
    cfg = RunOptions(pmu_version="3.0", filters=["allow:INST_RETIRED", "allow:0x3FF"]).to_machine_config()
    assert len(cfg.pmu.filter_bitmap) == 1024 and cfg.pmu.filter_bitmap.count(1) == 2
    with pytest.raises(kvm.KvmAttrError) as ei:
        RunOptions(pmu_version="3.0", filters=["allow:0x4000"]).to_machine_config()
    e = ei.value
    assert e.status == 105 and e.errno_name == "EINVAL" and e.attribute == "KVM_ARM_VCPU_PMU_V3_FILTER"
    assert str(e).startswith("command line: KVM_ARM_VCPU_PMU_V3_FILTER (filters[0] = 'allow:0x4000') "
                             "failed: EINVAL: invalid filter")


@pytest.mark.parametrize("kw, message", [
    (dict(pmu_version="3.9"), "--pmu-version: unknown version '3.9'"),
    (dict(counters=32), "--counters must be in 0..31"),
    (dict(filters=["allow:0x12-0x11"]), "--filter: bad filter 'allow:0x12-0x11'"),
])
def test_flags_bad_values(kw, message):
    with pytest.raises(UsageError) as ei:
        RunOptions(**kw).to_machine_config()
    assert message in str(ei.value) and ei.value.status == 2


def test_flags_no_pmu_with_filters_fails_like_kvm():
    assert not RunOptions(no_pmu=True).to_machine_config().pmu.present
    with pytest.raises(kvm.KvmAttrError) as ei:
        RunOptions(no_pmu=True, filters=["deny:0x11"]).to_machine_config()
    assert ei.value.errno_name == "ENODEV"


def test_flags_with_a_vm_file(tmp_path):
    p = tmp_path / "vm.toml"
    p.write_text('[host]\n[[host.pmu]]\ntype = 8\nversion = "3.7"\ncounters = 4\n'
                 '[pmu]\nfilters = ["deny:0x10"]\n')
    cfg = RunOptions(vm=p, filters=["deny:0x11"], pmu_irq=24).to_machine_config()
    assert cfg.pmu.version == "3.5"                  # the file's host: KVM's cap applies
    assert cfg.pmu.counters == 4 and cfg.pmu.irq == 24
    assert cfg.pmu.filter_bitmap.count(0) == 2
    with pytest.raises(kvm.KvmAttrError) as ei:      # more counters than the file's host has
        RunOptions(vm=p, counters=6).to_machine_config()
    assert ei.value.check == "nr.too_many"
    with pytest.raises(kvm.KvmAttrError):            # 3.7 is above KVM's cap for a file host
        RunOptions(vm=p, pmu_version="3.7").to_machine_config()
