"""xenpmu_op (40) and the shared-page sample protocol, Arm PMUv3 flavour.

Semantics are x86 Xen's (xen/arch/x86/cpu/vpmu.c, xen-pmu.md sections 1-3) applied to
the Arm page layout of xen-pmu.md section 5 (:data:`vpmu.xen.layout.XEN_PMU_DATA`):

* prologue: vPMU off at boot -> ``-EOPNOTSUPP``; ops 0-3 and unknown ops need the
  control domain (``-EPERM``); mode_set/feature_set/init/finish copy the 24-byte params
  (``-EFAULT``) and require ``version.maj == 0`` (``-EINVAL``); unknown op -> ``-EINVAL``;
* availability is decided per vCPU at creation from the mode then in force and the
  global active-vPMU count only counts non-dom0 vCPUs (:meth:`XenPmu.vcpu_created`);
* a sample freezes the PMU, snapshots it into the page, masks the PMU interrupt,
  sets PMU_CACHED and raises VIRQ_XENPMU; ``flush`` validates the guest-edited page,
  reloads it and unfreezes, or re-caches and returns ``-EIO``.

Documented choices (docs/xen.md): a flush reloads the page only when a sample was
pending (PMU_CACHED was set) -- on Arm the live PMU is authoritative, a stale page must
not clobber it; event counters may hold 64-bit values exactly when the model implements
PMUv3p5 (architectural width; Linux writes ones in bits 63:32 when LP=0), instead of the
spec's "PMUv3p5 and PMCR.LP=1"; counters >= N are neither validated nor loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from . import abi as A
from . import layout as L
from .env import InterruptedContext, PmuRegs
from .xerrno import EBUSY, EEXIST, EFAULT, EINVAL, EIO, ENOENT, EOPNOTSUPP, EPERM

if TYPE_CHECKING:
    from .core import Vcpu
    from .domain import Domain

PMCR_P = 1 << 1          # event counter reset (write-only command)
PMCR_C = 1 << 2          # cycle counter reset (write-only command)
CYCLE_BIT = 1 << 31
MODE_MASK = A.XENPMU_MODE_SELF | A.XENPMU_MODE_HV | A.XENPMU_MODE_ALL
FEATURE_MASK = A.XENPMU_FEATURE_INTEL_BTS | A.XENPMU_FEATURE_IPC_ONLY | A.XENPMU_FEATURE_ARCH_ONLY
_D = L.XEN_PMU_DATA


@dataclass
class PageRules:
    """What XENPMU_flush accepts in the guest-edited register block (xen-pmu.md section 5).

    The machine should pass the rules of the PMU it models: ``event_counter_bits=64`` with
    FEAT_PMUv3p5, ``pmcr_rw_mask=0x7F`` without it (no PMCR.LP).
    """
    pmcr_rw_mask: int = 0xFF               # E P C D X DP LC LP
    pmcr_ro_mask: int = 0xFFFFF800         # IMP[31:24] IDCODE[23:16] N[15:11]: must be unchanged
    pmuserenr_mask: int = 0xF              # EN SW CR ER
    pmccfiltr_mask: int = 0xF8000000       # P U NSK NSU NSH
    pmevtyper_mask: int = 0xF800FFFF       # P U NSK NSU NSH + 16-bit event number
    event_counter_bits: int = 32


def validate(regs: dict, model_pmcr: int, n: int, rules: PageRules) -> Optional[str]:
    """None if the page's register block may be loaded, else the first broken rule."""
    implemented = CYCLE_BIT | ((1 << n) - 1)
    for name in ("pmcntenset", "pmintenset", "pmovsset"):
        if regs["c." + name] & ~implemented:
            return name
    pmcr = regs["c.pmcr"]
    if pmcr & ~(rules.pmcr_rw_mask | rules.pmcr_ro_mask) or \
            (pmcr & rules.pmcr_ro_mask) != (model_pmcr & rules.pmcr_ro_mask):
        return "pmcr"
    sel = regs["c.pmselr"]
    if sel > 31 or (sel != 31 and sel >= n):
        return "pmselr"
    if regs["c.pmuserenr"] & ~rules.pmuserenr_mask:
        return "pmuserenr"
    if regs["c.pmccfiltr"] & ~rules.pmccfiltr_mask:
        return "pmccfiltr"
    for i in range(n):
        if regs["c.pmevtyper"][i] & ~rules.pmevtyper_mask:
            return f"pmevtyper{i}"
        if regs["c.pmevcntr"][i] >> rules.event_counter_bits:
            return f"pmevcntr{i}"
    return None


