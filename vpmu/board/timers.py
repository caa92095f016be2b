"""Time on the board: the generic timers, one-shot timers for the board's services, and WFI.

Guest time is the cycle model's: ``CYCLES + IDLE`` cycles at ``memmap.CPU_HZ``; the
system counter ticks every ``memmap.TICK_DIV`` cycles (CNTFRQ as QEMU's virt).  The EL1
physical and virtual timers are level-sensitive PPIs whose output is
``ENABLE && !IMASK && CNT >= CVAL`` (Arm ARM D11.2.4).  Their registers live in the arena
(the native kernels read them); a write that Python owns (CTL, CVAL, TVAL) or a deadline
passing re-evaluates the outputs here.  One-shot timers (a Xen vCPU timer, the PV-time
stolen-time tick) fire at the first instruction boundary at or after their deadline.  The
earliest deadline of all goes to the arena (``NEXT_DEADLINE``), which the native hooks
watch.  WFI (and a blocked Xen vCPU) skips time ahead to the next deadline: the wait is
deterministic, and CPU_CYCLES does not count it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .. import errors
from ..pmu import layout as L
from ..pmu import regs
from . import memmap as MM

NONE64 = L.NONE64
NS_PER_S = 1_000_000_000
CTL_ENABLE, CTL_IMASK = 1, 2                  # CNT{P,V}_CTL_EL0 (ISTATUS is computed on read)
CTL_WRITABLE = CTL_ENABLE | CTL_IMASK

# the EL1 generic timers: (timer, its name in messages, CTL register, arena CTL and CVAL words);
# `timer` keys MachineConfig.timer_ppis and the trace's timer records
GENERIC = (("vtimer", "virtual", "CNTV_CTL_EL0", L.CNTV_CTL, L.CNTV_CVAL),
           ("ptimer", "physical", "CNTP_CTL_EL0", L.CNTP_CTL, L.CNTP_CVAL))
# Python-owned timer register writes: handler -> (arena word, what is written)
_CTL, _CVAL, _TVAL = 0, 1, 2
_WRITES = {regs.H_CNTP_CTL: (L.CNTP_CTL, _CTL), regs.H_CNTV_CTL: (L.CNTV_CTL, _CTL),
           regs.H_CNTP_CVAL: (L.CNTP_CVAL, _CVAL), regs.H_CNTV_CVAL: (L.CNTV_CVAL, _CVAL),
           regs.H_CNTP_TVAL: (L.CNTP_CVAL, _TVAL), regs.H_CNTV_TVAL: (L.CNTV_CVAL, _TVAL)}


@dataclass
class _OneShot:
    at: int                                   # deadline in cycles
    fire: Callable[[str], None]
    wakes: bool                               # can end a WFI (the PV-time tick cannot)


class Timers:
    def __init__(self, cfg, A, gic, trace, on_expiry: Callable[[str], None]):
        """``on_expiry(name)`` is called for an expired one-shot timer armed without its own
        ``fire`` (a frontend's timers, GuestEnv.set_timer)."""
        self.cfg, self.A, self.gic, self.trace = cfg, A, gic, trace
        self.on_expiry = on_expiry
        self._levels = {"vtimer": False, "ptimer": False}     # output level of each generic timer
        self._one_shot: dict[str, _OneShot] = {}

    # ---- time ---------------------------------------------------------------------------------
    def now_cycles(self) -> int:
        return int(self.A[L.CYCLES]) + int(self.A[L.IDLE])

    def now_ns(self) -> int:
        return self.now_cycles() * NS_PER_S // MM.CPU_HZ

    def _count(self) -> int:
        """The system counter (CNTPCT = CNTVCT: CNTVOFF is 0)."""
        return self.now_cycles() // MM.TICK_DIV

    # ---- generic timers -----------------------------------------------------------------------
    def update(self) -> None:
        """Timer output levels from CTL/CVAL and the current time; next deadline."""
        A = self.A
        cnt = self._count()
        deadline = NONE64
        for name, _what, _reg, ctl_o, cval_o in GENERIC:
            ctl, cval = int(A[ctl_o]), int(A[cval_o])
            enabled = ctl & CTL_ENABLE
            level = bool(enabled and not (ctl & CTL_IMASK) and cnt >= cval)
            if enabled and cnt < cval:
                deadline = min(deadline, cval * MM.TICK_DIV)
            ppi = self.cfg.timer_ppis[name]
            if level != self._levels[name]:
                self._levels[name] = level
                self.trace.add({"type": "timer", "icount": int(A[L.ICOUNT]), "timer": name, "level": int(level)})
                self.gic.set_level(ppi, level)
        for t in self._one_shot.values():
            deadline = min(deadline, t.at)
        A[L.NEXT_DEADLINE] = deadline

    def write_sysreg(self, h: int, val: int) -> bool:
        """A guest write of a timer register Python owns (handler ``h``); False if not one."""
        if h not in _WRITES:
            return False
        word, what = _WRITES[h]
        if what == _CTL:
            self.A[word] = val & CTL_WRITABLE
        elif what == _CVAL:
            self.A[word] = val
        else:   # TVAL: CVAL = CNT + SignExtend(TVAL[31:0])
            tv = val & 0xFFFFFFFF
            if tv & 0x80000000:
                tv -= 1 << 32
            self.A[word] = (self._count() + tv) & NONE64
        self.update()
        return True

    # ---- one-shot timers ------------------------------------------------------------------------
    def set_timer(self, name: str, deadline_ns: Optional[int], fire: Optional[Callable[[str], None]] = None,
                  wakes: bool = True) -> None:
        """Arm (or cancel, with None) the one-shot timer ``name``: at the first instruction
        boundary at or after deadline_ns it is disarmed and ``fire(name)`` called (default:
        the frontend's ``on_expiry``).  ``wakes``: whether it can end a WFI."""
        if deadline_ns is None:
            self._one_shot.pop(name, None)
        else:
            self._one_shot[name] = _OneShot(deadline_ns * MM.CPU_HZ // NS_PER_S, fire or self.on_expiry, wakes)
        self.update()

    def on_event(self) -> None:
        """A deadline has passed (the native hooks stopped at it, or a wait skipped to it)."""
        self.update()
        now = self.now_cycles()
        for name, t in sorted(self._one_shot.items(), key=lambda kv: (kv[1].at, kv[0])):
            if now >= t.at:
                del self._one_shot[name]
                t.fire(name)
        self.update()

    # ---- waiting ----------------------------------------------------------------------------------
    def wait_for_interrupt(self, pc: int, what: str, woken: Callable[[], bool] = lambda: False) -> None:
        """WFI semantics: return at once if an interrupt is pending (even if PSTATE.I masks it),
        else skip time ahead to the next timer deadline; no deadline = it can never wake.
        `woken()` may end the wait without an interrupt (Xen SCHEDOP_poll timeouts)."""
        A = self.A
        if int(A[L.IRQ_CAND]) or woken():
            return
        idle0 = int(A[L.IDLE])
        while not int(A[L.IRQ_CAND]) and not woken():
            dl = int(A[L.NEXT_DEADLINE])
            # the PV-time tick re-arms itself for ever: it advances time but wakes nobody
            if dl == NONE64 or not self._wakers():
                silent = self._silent_timers()
                if silent:
                    raise errors.GuestStop(f"{what} at PC {pc:#x}: {silent}", errors.EXIT_DEADLOCK)
                raise errors.GuestStop(f"{what} at PC {pc:#x} with no interrupt that could ever arrive "
                                       f"(no pending interrupt and no enabled timer)", errors.EXIT_DEADLOCK)
            now = self.now_cycles()
            if dl > now:
                A[L.IDLE] += dl - now                # skip ahead to the next timer deadline
            self.on_event()
        self.trace.add({"type": "wfi", "icount": int(A[L.ICOUNT]), "pc": pc, "idle_cycles": int(A[L.IDLE]) - idle0})

    def _wakers(self) -> bool:
        """Is a timer armed that could end a wait (a generic timer counting towards its
        compare value, or a one-shot timer that wakes)?"""
        cnt = self._count()
        for _name, _what, _reg, ctl_o, cval_o in GENERIC:
            if int(self.A[ctl_o]) & CTL_ENABLE and cnt < int(self.A[cval_o]):
                return True
        return any(t.wakes for t in self._one_shot.values())

    def _silent_timers(self) -> str:
        """Why a timer whose condition is met cannot interrupt ('' if none)."""
        cnt = self._count()
        for name, what, reg, ctl_o, cval_o in GENERIC:
            ctl = int(self.A[ctl_o])
            if ctl & CTL_ENABLE and cnt >= int(self.A[cval_o]):
                if ctl & CTL_IMASK:
                    return f"the {what} timer fired but {reg}.IMASK masks its interrupt"
                ppi = self.cfg.timer_ppis[name]
                return f"the {what} timer fired but its interrupt (PPI {ppi}) is disabled or masked in the GIC"
        return ""
