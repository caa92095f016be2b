"""PSCI 1.1, SMCCC 1.1 and PV time (stolen time) over SMC and HVC #0 from EL1.

The function id is w0, the first argument x1, the result goes to x0 (Arm DEN0028 SMCCC;
an unknown id answers NOT_SUPPORTED).  One CPU: CPU_ON is NOT_SUPPORTED, AFFINITY_INFO
says CPU 0 is ON; SYSTEM_OFF, SYSTEM_RESET and CPU_OFF end the run.  PV time (Arm DEN0057A)
is offered only when the VM description set KVM_ARM_VCPU_PVTIME_IPA; stolen time is
deterministic (see :meth:`Smccc._pv_time_st`).
"""
from __future__ import annotations

import struct
from typing import Callable

from unicorn import arm64_const as R

from ..pmu import layout as L
from .. import arch as X
from . import memmap as MM
from .env import GuestExit

# function ids (SMC32/HVC32 and SMC64/HVC64 calling conventions)
PSCI_VERSION = 0x84000000
PSCI_CPU_OFF = 0x84000002
PSCI_CPU_ON32, PSCI_CPU_ON64 = 0x84000003, 0xC4000003
PSCI_AFFINITY_INFO32, PSCI_AFFINITY_INFO64 = 0x84000004, 0xC4000004
PSCI_MIGRATE_INFO_TYPE = 0x84000006
PSCI_SYSTEM_OFF = 0x84000008
PSCI_SYSTEM_RESET = 0x84000009
PSCI_FEATURES = 0x8400000A
SMCCC_VERSION, SMCCC_ARCH_FEATURES = 0x80000000, 0x80000001
PV_TIME_FEATURES, PV_TIME_ST = 0xC5000020, 0xC5000021

NOT_SUPPORTED = (1 << 64) - 1            # SMCCC / PSCI -1
INVALID_PARAMETERS = (1 << 64) - 2       # PSCI -2
SUCCESS = 0
VERSION_1_1 = 0x10001                    # PSCI 1.1 / SMCCC 1.1: major << 16 | minor
AFFINITY_ON = 0
MIGRATE_TOS_NOT_PRESENT = 2              # MIGRATE_INFO_TYPE: no trusted OS to migrate
# what PSCI_FEATURES reports as implemented
PSCI_FEATURES_IMPLEMENTED = frozenset((PSCI_VERSION, PSCI_CPU_OFF, PSCI_CPU_ON64, PSCI_CPU_ON32,
                                       PSCI_AFFINITY_INFO64, PSCI_AFFINITY_INFO32, PSCI_SYSTEM_OFF,
                                       PSCI_SYSTEM_RESET, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE, SMCCC_VERSION))

PV_TIMER = "pvtime"                      # the one-shot timer of the stolen-time tick
PV_RECORD_SIZE = 64                      # struct pvclock_vcpu_stolen_time
PV_TICK_NS = 1_000_000                   # stolen time accrues every millisecond of guest time