class XenPmu:
    """The global vPMU state (mode, features, active count) and the per-vCPU protocol."""

    def __init__(self, d: "Domain", boot_mode: str, rules: PageRules):
        if boot_mode not in A.MODE_BY_NAME:
            raise ValueError(f"xen vpmu mode must be one of {sorted(A.MODE_BY_NAME)}")
        self.d = d
        self.enabled = boot_mode != "off"      # opt_vpmu_enabled
        self.mode = A.MODE_BY_NAME[boot_mode]
        self.features = 0
        self.count = 0                         # vpmu_count: active non-dom0 vPMUs
        self.rules = rules
        self._foreign: dict[int, bool] = {}    # phantom domU vCPUs: id -> counted
        self._next_foreign = 0

    # --- availability (get_vpmu / put_vpmu) ------------------------------------------
    def vcpu_created(self, hardware_domain: bool) -> tuple[bool, bool]:
        """(available, counted) for a vCPU created now."""
        if not hardware_domain and self.mode & (A.XENPMU_MODE_SELF | A.XENPMU_MODE_HV):
            self.count += 1
            return True, True
        if hardware_domain and self.mode != A.XENPMU_MODE_OFF:
            return True, False
        return False, False

    def add_foreign_vcpu(self) -> int:
        fid = self._next_foreign
        self._next_foreign += 1
        self._foreign[fid] = self.vcpu_created(hardware_domain=False)[1]
        return fid

    def destroy_foreign_vcpu(self, fid: int) -> None:
        if self._foreign.pop(fid, False):
            self.count -= 1

    # --- xenpmu_op -----------------------------------------------------------------------
    def op(self, op: int, arg: int) -> int:
        d = self.d
        if not self.enabled:
            return -EOPNOTSUPP
        if op not in (A.XENPMU_init, A.XENPMU_finish, A.XENPMU_lvtpc_set, A.XENPMU_flush) \
                and not d.is_privileged:
            return -EPERM                                 # xsm_pmu_op: XSM_PRIV
        params: dict = {}                                 # read only by the ops below
        if op in (A.XENPMU_mode_set, A.XENPMU_feature_set, A.XENPMU_init, A.XENPMU_finish):
            raw = d.guest.copy_from(arg, L.XEN_PMU_PARAMS.size)
            if raw is None:
                return -EFAULT
            params = L.XEN_PMU_PARAMS.unpack(raw)
            if params["version.maj"] != A.XENPMU_VER_MAJ:
                return -EINVAL
        if op == A.XENPMU_mode_get:
            out = L.XEN_PMU_PARAMS.pack({"version.maj": A.XENPMU_VER_MAJ,
                                         "version.min": A.XENPMU_VER_MIN, "val": self.mode})
            return 0 if d.guest.copy_to(arg, out) else -EFAULT
        if op == A.XENPMU_mode_set:
            return self._mode_set(params["val"])
        if op == A.XENPMU_feature_get:
            out = self.features.to_bytes(8, "little")     # copy_field_to_guest(val) only
            return 0 if d.guest.copy_to(arg + L.XEN_PMU_PARAMS.off("val"), out) else -EFAULT
        if op == A.XENPMU_feature_set:
            val = params["val"]
            if val & ~FEATURE_MASK:
                return -EINVAL
            if self.count == 0 or self.features == val:
                self.features = val
                return 0
            return -EBUSY
        if op == A.XENPMU_init:
            return self._init(params)
        if op == A.XENPMU_finish:
            self._finish(params["vcpu"])
            return 0
        if op == A.XENPMU_lvtpc_set:
            v = d.current
            if v.pmu.page_pa is None:
                return -EINVAL
            self._lvtpc_update(v, v.pmu.page_pa)
            return 0
        if op == A.XENPMU_flush:
            return self._flush(d.current)
        return -EINVAL

    def _mode_set(self, val: int) -> int:
        if val & ~MODE_MASK or bin(val).count("1") > 1:
            return -EINVAL
        # SELF <-> HV may always change; anything else needs no active domU vPMU.
        if self.count == 0 or (self.mode ^ val) == (A.XENPMU_MODE_SELF | A.XENPMU_MODE_HV):
            self.mode = val
            return 0
        if self.mode != val:
            return -EBUSY
        return 0

    def _init(self, params: dict) -> int:
        d = self.d
        vid = params["vcpu"]
        if vid >= len(d.vcpus):
            return -EINVAL
        v = d.vcpus[vid]
        if not v.pmu.available:
            return -ENOENT
        pa = params["val"] << A.PAGE_SHIFT
        if not d.guest.is_ram(pa, A.PAGE_SIZE):
            return -EINVAL
        if v.pmu.page_pa is not None:
            return -EEXIST
        v.pmu.page_pa = pa
        # vpmu_arch_initialise(): nothing when the mode is OFF (page stays registered).
        if self.mode == A.XENPMU_MODE_OFF:
            return 0
        v.pmu.lvtpc_masked = v.pmu.hw_masked = True      # hw_lapic_lvtpc = vector|MASKED
        v.pmu.initialised = True
        n = d.env.pmu_snapshot().nr_counters
        buf = bytearray(d.guest.read_phys(pa, _D.size) or bytes(_D.size))
        _D.put(buf, "c.counters", L.PMU_COUNTERS_REL)
        _D.put(buf, "c.types", L.PMU_TYPES_REL)
        _D.put(buf, "c.nr_counters", n)
        d.guest.write_phys(pa + L.PMU_C_OFFSET, bytes(buf[L.PMU_C_OFFSET:_D.off("c.pmcr")]))
        return 0

    def _finish(self, vid: int) -> None:
        d = self.d
        if vid >= len(d.vcpus):
            return
        p = d.vcpus[vid].pmu
        if p.cached:
            d.env.pmu_set_frozen(False)                  # the context goes away with it
        p.initialised = p.cached = False
        p.lvtpc_masked = p.hw_masked = True
        p.page_pa = None                                  # page contents are left as they were

    def _lvtpc_update(self, v: "Vcpu", page_pa: int) -> None:
        """vpmu_lvtpc_update(): only bit 16 of l.irq_ctrl (of the page at ``page_pa``)."""
        if self.mode == A.XENPMU_MODE_OFF:
            return
        raw = self.d.guest.read_phys(page_pa + _D.off("l.irq_ctrl"), 4) or bytes(4)
        v.pmu.lvtpc_masked = bool(int.from_bytes(raw, "little") & A.PMU_IRQ_MASKED)
        if not v.pmu.cached:                              # postponed while a sample is pending
            v.pmu.hw_masked = v.pmu.lvtpc_masked

    def _set_flags(self, page_pa: int, set_bits: int, clear_bits: int) -> None:
        g = self.d.guest
        off = page_pa + _D.off("pmu_flags")
        flags = int.from_bytes(g.read_phys(off, 8) or bytes(8), "little")
        g.write_phys(off, ((flags & ~clear_bits) | set_bits).to_bytes(8, "little"))

    def _flush(self, v: "Vcpu") -> int:
        p = v.pmu
        pa = p.page_pa
        if pa is None:
            return -EINVAL
        was_cached = p.cached
        self._set_flags(pa, 0, A.PMU_CACHED)
        p.cached = False
        self._lvtpc_update(v, pa)
        if not (was_cached and p.initialised):
            return 0
        d = self.d
        raw = d.guest.read_phys(pa, _D.size) or bytes(_D.size)
        page = _D.unpack(raw)
        bad = validate(page, p.sample_pmcr, p.sample_n, self.rules)
        if bad is not None:
            self._set_flags(pa, A.PMU_CACHED, 0)
            p.cached = True
            p.hw_masked = True                            # vpmu_load failure re-masks
            d.note("rejected", bad)                       # lands in the hypercall record
            return -EIO
        n = p.sample_n
        pmcr = page["c.pmcr"]
        evcntr = [page["c.pmevcntr"][i] if i < n else 0 for i in range(31)]
        ccntr = page["c.pmccntr"]
        if pmcr & PMCR_P:
            evcntr = [0] * 31
        if pmcr & PMCR_C:
            ccntr = 0
        if pmcr & (PMCR_P | PMCR_C):
            pmcr &= ~(PMCR_P | PMCR_C)
            d.guest.write_phys(pa + _D.off("c.pmcr"), pmcr.to_bytes(8, "little"))
        regs = PmuRegs(
            nr_counters=n, pmcr=pmcr, pmcntenset=page["c.pmcntenset"],
            pmintenset=page["c.pmintenset"], pmovsset=page["c.pmovsset"],
            pmselr=page["c.pmselr"], pmuserenr=page["c.pmuserenr"], pmccntr=ccntr,
            pmccfiltr=page["c.pmccfiltr"], evcntr=evcntr,
            evtyper=[page["c.pmevtyper"][i] if i < n else 0 for i in range(31)])
        d.env.pmu_load(regs)
        d.env.pmu_set_frozen(False)
        return 0

    # --- the overflow interrupt (vpmu_do_interrupt) ---------------------------------------
    def on_overflow(self, ctx: InterruptedContext) -> bool:
        d = self.d
        v = d.current
        p = v.pmu
        if p.page_pa is None:
            return False                                  # not using the protocol: native PPI
        reason = None
        if self.mode & A.XENPMU_MODE_ALL and not d.is_hardware_domain:
            reason = "dom0_samples"                       # the sample belongs to dom0 (not modelled)
        elif not p.initialised:
            reason = "uninitialised"
        elif p.cached:
            reason = "cached"
        elif p.hw_masked:
            reason = "masked"
        if reason is not None:
            self._trace(v, ctx, None, None, reason)
            return True
        d.env.pmu_set_frozen(True)
        regs = d.env.pmu_snapshot()
        n = max(0, min(31, regs.nr_counters))
        flags = (A.PMU_SAMPLE_USER if ctx.el == 0 else 0) | A.PMU_CACHED
        m64 = A.U64
        page = _D.pack({
            "vcpu_id": v.id, "pcpu_id": v.id, "domain_id": A.DOMID_SELF,
            "r.pc": ctx.pc & m64, "r.sp": ctx.sp & m64, "r.pstate": ctx.pstate & m64,
            "r.el": ctx.el & 0xFF, "pmu_flags": flags,
            "c.counters": L.PMU_COUNTERS_REL, "c.types": L.PMU_TYPES_REL, "c.nr_counters": n,
            "c.pmcr": regs.pmcr & m64, "c.pmcntenset": regs.pmcntenset & m64,
            "c.pmintenset": regs.pmintenset & m64, "c.pmovsset": regs.pmovsset & m64,
            "c.pmselr": regs.pmselr & m64, "c.pmuserenr": regs.pmuserenr & m64,
            "c.pmccntr": regs.pmccntr & m64, "c.pmccfiltr": regs.pmccfiltr & m64,
            "c.pmevcntr": [int(regs.evcntr[i]) & m64 if i < n else 0 for i in range(31)],
            "c.pmevtyper": [int(regs.evtyper[i]) & m64 if i < n else 0 for i in range(31)],
        })
        for lo, hi in L.PMU_HV_SPANS:                     # `l` is never written by Xen
            d.guest.write_phys(p.page_pa + lo, page[lo:hi])
        p.sample_pmcr = regs.pmcr & m64
        p.sample_n = n
        p.lvtpc_masked = p.hw_masked = True               # hw_lapic_lvtpc |= APIC_LVT_MASKED
        p.cached = True
        port = d.evtchn.send_vcpu_virq(v, A.VIRQ_XENPMU)
        self._trace(v, ctx, flags, port, None)
        return True

    def _trace(self, v, ctx, flags, port, dropped) -> None:
        self.d.trace({"type": "xen_sample", "vcpu": v.id, "pc": ctx.pc, "sp": ctx.sp,
                       "pstate": ctx.pstate, "el": ctx.el, "flags": flags,
                       "domain_id": A.DOMID_SELF, "port": port, "dropped": dropped})


def do_xenpmu_op(d: "Domain", op: int, arg: int) -> int:
    """xenpmu_op (40) from the caller's domain."""
    return d.vpmu.op(op, arg)
