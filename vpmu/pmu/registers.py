"""The PMU, generic-timer and ID system registers as KVM presents them to a guest.

``reconfigure`` derives what each counter counts from the architectural registers, the
event filter and the PMU version; the access functions implement reads, writes and the
UNDEF rules (kvm-pmu.md 3.1-3.9).  Handlers are the named ``regs.H_*`` ids.
"""
from __future__ import annotations



from .jit import inline_kernel, kernel
from . import channels as C
from . import counting as cnt
from . import layout as L
from . import regs
from ..config import PMU_VERSIONS
from .counting import I, ONE, U, ZERO

PMUVER_V3P4 = PMU_VERSIONS["3.4"]     # PMMIR_EL1 exists from here
PMUVER_V3P5 = PMU_VERSIONS["3.5"]     # 64-bit event counters, PMCR.LP
SEL_MASK = 31                         # PMSELR_EL0.SEL
EL0_NEED = 0x7FFF                     # regs.el0_rule_table: 15-bit EL0 requirement fields


@inline_kernel
def pmev_index(key):
    """Counter index n of a PMEVCNTR<n>/PMEVTYPER<n> key (regs.pmev_index)."""
    return I(((key >> 3) & 3) << 3 | (key & 7))


@kernel
def event_allowed(A, ev):
    """KVM filter (kvm-pmu.md 2): no filter = allowed; else the bitmap bit."""
    if A[L.FILT_ON] == ZERO:
        return True
    if ev >= 65536:
        return False
    return (A[L.FILT + (ev >> 6)] >> U(ev & 63)) & ONE != ZERO


@kernel
def reconfigure(A):
    """Recompute what each counter counts from PMCR/PMCNTEN/PMINTEN/PMEVTYPER/PMCCFILTR,
    the filter, the PMU version and the frozen flag (KVM re-evaluates on every such change)."""
    cnt.defer_flush(A)                          # tallies count with the configuration they ran under
    e_on = (A[L.PMCR] & U(regs.PMCR_E)) != ZERO and A[L.FROZEN] == ZERO and A[L.PMU_PRESENT] != ZERO
    vm = cnt.valid_mask(A)
    nact = 0
    for d in range(C.ND):
        A[L.DYN_LISTEN + d] = ZERO
    watch = ZERO
    evmask = A[L.EVMASK]
    pmcr = A[L.PMCR]
    obs = A[L.OBS_MASK]
    obs_on = e_on or A[L.OBS_ALWAYS] != ZERO
    for c in range(32):
        A[L.C_S + c] = U(L.NOCH)
        A[L.C_D + c] = U(L.NOCH)
        bit = ONE << U(c)
        if (obs & bit) != ZERO:
            # An observer (vpmu stat): beyond PMCR.N, so no guest access, PMCR.P, PMCNTEN,
            # PMINTEN, PMOVS or CHAIN reaches it; 64 bits wide, so it never overflows (no
            # PMU_OVFS, no trace record); the guest's filter does not apply (a host-side count).
            A[L.C_OVF64 + c] = ONE
            A[L.C_WMASK + c] = cnt.M64
            ty = A[L.TYPER + c]
            A[L.C_EL + c] = U((1 if (ty & regs.TY_U) == ZERO else 0) | (2 if (ty & regs.TY_P) == ZERO else 0))
            if not obs_on:
                continue
            ev = I(ty & U(0xFFFF))
        elif c == L.CCNT:
            A[L.C_OVF64 + c] = U(1) if (pmcr & U(regs.PMCR_LC)) != ZERO else ZERO
            A[L.C_WMASK + c] = cnt.M64
            ev = 0x11                       # the cycle counter counts CPU_CYCLES
        else:
            A[L.C_OVF64 + c] = U(1) if ((pmcr & U(regs.PMCR_LP)) != ZERO and A[L.EVCNT64] != ZERO) else ZERO
            A[L.C_WMASK + c] = cnt.M64 if A[L.EVCNT64] != ZERO else cnt.M32
            ev = I(A[L.TYPER + c] & evmask)
        if (obs & bit) == ZERO:
            ty = A[L.TYPER + c]
            # EL filter for a guest without EL2/EL3: counts at EL1 iff P == NSK (NSK reads 0),
            # at EL0 iff U == NSU (NSU reads 0) (kvm-pmu.md 3.6).
            elm = 0
            if (ty & regs.TY_U) == ZERO:
                elm |= 1
            if (ty & regs.TY_P) == ZERO:
                elm |= 2
            A[L.C_EL + c] = U(elm)
            if not e_on or (A[L.CNTEN] & bit & vm) == ZERO:
                continue
            if (A[L.INTEN] & bit) != ZERO:
                watch |= bit
            if ev == 0 or ev == 0x1E:           # SW_INCR / CHAIN: software, never filtered
                continue
            if not event_allowed(A, ev):        # denied: never counts, reads/writes still work
                continue
        sl = -1
        if ev < 64:
            sl = ev
        elif ev >= 0x4000 and ev < 0x4040:
            sl = 64 + ev - 0x4000
        if sl < 0 or A[L.EV_OK + sl] == ZERO:
            continue                        # not implemented: the counter does not count
        s = A[L.EV_S + sl]
        dch = A[L.EV_D + sl]
        A[L.C_S + c] = s
        A[L.C_D + c] = dch
        if s != U(L.NOCH):
            A[L.ACT + nact] = U(c) | (s << U(8)) | (A[L.C_EL + c] << U(16)) | (A[L.C_OVF64 + c] << U(24))
            nact += 1
        if dch != U(L.NOCH):
            A[L.DYN_LISTEN + I(dch)] |= bit
    A[L.ACT_N] = U(nact)
    A[L.IRQ_WATCH] = watch
    # A cache model starts (cold) when a counter first counts one of its events and then keeps
    # simulating (its contents must not depend on when counting was on); --cache starts both.
    if A[L.DYN_LISTEN + C.D_L1I_REFILL] != ZERO:
        A[L.L1I_ACTIVE] = ONE
    if (A[L.DYN_LISTEN + C.D_L1D_REFILL] | A[L.DYN_LISTEN + C.D_L1D_WB]) != ZERO:
        A[L.L1D_ACTIVE] = ONE
    mw = A[L.L1D_ACTIVE]
    for d in C.MEM_HOOK_CHANNELS:
        if A[L.DYN_LISTEN + d] != ZERO:
            mw = ONE
    A[L.MEMHOOK_WANT] = mw
    A[L.DEF_OK] = ONE if cnt.defer_ok(A) else ZERO


