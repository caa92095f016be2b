"""What the board offers its frontends and what its devices share.

:class:`GuestEnv` is the interface the Xen frontend (``vpmu.xen``) is written against: the
machine (``vpmu.board.machine``) implements it; unit tests use a small fake.  Keeping the
Xen layer behind this interface means hypercall semantics (errno order, shared-page layout,
event channels) are testable without running a guest, and the same code runs inside the
emulator.  The board never imports the Xen package; the Xen package imports this module
(``vpmu.xen.env`` re-exports it).

:class:`GuestExit` is how a device ends the run on the guest's request (semihosting exit,
PSCI SYSTEM_OFF/RESET/CPU_OFF, a Xen shutdown).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class GuestExit(Exception):
    """The guest asked to stop: the run ends with ``status`` and ``reason`` (the exit record)."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason


class GuestFault(Exception):
    """A guest pointer could not be translated or accessed (-> -EFAULT to the guest)."""


@dataclass
class PmuRegs:
    """Architectural PMU state as the Xen shared page (xen-pmu.md section 5) carries it."""
    nr_counters: int = 0
    pmcr: int = 0
    pmcntenset: int = 0
    pmintenset: int = 0
    pmovsset: int = 0
    pmselr: int = 0
    pmuserenr: int = 0
    pmccntr: int = 0
    pmccfiltr: int = 0
    evcntr: list = field(default_factory=lambda: [0] * 31)
    evtyper: list = field(default_factory=lambda: [0] * 31)


@dataclass
class InterruptedContext:
    """Where the guest was when a PMU overflow interrupt hit (for the sample's ``r``)."""
    pc: int        # preferred return address
    sp: int        # SP_EL0 if EL0 or EL1t, SP_EL1 if EL1h
    pstate: int    # SPSR-format PSTATE
    el: int        # 0 or 1


class GuestEnv(Protocol):
    # --- memory ---------------------------------------------------------------
    def read_virt(self, va: int, size: int) -> bytes:
        """Read guest memory at a virtual address (stage 1 of the current EL).
        Raises GuestFault if any byte is untranslatable or not RAM."""

    def write_virt(self, va: int, data: bytes) -> None:
        """Write guest memory at a virtual address; GuestFault as for read_virt."""

    def read_phys(self, pa: int, size: int) -> bytes:
        """Read guest RAM at an intermediate physical address; GuestFault if not RAM."""

    def write_phys(self, pa: int, data: bytes) -> None:
        """Write guest RAM at an IPA; GuestFault if not RAM."""

    def is_ram(self, pa: int, size: int = 1) -> bool:
        """True if [pa, pa+size) is guest RAM."""

    # --- interrupts and time ----------------------------------------------------
    def set_ppi_level(self, intid: int, level: bool) -> None:
        """Drive a (level-sensitive) PPI of this vCPU's redistributor."""

    def now_ns(self) -> int:
        """Guest time in nanoseconds derived from the cycle model (deterministic)."""

    def set_timer(self, name: str, deadline_ns: int | None) -> None:
        """Arm (or cancel with None) a one-shot host timer; on expiry the machine calls
        the frontend's ``on_timer(name)``.  Deterministic: fires at the first instruction
        boundary at or after ``deadline_ns``."""

    # --- the PMU model ----------------------------------------------------------
    def pmu_snapshot(self) -> PmuRegs:
        """Current architectural PMU registers (counters brought up to date)."""

    def pmu_load(self, regs: PmuRegs) -> None:
        """Replace the architectural PMU registers (already validated by the caller)."""

    def pmu_set_frozen(self, frozen: bool) -> None:
        """While frozen, no counter counts and register accesses see the frozen state."""

    def trace(self, record: dict) -> None:
        """Append a trace record (the machine adds ``icount``)."""


class Frontend(Protocol):
    """What the board calls on a hypervisor frontend (``vpmu.xen.XenFrontend``), beyond
    giving it a :class:`GuestEnv` (docs/xen.md, "Machine interface")."""

    unmask_irqs_on_return: bool     # clear PSTATE.I when the hypercall returns (the board resets it)

    @property
    def blocked(self) -> bool:
        """The current vCPU waits (SCHEDOP_block/poll) for an event."""

    @property
    def shutdown(self) -> tuple[int, str] | None:
        """(exit status, reason) once the guest shut down."""

    def hypercall(self, nr: int, args: list[int]) -> int:
        """HVC #0xEA1: x16 = nr, x0..x4 = args; the value for x0."""

    def on_pmu_overflow(self, ctx: InterruptedContext) -> bool:
        """A rising edge of the PMU interrupt condition; True if the frontend consumed it."""

    def on_timer(self, name: str) -> None:
        """A timer armed through GuestEnv.set_timer expired."""

    def on_sleep(self, sleeping: bool) -> None:
        """The vCPU starts waiting (WFI, a blocking call) or runs again (``timers.Sleeper``):
        timers that run only with the vCPU stop and catch up."""

    def sleep_note(self) -> str:
        """Why a timer stopped while the vCPU waits cannot end the wait ('' if none)."""

    def sync_upcall_line(self) -> None:
        """The guest EOIs or deactivates the event-channel PPI: re-sample its level."""
