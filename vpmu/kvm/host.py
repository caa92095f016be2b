"""The host kernel's side: its PMUs (:class:`HostPmu`) and what KVM derives from them
(:class:`Host`: PMUVer limit, usable PMUs, CPUs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..config import PMU_VERSIONS, PMUVER_IMP_DEF, PMUVER_NI, PMUVER_TO_NAME, PMUVER_V3P5


# ---------------------------------------------------------------------------------------------
# Host

def _pmuver_of(version: Union[str, int]) -> int:
    if isinstance(version, int) and not isinstance(version, bool):
        if version in PMUVER_TO_NAME or version in (PMUVER_NI, PMUVER_IMP_DEF):
            return version
        raise ValueError(f"unsupported PMUVer value {version:#x}")
    if isinstance(version, str):
        key = version.strip().lower()
        if key in PMU_VERSIONS:
            return PMU_VERSIONS[key]
        if key in ("imp_def", "impdef", "imp-def"):
            return PMUVER_IMP_DEF
        if key in ("none", "0"):
            return PMUVER_NI
    raise ValueError(f"unknown PMU version {version!r} (use one of {', '.join(PMU_VERSIONS)}, "
                     "'imp_def' or 'none')")


@dataclass(frozen=True)
class HostPmu:
    """One host PMU instance as perf registers it (``/sys/bus/event_source/devices/<name>``).

    ``version`` is this PMU's PMUVer as a ``--pmu-version`` string ("3.0".."3.7"), ``"imp_def"``
    (a non-PMUv3 PMU, e.g. Apple) or ``"none"``; ``counters`` the general-purpose counters;
    ``cpus`` the CPUs it covers.
    """
    type: int
    version: str = "3.7"
    counters: int = 6
    cpus: tuple = (0, 1, 2, 3)
    name: str = "armv8_pmuv3_0"

    def __post_init__(self):
        _pmuver_of(self.version)
        if not 0 <= self.counters <= 31:
            raise ValueError(f"HostPmu.counters must be 0..31, not {self.counters}")
        object.__setattr__(self, "cpus", tuple(sorted(set(self.cpus))))

    @property
    def pmuver(self) -> int:
        return _pmuver_of(self.version)


@dataclass
class Host:
    """The host kernel's view relevant to the vPMU.

    ``steal_time`` stands for ``sched_info_on()`` (PV time support); ``current_cpu`` is the
    CPU the VMM thread calls KVM_ARM_VCPU_INIT / KVM_RUN on (default PMU choice, and the
    supported-CPUs check after SET_PMU).
    """
    pmus: list = field(default_factory=lambda: [HostPmu(type=8)])
    steal_time: bool = True
    current_cpu: int = 0

    @property
    def cpus(self) -> frozenset:
        out = {self.current_cpu}
        for p in self.pmus:
            out.update(p.cpus)
        return frozenset(out)

    @property
    def pmuver_limit(self) -> int:
        """``kvm_arm_pmu_get_pmuver_limit()``: the sanitised system PMUVer, IMP_DEF treated as
        none, capped at v3p5.

        ID_AA64DFR0_EL1.PMUVer is an FTR_EXACT field in ``cpufeature.c``: if the CPUs disagree
        the sanitised value is 0, so a host whose PMUs have different versions gives KVM no
        PMU at all.
        """
        versions = {p.pmuver for p in self.pmus}
        if len(versions) != 1:
            return PMUVER_NI
        v = versions.pop()
        if v == PMUVER_IMP_DEF:
            return PMUVER_NI
        return min(v, PMUVER_V3P5)

    @property
    def kvm_pmus(self) -> list:
        """PMUs ``kvm_host_pmu_init()`` registered: all of them if the limit is a PMUv3."""
        return list(self.pmus) if self.pmuver_limit else []
