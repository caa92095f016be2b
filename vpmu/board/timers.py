"""Time on the board: the generic timers, one-shot timers for the board's services, and WFI.

Guest time is the cycle model's: ``CYCLES + IDLE`` cycles at ``memmap.CPU_HZ``; the
system counter ticks every ``memmap.TICK_DIV`` cycles (CNTFRQ as QEMU's virt).  The EL1
physical and virtual timers are level-sensitive PPIs whose output is
``ENABLE && !IMASK && CNT >= CVAL`` (Arm ARM D11.2.4).  Their registers live in the arena
(the native kernels read them); a write that Python owns (CTL, CVAL, TVAL) or a deadline
passing re-evaluates the outputs here.  One-shot timers (a Xen vCPU timer, the PV-time
stolen-time tick) fire at the first instruction boundary at or after their deadline.  The
earliest deadline of all goes to the arena (``NEXT_DEADLINE``), which the native hooks
watch.

WFI (and a blocked Xen vCPU) skips time ahead to the next deadline: the wait is
deterministic, and CPU_CYCLES does not count it.  While the vCPU waits it is not running:
the devices registered with :meth:`Timers.add_sleeper` pause what runs only with it (the
PV-time stolen-time tick, Xen's periodic vCPU timers) and pick it up when the wait ends.
So no timer re-arms itself during a wait, and every wait ends after a bounded number of
deadlines: with an interrupt, or with ``EXIT_DEADLOCK`` when no deadline is left.

Guest time ends at ``TIME_END`` = 2**63 cycles (2**63 ns, about 292 years; Xen's
``s_time_t`` ends there too): a deadline at or beyond it never comes, so time never wraps
the 64-bit arena words and the counter never goes backwards.  A WFI that only such a
deadline could end stops the run (``EXIT_DEADLOCK``, the message says which timer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from .. import errors
from ..pmu import layout as L
from ..pmu import regs
from . import memmap as MM

NONE64 = L.NONE64
NS_PER_S = 1_000_000_000
TIME_END = 1 << 63                            # guest time (cycles) ends here; see the module docstring
WAIT_EVENTS_MAX = 1 << 16                     # deadlines one wait may pass: far more than there are timers
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


class Sleeper(Protocol):
    """A device with timers that run only while the vCPU runs (see the module docstring)."""

    def on_sleep(self, sleeping: bool) -> None:
        """The vCPU starts waiting (True: pause) or runs again (False: resume, catch up)."""

    def sleep_note(self) -> str:
        """Why a paused timer of this device cannot end the wait ('' if it has none)."""


class Timers:
    def __init__(self, cfg, A, gic, trace, on_expiry: Callable[[str], None]):
        """``on_expiry(name)`` is called for an expired one-shot timer armed without its own
        ``fire`` (a frontend's timers, GuestEnv.set_timer)."""
        self.cfg, self.A, self.gic, self.trace = cfg, A, gic, trace
        self.on_expiry = on_expiry
        self._levels = {"vtimer": False, "ptimer": False}     # output level of each generic timer
        self._one_shot: dict[str, _OneShot] = {}
        self._sleepers: list[Sleeper] = []

    def add_sleeper(self, s: Sleeper) -> None:
        self._sleepers.append(s)

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
            if enabled and cnt < cval and cval * MM.TICK_DIV < TIME_END:
                deadline = min(deadline, cval * MM.TICK_DIV)
            ppi = self.cfg.timer_ppis[name]
            if level != self._levels[name]:
                self._levels[name] = level
                self.trace.add({"type": "timer", "icount": int(A[L.ICOUNT]), "timer": name, "level": int(level)})
                self.gic.set_level(ppi, level)
        for t in self._one_shot.values():
            if t.at < TIME_END:
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
    def set_timer(self, name: str, deadline_ns: Optional[int], fire: Optional[Callable[[str], None]] = None) -> None:
        """Arm (or cancel, with None) the one-shot timer ``name``: at the first instruction
        boundary at or after deadline_ns it is disarmed and ``fire(name)`` called (default:
        the frontend's ``on_expiry``).  A deadline at or after TIME_END never comes."""
        if deadline_ns is None:
            self._one_shot.pop(name, None)
        else:
            self._one_shot[name] = _OneShot(deadline_ns * MM.CPU_HZ // NS_PER_S, fire or self.on_expiry)
        self.update()

    def deadline_ns(self, name: str) -> Optional[int]:
        """When the one-shot timer ``name`` is due (None: not armed)."""
        t = self._one_shot.get(name)
        return None if t is None else -(-t.at * NS_PER_S // MM.CPU_HZ)

    def on_event(self) -> None:
        """A deadline has passed (the native hooks stopped at it, or a wait skipped to it):
        the generic timers' outputs, then every one-shot timer due, earliest first, each
        taken from the live table when its turn comes: a callback may cancel or re-arm
        another timer (which then fires only if still due), and a timer re-armed while this
        pass runs fires at the next event, not again in this one."""
        self.update()
        now = self.now_cycles()
        fired: set[str] = set()
        while True:
            due = [(t.at, name) for name, t in self._one_shot.items() if t.at <= now and name not in fired]
            if not due:
                break
            _at, name = min(due)
            t = self._one_shot.pop(name)
            fired.add(name)
            t.fire(name)
        self.update()

    # ---- waiting ----------------------------------------------------------------------------------
    def wait_for_interrupt(self, pc: int, what: str, woken: Callable[[], bool] = lambda: False) -> None:
        """WFI semantics: return at once if an interrupt is pending (even if PSTATE.I masks it),
        else skip time ahead from deadline to deadline until one brings an interrupt; no
        deadline left = it can never wake (EXIT_DEADLOCK).  `woken()` may end the wait without
        an interrupt (Xen SCHEDOP_poll timeouts).  The sleepers pause while the vCPU waits."""
        A = self.A
        if int(A[L.IRQ_CAND]) or woken():
            return
        idle0 = int(A[L.IDLE])
        for s in self._sleepers:
            s.on_sleep(True)
        events = 0
        while not int(A[L.IRQ_CAND]) and not woken():
            dl = int(A[L.NEXT_DEADLINE])
            if dl == NONE64:
                raise errors.GuestStop(self._no_wake_reason(pc, what), errors.EXIT_DEADLOCK)
            events += 1
            if events > WAIT_EVENTS_MAX:     # no timer re-arms itself during a wait: a bug if it does
                raise errors.VpmuError(f"{what} at PC {pc:#x}: more than {WAIT_EVENTS_MAX} timer deadlines "
                                       f"passed in one wait")
            now = self.now_cycles()
            if dl > now:
                A[L.IDLE] += dl - now                # skip ahead to the next timer deadline
            self.on_event()
        for s in self._sleepers:
            s.on_sleep(False)
        self.trace.add({"type": "wfi", "icount": int(A[L.ICOUNT]), "pc": pc, "idle_cycles": int(A[L.IDLE]) - idle0})

    def _no_wake_reason(self, pc: int, what: str) -> str:
        """The one-line reason of a wait nothing can end."""
        silent = self._silent_timers()
        if silent:
            return f"{what} at PC {pc:#x}: {silent}"
        notes = [n for n in (s.sleep_note() for s in self._sleepers) if n] + self._beyond_the_end()
        head = f"{what} at PC {pc:#x} with no interrupt that could ever arrive"
        return f"{head}: {'; '.join(notes)}" if notes else f"{head} (no pending interrupt and no enabled timer)"

    def _beyond_the_end(self) -> list[str]:
        """Armed timers whose deadline lies at or after the end of guest time."""
        out = []
        for _name, what, reg, ctl_o, cval_o in GENERIC:
            cval = int(self.A[cval_o])
            if int(self.A[ctl_o]) & CTL_ENABLE and cval * MM.TICK_DIV >= TIME_END:
                out.append(f"the {what} timer's {reg.replace('CTL', 'CVAL')} = {cval:#x} lies beyond the end of "
                           f"guest time (2**63 ns, about 292 years)")
        for name, t in sorted(self._one_shot.items()):
            if t.at >= TIME_END:
                out.append(f"timer {name} is due beyond the end of guest time (2**63 ns, about 292 years)")
        return out

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