class Smccc:
    def __init__(self, cfg, uc, A, mem, timers, trace):
        self.cfg, self.uc, self.A, self.mem, self.timers, self.trace = cfg, uc, A, mem, timers, trace
        self._pv_stolen = 0
        # function id -> handler(x1) -> the value for x0
        self._calls: dict[int, Callable[[int], int]] = {
            PSCI_VERSION: lambda _a1: VERSION_1_1,
            PSCI_FEATURES: self._psci_features,
            PSCI_SYSTEM_OFF: self._system_off,
            PSCI_SYSTEM_RESET: self._system_reset,
            PSCI_CPU_OFF: self._cpu_off,
            PSCI_CPU_ON64: lambda _a1: NOT_SUPPORTED,       # one CPU on this board
            PSCI_CPU_ON32: lambda _a1: NOT_SUPPORTED,
            PSCI_AFFINITY_INFO64: self._affinity_info,
            PSCI_AFFINITY_INFO32: self._affinity_info,
            PSCI_MIGRATE_INFO_TYPE: lambda _a1: MIGRATE_TOS_NOT_PRESENT,
            SMCCC_VERSION: lambda _a1: VERSION_1_1,
            SMCCC_ARCH_FEATURES: self._arch_features,
            PV_TIME_FEATURES: lambda a1: self._pv_time_features(a1 & 0xFFFFFFFF),
            PV_TIME_ST: lambda _a1: self._pv_time_st(),
        }

    def call(self, pc: int, conduit: str) -> None:
        """The SMC or HVC #0 (``conduit``) at pc: answer it, return to the next instruction."""
        uc = self.uc
        fid = uc.reg_read(R.UC_ARM64_REG_X0) & 0xFFFFFFFF
        a1 = uc.reg_read(R.UC_ARM64_REG_X1)
        handler = self._calls.get(fid)
        ret = handler(a1) if handler is not None else NOT_SUPPORTED
        uc.reg_write(R.UC_ARM64_REG_X0, ret)
        uc.reg_write(R.UC_ARM64_REG_PC, pc + X.INSN_SIZE)

    # ---- PSCI ---------------------------------------------------------------------------------------
    def _psci_features(self, a1: int) -> int:
        return SUCCESS if (a1 & 0xFFFFFFFF) in PSCI_FEATURES_IMPLEMENTED else NOT_SUPPORTED

    def _system_off(self, _a1: int) -> int:
        self.trace.add({"type": "psci", "icount": int(self.A[L.ICOUNT]), "function": "SYSTEM_OFF", "result": 0})
        raise GuestExit(0, "system_off")

    def _system_reset(self, _a1: int) -> int:
        self.trace.add({"type": "psci", "icount": int(self.A[L.ICOUNT]), "function": "SYSTEM_RESET", "result": 0})
        raise GuestExit(0, "reset")

    def _cpu_off(self, _a1: int) -> int:
        raise GuestExit(0, "cpu_off")

    def _affinity_info(self, a1: int) -> int:
        """ON for CPU 0 (affinity levels 0..2 of x1), else INVALID_PARAMETERS."""
        return AFFINITY_ON if (a1 & 0xFFFFFF) == 0 else INVALID_PARAMETERS

    # ---- SMCCC --------------------------------------------------------------------------------------
    def _arch_features(self, a1: int) -> int:
        """SMCCC_ARCH_FEATURES: only PV_TIME_FEATURES, and only with PV time."""
        return SUCCESS if (a1 & 0xFFFFFFFF) == PV_TIME_FEATURES and self.cfg.pvtime_ipa is not None \
            else NOT_SUPPORTED

    # ---- PV time ------------------------------------------------------------------------------------
    def _pv_time_features(self, fid: int) -> int:
        if self.cfg.pvtime_ipa is None:
            return NOT_SUPPORTED
        return SUCCESS if fid in (PV_TIME_FEATURES, PV_TIME_ST) else NOT_SUPPORTED

    def _pv_time_st(self) -> int:
        """PV_TIME_ST: (re)write the 64-byte stolen-time record (revision 0, attributes 0,
        stolen ns = 0) and return its IPA; stolen time restarts from this point (kvm-pmu.md 1.9).

        Stolen time is deterministic: every millisecond of guest time the host "preempts" the
        vCPU for cfg.stolen_ns_per_ms ns.  Guest time (the generic timer) moves on by that
        much, CPU_CYCLES does not (the vCPU did not run), and the record is rewritten, as
        KVM does when it schedules the vCPU back in."""
        ipa = self.cfg.pvtime_ipa
        if ipa is None:
            return NOT_SUPPORTED
        self._pv_stolen = 0
        self._pv_write()
        if self.cfg.stolen_ns_per_ms:
            self._pv_arm()
        return ipa

    def _pv_arm(self) -> None:
        """The next tick, one millisecond of guest time from now; it advances time but
        cannot end a WFI (it re-arms itself for ever)."""
        self.timers.set_timer(PV_TIMER, self.timers.now_ns() + PV_TICK_NS, fire=self._pv_tick, wakes=False)

    def _pv_tick(self, _name: str) -> None:
        ns = self.cfg.stolen_ns_per_ms
        self._pv_stolen += ns
        self.A[L.IDLE] += ns * MM.CPU_HZ // 1_000_000_000
        self._pv_write()
        self._pv_arm()

    def _pv_write(self) -> None:
        ipa = self.cfg.pvtime_ipa
        if self.mem.is_ram(ipa, PV_RECORD_SIZE):
            self.mem.write_phys(ipa, struct.pack("<IIQ", 0, 0, self._pv_stolen) + bytes(PV_RECORD_SIZE - 16))
