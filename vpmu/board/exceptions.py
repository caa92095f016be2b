"""The exception model: what Unicorn leaves out of taking an exception to EL1.

Unicorn hands synchronous exceptions to ``UC_HOOK_INTR`` without performing QEMU's
architectural entry, and interrupts are decided by the native hooks (``PC_IRQ``).  This
module performs the entry (Arm ARM D1.10: SPSR/ELR/ESR/FAR_EL1, SP banking, PSTATE, the
vector), recovers the syndrome Unicorn computed, turns the board's service calls (SMC,
HVC #0, HVC #0xEA1, HLT #0xF000) over to their devices, gives the EL0 traps Unicorn's
translator does not produce their EC 0x18 syndromes, and makes an access to an address
with nothing behind it a synchronous external abort.  Debug exceptions (breakpoint, software
step, watchpoint: the debug unit, ``debug.py``) are told apart by their syndrome.  A
synchronous exception whose vector faults again at once stops the run (``EXIT_FAULT_LOOP``)
instead of looping for ever.
"""
from __future__ import annotations

import ctypes
from typing import Callable, Optional

from unicorn import arm64_const as R
from unicorn import unicorn_const as UC

from .. import errors, native
from ..pmu import channels as C
from ..pmu import layout as L
from ..pmu import regs
from .. import arch as X
from .env import InterruptedContext