@kernel
def access_undef(A, key, h, is_read, el):
    """Does this access UNDEF?  kvm-pmu.md 3.1 (EL0 table, checked first) and 3.2 (index)."""
    rule = A[L.RULE + key]
    if is_read and (rule & U(regs.RULE_WO)) != ZERO:
        return True             # read of a write-only register
    if (not is_read) and (rule & U(regs.RULE_RO)) != ZERO:
        return True             # write of a read-only register
    if h >= regs.H_PMU_FIRST and h <= regs.H_PMU_LAST:
        if A[L.PMU_PRESENT] == ZERO:
            return True         # vCPU without the PMU feature: every PMU register UNDEFs
        if h == regs.H_PMMIR and A[L.PMUVER] < U(PMUVER_V3P4):
            return True         # PMMIR_EL1 exists from PMUv3p4
    if el == 0:
        need = (rule >> U(15)) & U(EL0_NEED) if not is_read else rule & U(EL0_NEED)
        if need == U(regs.NEVER):
            return True
        if need != ZERO:
            if h >= regs.H_PMU_FIRST and h <= regs.H_PMU_LAST:
                have = A[L.USERENR]
            else:
                have = A[L.CNTKCTL]
            if (have & need) == ZERO:
                return True
            # writes to counters at EL0 need EN even when ER/CR allowed the read path
    if h == regs.H_PMEVCNTR or h == regs.H_PMEVTYPER or h == regs.H_PMXEVTYPER or h == regs.H_PMXEVCNTR:
        if h == regs.H_PMEVCNTR or h == regs.H_PMEVTYPER:
            idx = pmev_index(key)
        else:
            idx = I(A[L.SELR] & U(SEL_MASK))
        if idx != L.CCNT and idx >= I(A[L.NCNT]):
            return True
        if idx == L.CCNT and (h == regs.H_PMEVCNTR or h == regs.H_PMEVTYPER):
            return True         # PMEVCNTR31/PMEVTYPER31 do not exist
    return False


