"""The PMU as the board sees it: the model's arena from Python.

The counting itself is native (``vpmu.pmu.hooks`` and the kernels they call, over the flat arena of
``vpmu.pmu.layout``).  This device sets the arena up from the configuration, reads and
replaces the architectural registers for the exit record and the Xen frontend, reports how
the run was counted, and moves the records the native hooks queue (overflows, interrupt
levels, register accesses, samples) into the trace.
"""
from __future__ import annotations

import numpy as np

from .. import errors, native
from ..config import PMU_VERSIONS
from ..pmu import decode, events, regs
from ..pmu import layout as L
from . import memmap as MM
from .env import PmuRegs

NONE64 = L.NONE64
PMSELR_SEL = 0x1F                       # PMSELR_EL0.SEL [4:0]; bits [63:5] RES0


class PmuDevice:
    def __init__(self, cfg, uc, A, N, trace):
        self.cfg, self.uc, self.A, self.N, self.trace = cfg, uc, A, N, trace

    def configure(self, ram_base: int, ram_size: int) -> None:
        """The arena at reset, from the configuration: the PMU, the event catalogue and filter,
        the register tables, the cycle and cache models, the board's RAM and counter frequency."""
        A, cfg = self.A, self.cfg
        p = cfg.pmu
        pmuver = PMU_VERSIONS[p.version]
        A[L.PMU_PRESENT] = 1 if p.present else 0
        A[L.PMUVER] = pmuver
        A[L.NCNT] = p.counters
        A[L.EVMASK] = 0x3FF if pmuver == 1 else 0xFFFF
        A[L.EVCNT64] = 1 if pmuver >= 6 else 0
        A[L.PMU_IRQ] = p.irq
        A[L.PMCR] = regs.PMCR_LC                # reset: LC (RES1), everything else 0
        # records nobody keeps are not asked for (TraceWriter.recording: no --trace file, no keep)
        recording = self.trace.recording
        A[L.TRACE_REGS] = 1 if cfg.trace_pmu_regs and recording else 0
        A[L.INSN_LIMIT] = cfg.max_insns if cfg.max_insns is not None else NONE64
        A[L.DEF_ENABLE] = 1 if cfg.defer else 0
        A[L.EL_STALE] = 1                       # read PSTATE at the first block
        A[L.NEXT_DEADLINE] = NONE64
        A[L.NEXT_SAMPLE] = cfg.trace_sample if cfg.trace_sample and recording else NONE64
        A[L.CNTFRQ] = MM.CNTFRQ
        A[L.TICK_DIV] = MM.TICK_DIV
        A[L.RAM_LO] = ram_base
        A[L.RAM_HI] = ram_base + ram_size
        A[L.HANDLER:L.HANDLER + (1 << 16)] = regs.handler_table()
        A[L.RULE:L.RULE + (1 << 16)] = regs.el0_rule_table()
        for k in native.unimplemented(regs.HANDLER, True):     # the CPU model lacks them
            A[L.RULE + k] |= np.uint64(regs.RULE_NOIMP_READ)
        for k in native.unimplemented(regs.HANDLER, False):
            A[L.RULE + k] |= np.uint64(regs.RULE_NOIMP_WRITE)
        cpu, env = native.cpu_and_env(self.uc)
        lay = native.cpu_layout()
        A[L.CPU_ADDR], A[L.ENV_ADDR] = cpu, env
        A[L.SYN_ADDR], A[L.VADDR_ADDR] = env + lay.syndrome, env + lay.vaddress
        A[L.EV_S:L.EV_S + events.NSLOT] = L.NOCH
        A[L.EV_D:L.EV_D + events.NSLOT] = L.NOCH
        for e in events.CATALOGUE:          # the catalogue drives counting (and PMCEID below)
            sl = events.slot(e.number)
            if sl < 0:
                continue
            if e.static >= 0:
                A[L.EV_S + sl] = e.static
            if e.dynamic >= 0:
                A[L.EV_D + sl] = e.dynamic
            A[L.EV_OK + sl] = 1 if events.implemented_for(e.number, pmuver) else 0
        # event filter (KVM semantics; the bitmap covers the host event space)
        if p.filter_bitmap is not None:
            bits = np.frombuffer(bytes(p.filter_bitmap), dtype=np.uint8).astype(bool)
            full = np.zeros(65536, dtype=bool)
            full[:len(bits)] = bits
            A[L.FILT_ON] = 1
            A[L.FILT:L.FILT + 1024] = np.packbits(full, bitorder="little").view(np.uint64)
        p0, p1 = events.base_pmceid(pmuver)
        A[L.PMCEID0], A[L.PMCEID1] = self._mask_pmceid(p0, p1, pmuver)
        # cycle and cache model (the code cache computes each class's cycles from CYC_*)
        cy, ca = cfg.cycles, cfg.cache
        A[L.CYC_BASE] = cy.base
        for k, kind in enumerate(decode.KIND_NAMES):
            A[L.CYC_EXTRA + k] = getattr(cy, kind, 0) if kind != "other" else 0
        A[L.XLAT_EPOCH] = 1                     # 0 marks a block whose words must be checked
        A[L.PEN_MISPRED], A[L.PEN_L1I], A[L.PEN_L1D], A[L.PEN_WB] = (cy.mispredict, cy.l1i_refill, cy.l1d_refill,
                                                                     cy.l1d_writeback)
        A[L.LINE_SHIFT] = ca.line.bit_length() - 1
        A[L.BP:L.BP + L.BP_N] = 1                  # 2-bit counters start weakly not-taken
        # An explicitly configured cache model (or a refill penalty) simulates from the start;
        # otherwise a model starts (cold) when a counter first counts one of its events.
        A[L.L1I_ACTIVE] = 1 if (ca.enabled or cy.l1i_refill) else 0
        A[L.L1D_ACTIVE] = 1 if (ca.enabled or cy.l1d_refill or cy.l1d_writeback) else 0
        for (sets_o, ways_o, size, ways) in ((L.L1I_SETS, L.L1I_WAYS, ca.l1i_size, ca.l1i_ways),
                                            (L.L1D_SETS, L.L1D_WAYS, ca.l1d_size, ca.l1d_ways)):
            lines = size // ca.line
            if lines > L.CACHE_MAX_LINES or lines % ways:
                raise errors.VpmuError(f"cache model: {size} bytes / {ca.line}-byte lines / {ways} ways "
                                       f"is not supported (at most {L.CACHE_MAX_LINES} lines)", errors.EXIT_USAGE)
            A[sets_o], A[ways_o] = lines // ways, ways
        self._observers(p.counters)
        # the CPU model's values of the ID registers the board patches (vpmu.pmu.registers.id_read)
        for h, name in ((regs.H_ID_AA64DFR0, "ID_AA64DFR0_EL1"), (regs.H_ID_DFR0, "ID_DFR0_EL1"),
                        (regs.H_ID_AA64PFR0, "ID_AA64PFR0_EL1"), (regs.H_ID_PFR1, "ID_PFR1_EL1")):
            A[L.ID_BASE + h - regs.H_ID_FIRST] = self.uc.cpr_read(*regs.fields(regs.BY_NAME[name]))
        self.N.reconfigure()

    def _observers(self, first: int) -> None:
        """vpmu stat's counters (config.Observers) in counters first, first + 1, ...: beyond
        PMCR_EL0.N, so the guest cannot reach them; the kernels count them like event counters
        (registers.reconfigure) but 64 bits wide and without the guest's filter."""
        obs = self.cfg.observe
        if not obs.events:
            return
        if obs.window not in ("enabled", "run"):
            raise errors.VpmuError(f"observer window {obs.window!r} is neither 'enabled' nor 'run'",
                                   errors.EXIT_USAGE)
        if first + len(obs.events) > L.CCNT:
            raise errors.VpmuError(f"{len(obs.events)} observer counters do not fit beside the guest's "
                                   f"{first} (31 in all)", errors.EXIT_USAGE)
        A, mask = self.A, 0
        for i, (event, el0, el1) in enumerate(obs.events):
            c = first + i
            A[L.TYPER + c] = (event & 0xFFFF) | (0 if el0 else regs.TY_U) | (0 if el1 else regs.TY_P)
            A[L.CNT + c] = 0
            mask |= 1 << c
        A[L.OBS_MASK] = mask
        A[L.OBS_ALWAYS] = 1 if obs.window == "run" else 0

    def observed(self) -> list[int]:
        """The observer counters' values, in the order of config.Observers.events."""
        n = len(self.cfg.observe.events)
        first = int(self.A[L.NCNT])
        return [int(self.A[L.CNT + first + i]) for i in range(n)]

    def _mask_pmceid(self, p0: int, p1: int, pmuver: int) -> tuple[int, int]:
        """KVM's PMCEID view: SW_INCR/CHAIN forced on, STALL_SLOT* off, AND the filter."""
        from ..filter import pmceid
        bm = self.cfg.pmu.filter_bitmap
        return pmceid(p0, p1, bytes(bm) if bm is not None else None, pmuver)

    def drain_ring(self) -> None:
        """The records the native hooks queued in the arena's ring, into the trace (discarded
        unread when the trace records nothing: no ``--trace`` file and no ``keep_trace``)."""
        A = self.A
        n = int(A[L.RING_N])
        if not n:
            return
        if not self.trace.recording:
            A[L.RING_N] = 0
            return
        recs = A[L.RING:L.RING + n * L.RING_W].reshape(n, L.RING_W).tolist()
        A[L.RING_N] = 0
        for t, a, b, c, d, e, f, _g in recs:
            if t == L.RT_OVERFLOW:
                self.trace.add({"type": "overflow", "icount": int(c), "counter": int(a), "value": int(b), "pc": int(d)})
            elif t == L.RT_IRQ_LEVEL:
                self.trace.add({"type": "irq_level", "icount": int(c), "intid": int(a), "level": int(b)})
            elif t == L.RT_PMU_REG:
                self.trace.add({"type": "pmu_reg", "icount": int(d), "reg": regs.name(int(a)),
                                "dir": "r" if b else "w", "value": int(c), "pc": int(e)})
            elif t == L.RT_EXCEPTION:
                self.trace.add({"type": "exception", "icount": int(f), "kind": L.EXCEPTION_KINDS[int(a) & 0xFF],
                                "esr": int(b), "elr": int(c), "far": int(d), "from_el": int(a) >> 8,
                                "vector": int(e)})

    def sample(self) -> None:
        """--trace-sample N: every counter at the first block boundary at or after each
        multiple of N retired instructions."""
        A = self.A
        ic = int(A[L.ICOUNT])
        n = int(A[L.NCNT])
        self.trace.add({"type": "sample", "icount": ic, "evcntr": [int(A[L.CNT + i]) for i in range(n)],
                        "pmccntr": int(A[L.CNT + 31]), "pmovsset": int(A[L.OVS])})
        step = self.cfg.trace_sample
        # past --trace-limit (or after the trace file failed) no sample is recorded: stop asking
        # for them (the run's speed returns)
        done = self.trace.truncated or not self.trace.recording
        A[L.NEXT_SAMPLE] = NONE64 if done else (ic // step + 1) * step

    def state(self) -> dict:
        """The architectural PMU registers as a plain dict (RunResult.pmu, the exit record)."""
        A = self.A
        n = int(A[L.NCNT])
        return {"n": n, "pmcr": self.N.pmcr_read(), "pmcntenset": int(A[L.CNTEN]), "pmintenset": int(A[L.INTEN]),
                "pmovsset": int(A[L.OVS]), "pmselr": int(A[L.SELR]) & 31, "pmuserenr": int(A[L.USERENR]),
                "pmccntr": int(A[L.CNT + 31]), "pmccfiltr": int(A[L.TYPER + 31]),
                "evcntr": [int(A[L.CNT + i]) for i in range(n)], "evtyper": [int(A[L.TYPER + i]) for i in range(n)],
                "pmceid0": int(A[L.PMCEID0]), "pmceid1": int(A[L.PMCEID1])}

    def stats(self) -> dict:
        """How the run was counted (not architectural): blocks counted deferred, flushes of
        the deferred tallies, and overflows found while flushing (always 0: a bug otherwise);
        the code cache's blocks classified, checked again, found changed, translation epochs
        and whole-cache flushes."""
        A = self.A
        return {"deferred_blocks": int(A[L.DEF_BLOCKS]), "deferred_flushes": int(A[L.DEF_FLUSHES]),
                "deferred_misses": int(A[L.DEF_MISS]), "blocks_classified": int(A[L.CC_CLASSIFIED]),
                "blocks_checked": int(A[L.CC_CHECKED]), "blocks_changed": int(A[L.CC_CHANGED]),
                "translation_epochs": int(A[L.CC_EPOCHS]), "code_cache_flushes": int(A[L.CC_FLUSHES])}

    def snapshot(self) -> PmuRegs:
        """The architectural registers as the Xen shared page carries them (31 counters)."""
        A = self.A
        n = int(A[L.NCNT])
        return PmuRegs(nr_counters=n, pmcr=self.N.pmcr_read(), pmcntenset=int(A[L.CNTEN]),
                       pmintenset=int(A[L.INTEN]), pmovsset=int(A[L.OVS]), pmselr=int(A[L.SELR]) & 31,
                       pmuserenr=int(A[L.USERENR]), pmccntr=int(A[L.CNT + 31]), pmccfiltr=int(A[L.TYPER + 31]),
                       evcntr=[int(A[L.CNT + i]) if i < n else 0 for i in range(31)],
                       evtyper=[int(A[L.TYPER + i]) if i < n else 0 for i in range(31)])

    def load(self, r: PmuRegs) -> None:
        """Replace the architectural registers (validated by the caller; ``r`` is not changed);
        PMCR.P/C reset the counters as a PMCR write would.  Every value is cut to what its
        register holds: PMSELR_EL0 keeps SEL [4:0] (the rest is RES0), PMCCFILTR and
        PMEVTYPER<n> the type mask the register writes use."""
        A = self.A
        n = int(A[L.NCNT])
        pmcr = r.pmcr & 0xFF
        ccntr = 0 if pmcr & regs.PMCR_C else r.pmccntr & NONE64
        evcntr = [0] * 31 if pmcr & regs.PMCR_P else r.evcntr
        A[L.PMCR] = (pmcr | regs.PMCR_LC) & ~(regs.PMCR_P | regs.PMCR_C) & (0xFF if int(A[L.PMUVER]) >= 6 else 0x7F)
        vm = self.N.valid_mask()
        A[L.CNTEN], A[L.INTEN], A[L.OVS] = r.pmcntenset & vm, r.pmintenset & vm, r.pmovsset & vm
        A[L.SELR], A[L.USERENR] = r.pmselr & PMSELR_SEL, r.pmuserenr & 0xF
        tm = self.N.typer_mask()                # PMCCFILTR as the MSR path stores it (registers.py)
        A[L.CNT + 31], A[L.TYPER + 31] = ccntr, r.pmccfiltr & tm
        wm = NONE64 if int(A[L.EVCNT64]) else 0xFFFFFFFF
        for i in range(n):
            A[L.CNT + i] = evcntr[i] & wm
            A[L.TYPER + i] = r.evtyper[i] & tm
        self.N.reconfigure()
        self.N.irq_update()

    def set_frozen(self, frozen: bool) -> None:
        """While frozen nothing counts and register accesses see the frozen state."""
        self.A[L.FROZEN] = 1 if frozen else 0
        self.N.reconfigure()
        self.N.irq_update()