class ExceptionModel:
    def __init__(self, uc, A, N, gic, mem, trace, guard, sync: Callable[[], None],
                 smc: Callable[[int], None], hvc: dict[int, Callable[[int], None]],
                 semihosting: Callable[[int], None], debug):
        """``sync()`` brings the counts and the trace up to date before an exception is taken;
        ``smc(pc)``, ``hvc[imm](pc)`` and ``semihosting(pc)`` answer the service calls made
        from EL1 by the instruction at pc (HVC immediates without a handler are UNDEFINED);
        ``debug`` is the debug unit (whether software step is active)."""
        self.uc, self.A, self.N, self.gic, self.mem, self.trace, self.guard = uc, A, N, gic, mem, trace, guard
        self.sync = sync
        self.smc, self.hvc, self.semihosting = smc, hvc, semihosting
        self.debug = debug
        self.fault: Optional[tuple] = None       # (access, address, size) of an access to nothing
        lay = native.cpu_layout()
        env = native.cpu_and_env(uc)[1]
        self._syndrome_addr, self._vaddress_addr = env + lay.syndrome, env + lay.vaddress

    # ---- CPU state ------------------------------------------------------------------------------
    def pstate(self) -> int:
        return self.uc.reg_read(R.UC_ARM64_REG_PSTATE)

    def current_el(self) -> int:
        return (self.pstate() >> X.PSTATE_EL_SHIFT) & 3

    def interrupted_context(self, pc: int) -> InterruptedContext:
        ps = self.pstate()
        el = (ps >> X.PSTATE_EL_SHIFT) & 3
        return InterruptedContext(pc=pc, sp=self.uc.reg_read(R.UC_ARM64_REG_SP), pstate=ps, el=el)

    def _syndrome(self) -> tuple[int, int]:
        """The syndrome and fault address QEMU computed for the exception being taken (Unicorn
        hands it to UC_HOOK_INTR without the architectural entry), from its CPU state."""
        return (ctypes.c_uint32.from_address(self._syndrome_addr).value,
                ctypes.c_uint64.from_address(self._vaddress_addr).value)

    # ---- taking an exception ----------------------------------------------------------------------
    def _enter(self, kind: str, vec_off: int, esr: Optional[int], elr: int, far: Optional[int]) -> int:
        """Architectural exception entry to EL1 (Arm ARM D1.10): SPSR_EL1, ELR_EL1,
        ESR_EL1/FAR_EL1 (synchronous), SP_EL1, PSTATE = EL1h with DAIF masked,
        PC = VBAR_EL1 + offset for (current EL with SP0 / SPx, lower EL AArch64)."""
        uc = self.uc
        ps = self.pstate()
        el = (ps >> X.PSTATE_EL_SHIFT) & 3
        spsel = ps & X.PSTATE_SP
        base = X.VEC_LOWER_A64 if el == 0 else (X.VEC_CUR_SPX if spsel else X.VEC_CUR_SP0)
        vbar = uc.reg_read(R.UC_ARM64_REG_VBAR_EL1)
        vector = (vbar & ~X.VBAR_ALIGN) + base + vec_off
        # SP banking: save the live SP to its bank, make SP_EL1 live
        sp = uc.reg_read(R.UC_ARM64_REG_SP)
        if el == 0 or not spsel:
            uc.reg_write(R.UC_ARM64_REG_SP_EL0, sp)
            uc.reg_write(R.UC_ARM64_REG_SP, uc.reg_read(R.UC_ARM64_REG_SP_EL1))
        uc.reg_write(R.UC_ARM64_REG_ELR_EL1, elr)
        if esr is not None:
            uc.reg_write(R.UC_ARM64_REG_ESR_EL1, esr)
        if far is not None:
            uc.reg_write(R.UC_ARM64_REG_FAR_EL1, far)
        uc.reg_write(R.UC_ARM64_REG_PSTATE, (1 << X.PSTATE_EL_SHIFT) | X.PSTATE_SP | X.PSTATE_DAIF)
        uc.cpr_write(*X.SPSR_EL1, ps)          # a CP_REG write also rebuilds hflags
        uc.reg_write(R.UC_ARM64_REG_PC, vector)
        # EXC_TAKEN is attributed to the exception level the exception was taken from
        self.A[L.CUR_EL] = el
        self.N.dyn_event(C.D_EXC_TAKEN, 1, elr, int(self.A[L.ICOUNT]))
        self.A[L.CUR_EL] = 1
        self.A[L.EL_NOW] = 1
        return vector

    def take_irq(self, pc: int) -> None:
        """The native hooks found an interrupt deliverable before the instruction at pc."""
        intid = self.gic.deliverable()
        el = self.current_el()
        self._enter("irq", X.VEC_IRQ, None, pc, None)
        self.trace.add({"type": "irq", "icount": int(self.A[L.ICOUNT]), "intid": intid if intid is not None else -1,
                        "pc": pc, "from_el": el})
        self.A[L.LAST_VEC] = 0

    def take_sync(self, kind: str, esr: int, elr: int, far: Optional[int], fault_pc: Optional[int] = None) -> None:
        el = self.current_el()
        fpc = elr if fault_pc is None else fault_pc
        A = self.A
        if int(A[L.LAST_VEC]) == fpc + 1 and int(A[L.LAST_VEC_IC]) == int(A[L.ICOUNT]):
            raise errors.GuestStop(f"recursive {kind} exception at the vector {fpc:#x}: no usable vector table "
                                   f"(VBAR_EL1 = {self.uc.reg_read(R.UC_ARM64_REG_VBAR_EL1):#x})",
                                   errors.EXIT_FAULT_LOOP)
        vector = self._enter(kind, X.VEC_SYNC, esr, elr, far)
        A[L.LAST_VEC], A[L.LAST_VEC_IC] = vector + 1, A[L.ICOUNT]
        self.trace.add({"type": "exception", "icount": int(self.A[L.ICOUNT]), "kind": kind, "esr": esr, "elr": elr,
                        "far": far if far is not None else 0, "from_el": el, "vector": vector})

    def on_intr(self, uc, intno, _ud):
        try:
            self.sync()
            self._handle_intr(intno)
            # Restart emu_start at the PC the handler wrote.  Without this, Unicorn 2.1.4
            # resumes in a state where a data abort on a store in the next block reports the
            # PC of that block's start instead of the store (tests/test_board.py).
            if int(self.A[L.STOP_REASON]) == L.SR_NONE:
                self.A[L.STOP_REASON] = L.SR_RESTART
            uc.emu_stop()
        except BaseException as e:
            self.guard.fail(e)

    def _handle_intr(self, intno: int) -> None:
        uc = self.uc
        pc = uc.reg_read(R.UC_ARM64_REG_PC)
        syn, vaddr = self._syndrome()
        el = self.current_el()
        ec = syn >> X.EC_SHIFT
        if intno == X.EXCP_SWI:                     # SVC: PC is already the preferred return address
            self.N.end_block_at(pc - 4, True)
            self.take_sync("svc", syn, pc, None, pc - 4)
            return
        if intno == X.EXCP_SMC:                     # SMC: PSCI/SMCCC conduit (PC = next)
            if el == 0:                           # UNDEFINED at EL0 (Arm ARM C6.2.235)
                self.N.end_block_at(pc - 4, False)
                self.take_sync("undef", X.ESR_UNKNOWN, pc - 4, None)
                return
            self.N.end_block_at(pc - 4, True)
            self.smc(pc - 4)
            return
        if intno == X.EXCP_UDEF and ec in (X.EC_SOFTSTEP_LOW, X.EC_SOFTSTEP_CUR):
            # QEMU's software step: its one-instruction block completed (ISV = 1, pc is where
            # it went) or none ran (ISV = 0, active-pending)
            self.N.finish_block(pc)
            self.take_sync("software_step", syn, pc, None)
            return
        word = self.mem.insn_word(pc)
        # HVC is UNDEFINED at EL0, and semihosting from EL0 is off (as QEMU's default)
        if intno == X.EXCP_UDEF and word is not None and el >= 1:
            if (word & X.HVC_MASK) == X.HVC:             # HVC #imm (no EL2 in QEMU: UNDEFINED)
                call = self.hvc.get(X.hvc_imm(word))
                if call is not None:
                    self.N.end_block_at(pc, True)
                    call(pc)
                    self.debug.service_call_completed()
                    return
            if word == X.HLT_SEMIHOSTING:
                self.N.end_block_at(pc, True)
                self.semihosting(pc)
                return
        self.N.end_block_at(pc, False)
        if intno == X.EXCP_BKPT:
            self.take_sync("brk", syn, pc, None)
        elif intno == X.EXCP_UDEF:
            trap = self._daif_trap(word) if el == 0 and ec == X.EC_UNKNOWN else None
            if trap is not None:
                self.take_sync("sysreg_trap", trap, pc, None)
                return
            if ec == X.EC_UNKNOWN or ec == X.EC_HVC64:
                syn = X.ESR_UNKNOWN
            self.take_sync("sysreg_trap" if syn >> X.EC_SHIFT == X.EC_SYSREG else "undef", syn, pc, None)
        elif intno == X.EXCP_DATA_ABORT and ec in (X.EC_WATCHPOINT_LOW, X.EC_WATCHPOINT_CUR):
            self.take_sync("watchpoint", syn, pc, vaddr)             # set by the watch hook
        elif intno == X.EXCP_PREFETCH_ABORT and ec in (X.EC_BREAKPOINT_LOW, X.EC_BREAKPOINT_CUR):
            self.take_sync("breakpoint", syn, pc, vaddr)        # QEMU's breakpoints: FAR 0
        elif intno in (X.EXCP_DATA_ABORT, X.EXCP_PREFETCH_ABORT):
            self.take_sync("data_abort" if intno == X.EXCP_DATA_ABORT else "prefetch_abort", syn, pc, vaddr)
        else:
            self.take_sync(f"exception{intno}", syn if syn else X.ESR_UNKNOWN, pc, None)

    # ---- EL0 traps Unicorn's translator makes UNDEFINED --------------------------------------------
    def _daif_trap(self, word: Optional[int]) -> Optional[int]:
        """MSR DAIFSet/DAIFClr at EL0 with SCTLR_EL1.UMA = 0 traps with EC 0x18 (Arm ARM:
        Op0 = 0, Op1 = 3, Op2 = 6/7, CRn = 4, CRm = the immediate, Rt = 31).  Unicorn's
        translator makes it UNDEFINED; QEMU 7.2 traps it with Op1 and Op2 swapped."""
        if word is None or (word & X.MSR_DAIF_MASK) != X.MSR_DAIF:
            return None
        _l, op0, op1, crn, crm, op2, rt = regs.insn_fields(word)
        if op2 not in (X.DAIFSET_OP2, X.DAIFCLR_OP2) or self.uc.cpr_read(*X.SCTLR_EL1) & X.SCTLR_UMA:
            return None
        return X.sysreg_iss(op0, op1, crn, crm, op2, rt, False)

    # ---- accesses to nothing ----------------------------------------------------------------------
    def on_unmapped(self, uc, access, addr, size, value, _ud):
        """UC_HOOK_MEM_UNMAPPED: remember the access; emu_start then fails and the run loop
        calls :meth:`deliver_unmapped`."""
        self.fault = (access, addr, size)
        return False

    def deliver_unmapped(self, pc: int) -> None:
        """An access to an address with nothing behind it: a synchronous external abort
        (DFSC/IFSC 0b010000), as QEMU's virt raises for unassigned addresses."""
        assert self.fault is not None
        access, addr, size = self.fault
        self.fault = None
        el = self.current_el()
        mmu = self.mem.mmu_on()
        if access == UC.UC_MEM_FETCH_UNMAPPED:
            self.N.end_block_at(pc, False)
            ec = X.EC_IABT_LOW if el == 0 else X.EC_IABT_CUR
            iss = X.FSC_SEA | (X.ISS_FNV if mmu else 0)       # FnV when the VA is not known (MMU on)
            self.take_sync("prefetch_abort", (ec << X.EC_SHIFT) | X.IL | iss, pc, None if mmu else pc)
            return
        self.N.end_block_at(pc, False)
        ec = X.EC_DABT_LOW if el == 0 else X.EC_DABT_CUR
        wnr = X.ISS_WNR if access == UC.UC_MEM_WRITE_UNMAPPED else 0
        iss = X.FSC_SEA | wnr | (X.ISS_FNV if mmu else 0)
        self.take_sync("data_abort", (ec << X.EC_SHIFT) | X.IL | iss, pc, None if mmu else addr)