@kernel
def pmcr_read(A):
    # N replaced by the configured counter number; P and C read 0; IDCODE/IMP read 0 (KVM).
    return (A[L.PMCR] & U(0xFF & ~(regs.PMCR_P | regs.PMCR_C))) | (A[L.NCNT] << U(11))


@kernel
def pmu_read(A, h, key):
    vm = cnt.valid_mask(A)
    if h == regs.H_PMCR:
        return pmcr_read(A)
    if h == regs.H_PMCNTENSET or h == regs.H_PMCNTENCLR:
        return A[L.CNTEN] & vm
    if h == regs.H_PMOVSCLR or h == regs.H_PMOVSSET:
        return A[L.OVS] & vm
    if h == regs.H_PMSELR:
        return A[L.SELR] & U(SEL_MASK)
    if h == regs.H_PMCEID0:
        return A[L.PMCEID0]
    if h == regs.H_PMCEID1:
        return A[L.PMCEID1]
    if h == regs.H_PMCCNTR:
        return A[L.CNT + L.CCNT]
    if h == regs.H_PMXEVTYPER:
        return A[L.TYPER + I(A[L.SELR] & U(SEL_MASK))]
    if h == regs.H_PMXEVCNTR:
        return A[L.CNT + I(A[L.SELR] & U(SEL_MASK))]
    if h == regs.H_PMUSERENR:
        return A[L.USERENR] & U(0xF)
    if h == regs.H_PMINTENSET or h == regs.H_PMINTENCLR:
        return A[L.INTEN] & vm
    if h == regs.H_PMMIR:
        return ZERO             # PMMIR_EL1 RAZ (KVM: no SLOTS / THWIDTH advertised)
    if h == regs.H_PMEVCNTR:
        return A[L.CNT + pmev_index(key)]
    if h == regs.H_PMEVTYPER:
        return A[L.TYPER + pmev_index(key)]
    if h == regs.H_PMCCFILTR:
        return A[L.TYPER + L.CCNT]
    return ZERO


@kernel
def typer_mask(A):
    # P | U | evtCount (10 or 16 bits); NSK/NSU/NSH/M read 0 for an EL1 guest (kvm-pmu.md 3.6).
    return regs.TY_P | regs.TY_U | A[L.EVMASK]


@kernel
def swinc(A, v, pc):
    """PMSWINC_EL0 write (kvm-pmu.md 3.8 step 6): ignores P/U and the filter."""
    cnt.defer_irq(A)
    _swinc(A, v, pc)
    cnt.release_irq(A)


@kernel
def _swinc(A, v, pc):
    if (A[L.PMCR] & U(regs.PMCR_E)) == ZERO or A[L.FROZEN] != ZERO:
        return
    v &= cnt.valid_mask(A) & ~(ONE << U(L.CCNT))
    for c in range(L.CCNT):
        bit = ONE << U(c)
        if (v & bit) != ZERO and (A[L.CNTEN] & bit) != ZERO and (A[L.TYPER + c] & A[L.EVMASK]) == ZERO:
            if cnt.overflowing_add(A, c, ONE):
                cnt.on_overflow(A, c, pc, A[L.ICOUNT])


