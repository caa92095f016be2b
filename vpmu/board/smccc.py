"""PSCI 1.1, SMCCC 1.1 and PV time (stolen time) over SMC and HVC #0 from EL1.

One CPU: CPU_ON is NOT_SUPPORTED, AFFINITY_INFO says CPU 0 is ON; SYSTEM_OFF, SYSTEM_RESET
and CPU_OFF end the run.  PV time (Arm DEN0057A) is offered only when the VM description
set KVM_ARM_VCPU_PVTIME_IPA; stolen time is deterministic (see ``_pv_time_st``).
"""
from __future__ import annotations

import struct

from unicorn import arm64_const as R

from ..pmu import layout as L
from . import memmap as MM
from .env import GuestExit

PSCI_VERSION, PSCI_CPU_OFF, PSCI_CPU_ON64, PSCI_AFFINITY_INFO64 = 0x84000000, 0x84000002, 0xC4000003, 0xC4000004
PSCI_MIGRATE_INFO_TYPE, PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_FEATURES = 0x84000006, 0x84000008, 0x84000009, 0x8400000A
PSCI_CPU_ON32, PSCI_AFFINITY_INFO32 = 0x84000003, 0x84000004
SMCCC_VERSION, SMCCC_ARCH_FEATURES = 0x80000000, 0x80000001
PV_TIME_FEATURES, PV_TIME_ST = 0xC5000020, 0xC5000021
NOT_SUPPORTED = (1 << 64) - 1            # SMCCC / PSCI -1


class Smccc:
    def __init__(self, cfg, uc, A, mem, timers, trace):
        self.cfg, self.uc, self.A, self.mem, self.timers, self.trace = cfg, uc, A, mem, timers, trace
        self._pv_stolen = 0

    def call(self, pc: int, conduit: str) -> None:
        uc = self.uc
        fid = uc.reg_read(R.UC_ARM64_REG_X0) & 0xFFFFFFFF
        a1 = uc.reg_read(R.UC_ARM64_REG_X1)
        ret = NOT_SUPPORTED
        if fid == PSCI_VERSION:
            ret = 0x10001                                   # PSCI 1.1
        elif fid == PSCI_FEATURES:
            ret = 0 if (a1 & 0xFFFFFFFF) in (PSCI_VERSION, PSCI_CPU_OFF, PSCI_CPU_ON64, PSCI_CPU_ON32,
                                            PSCI_AFFINITY_INFO64, PSCI_AFFINITY_INFO32, PSCI_SYSTEM_OFF,
                                            PSCI_SYSTEM_RESET, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE,
                                            SMCCC_VERSION) else NOT_SUPPORTED
        elif fid == PSCI_SYSTEM_OFF:
            self.trace.add({"type": "psci", "icount": int(self.A[L.ICOUNT]), "function": "SYSTEM_OFF", "result": 0})
            raise GuestExit(0, "system_off")
        elif fid == PSCI_SYSTEM_RESET:
            self.trace.add({"type": "psci", "icount": int(self.A[L.ICOUNT]), "function": "SYSTEM_RESET", "result": 0})
            raise GuestExit(0, "reset")
        elif fid == PSCI_CPU_OFF:
            raise GuestExit(0, "cpu_off")
        elif fid in (PSCI_CPU_ON64, PSCI_CPU_ON32):
            ret = NOT_SUPPORTED                             # one CPU on this board
        elif fid in (PSCI_AFFINITY_INFO64, PSCI_AFFINITY_INFO32):
            ret = 0 if (a1 & 0xFFFFFF) == 0 else (1 << 64) - 2   # ON for CPU 0, else INVALID_PARAMETERS
        elif fid == PSCI_MIGRATE_INFO_TYPE:
            ret = 2                                         # trusted OS not present
        elif fid == SMCCC_VERSION:
            ret = 0x10001                                   # SMCCC 1.1
        elif fid == SMCCC_ARCH_FEATURES:
            ret = 0 if (a1 & 0xFFFFFFFF) in (PV_TIME_FEATURES,) and self.cfg.pvtime_ipa is not None else NOT_SUPPORTED
        elif fid == PV_TIME_FEATURES:
            ret = self._pv_time_features(a1 & 0xFFFFFFFF)
        elif fid == PV_TIME_ST:
            ret = self._pv_time_st()
        uc.reg_write(R.UC_ARM64_REG_X0, ret)
        uc.reg_write(R.UC_ARM64_REG_PC, pc + 4)

    def _pv_time_features(self, fid: int) -> int:
        if self.cfg.pvtime_ipa is None:
            return NOT_SUPPORTED
        return 0 if fid in (PV_TIME_FEATURES, PV_TIME_ST) else NOT_SUPPORTED

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
            self.timers.set_timer("pvtime", self.timers.now_ns() + 1_000_000, fire=lambda _name: self._pv_tick(), wakes=False)
        return ipa

    def _pv_tick(self) -> None:
        ns = self.cfg.stolen_ns_per_ms
        self._pv_stolen += ns
        self.A[L.IDLE] += ns * MM.CPU_HZ // 1_000_000_000
        self._pv_write()
        self.timers.set_timer("pvtime", self.timers.now_ns() + 1_000_000, fire=lambda _name: self._pv_tick(), wakes=False)

    def _pv_write(self) -> None:
        ipa = self.cfg.pvtime_ipa
        if self.mem.is_ram(ipa, 64):
            self.mem.write_phys(ipa, struct.pack("<IIQ", 0, 0, self._pv_stolen) + bytes(48))