@kernel
def pmu_write(A, h, key, val, pc):
    vm = cnt.valid_mask(A)
    if h == regs.H_PMCR:
        nv = val & U(0xFF)
        nv |= U(regs.PMCR_LC)                        # LC is RES1: AArch64-only EL0 (kvm-pmu.md 3.3)
        if A[L.PMUVER] < U(PMUVER_V3P5):
            nv &= ~U(regs.PMCR_LP)                   # LP is RES0 before PMUv3p5
        if (nv & U(regs.PMCR_C)) != ZERO:
            A[L.CNT + L.CCNT] = ZERO                  # C: reset the cycle counter
        if (nv & U(regs.PMCR_P)) != ZERO:
            for c in range(I(A[L.NCNT])):       # P: reset event counters (not PMCCNTR), 64 bits
                A[L.CNT + c] = ZERO
        A[L.PMCR] = nv & ~U(regs.PMCR_P | regs.PMCR_C)      # P and C are stored as 0
        reconfigure(A)
        cnt.irq_update(A)
        return
    if h == regs.H_PMCNTENSET:
        A[L.CNTEN] |= val & vm
        reconfigure(A)
        return
    if h == regs.H_PMCNTENCLR:
        A[L.CNTEN] &= ~(val & vm)
        reconfigure(A)
        return
    if h == regs.H_PMOVSCLR:
        A[L.OVS] &= ~(val & vm)
        cnt.irq_update(A)
        return
    if h == regs.H_PMOVSSET:
        A[L.OVS] |= val & vm
        cnt.irq_update(A)
        return
    if h == regs.H_PMSWINC:
        swinc(A, val, pc)
        return
    if h == regs.H_PMSELR:
        A[L.SELR] = val                           # stored in full, reads return [4:0]
        return
    if h == regs.H_PMCCNTR:
        A[L.CNT + L.CCNT] = val
        return
    if h == regs.H_PMXEVTYPER:
        idx = I(A[L.SELR] & U(SEL_MASK))
        A[L.TYPER + idx] = val & typer_mask(A)    # SEL = 31 -> PMCCFILTR (same mask: KVM quirk)
        reconfigure(A)
        return
    if h == regs.H_PMXEVCNTR:
        idx = I(A[L.SELR] & U(SEL_MASK))
        A[L.CNT + idx] = val & A[L.C_WMASK + idx] if idx != L.CCNT else val
        return
    if h == regs.H_PMUSERENR:
        A[L.USERENR] = val & U(0xF)
        return
    if h == regs.H_PMINTENSET:
        A[L.INTEN] |= val & vm
        reconfigure(A)
        cnt.irq_update(A)
        return
    if h == regs.H_PMINTENCLR:
        A[L.INTEN] &= ~(val & vm)
        reconfigure(A)
        cnt.irq_update(A)
        return
    if h == regs.H_PMEVCNTR:
        idx = pmev_index(key)
        A[L.CNT + idx] = val & A[L.C_WMASK + idx]
        return
    if h == regs.H_PMEVTYPER:
        idx = pmev_index(key)
        A[L.TYPER + idx] = val & typer_mask(A)
        reconfigure(A)
        return
    if h == regs.H_PMCCFILTR:
        A[L.TYPER + L.CCNT] = val & typer_mask(A)     # KVM keeps evtCount bits in PMCCFILTR
        reconfigure(A)
        return


@kernel
def timer_read(A, h):
    t = cnt.now(A) // A[L.TICK_DIV]
    if h == regs.H_CNTFRQ:
        return A[L.CNTFRQ]
    if h == regs.H_CNTPCT or h == regs.H_CNTVCT:
        return t
    if h == regs.H_CNTKCTL:
        return A[L.CNTKCTL]
    if h == regs.H_CNTP_CTL or h == regs.H_CNTV_CTL:
        ctl = A[L.CNTP_CTL] if h == regs.H_CNTP_CTL else A[L.CNTV_CTL]
        cval = A[L.CNTP_CVAL] if h == regs.H_CNTP_CTL else A[L.CNTV_CVAL]
        ctl &= U(3)
        if (ctl & ONE) != ZERO and t >= cval:
            ctl |= U(4)                         # ISTATUS
        return ctl
    if h == regs.H_CNTP_CVAL:
        return A[L.CNTP_CVAL]
    if h == regs.H_CNTV_CVAL:
        return A[L.CNTV_CVAL]
    if h == regs.H_CNTP_TVAL or h == regs.H_CNTV_TVAL:
        cval = A[L.CNTP_CVAL] if h == regs.H_CNTP_TVAL else A[L.CNTV_CVAL]
        return (cval - t) & cnt.M32                 # TVAL: low 32 bits of CVAL - CNT (signed)
    return ZERO


@kernel
def id_read(A, h, qemu_value):
    if h == regs.H_ID_AA64DFR0:   # ID_AA64DFR0_EL1.PMUVer [11:8]
        pv = A[L.PMUVER] if A[L.PMU_PRESENT] != ZERO else ZERO
        return (qemu_value & ~U(0xF00)) | (pv << U(8))
    if h == regs.H_ID_DFR0:   # ID_DFR0_EL1.PerfMon [27:24]: the AArch32 encoding (PMUv3 = 3, then as PMUVer)
        pv = A[L.PMUVER] if A[L.PMU_PRESENT] != ZERO else ZERO
        if pv == ONE:
            pv = U(3)
        return (qemu_value & ~U(0xF000000)) | (pv << U(24))
    return qemu_value
