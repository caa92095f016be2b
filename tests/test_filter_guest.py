"""The arm64 KVM pmu_event_filter selftest scenarios (kvm-pmu.md 4.3) against a real guest.

guests/src/pmu_filter.c counts BR_RETIRED (#0), INST_RETIRED (#1), SW_INCR (#2, one PMSWINC
write) and CPU_CYCLES (#3, and PMCCNTR) around a 10-iteration subs/cmp/b.gt loop and prints
PMCEID0/1.  The filters go through the runner exactly like successive
KVM_ARM_VCPU_PMU_V3_FILTER calls.  Expected counts: 10 branches, 33 instructions, 33 cycles.
Expected PMCEID: the unfiltered value ANDed with the filter bitmap, computed here with a
minimal independent model of KVM's rule (first filter sets the default, later ranges flip
their own events), SW_INCR/CHAIN bits included although those events keep counting."""
import pytest

from vpmu.testing import assert_kv

BR, INST, SW, CYC, CHAIN = 0x21, 0x08, 0x00, 0x11, 0x1E


def allowed_set(filters):
    """Events 0..63 and 0x4000..0x403F allowed by a list of (action, first, last)."""
    universe = list(range(64)) + list(range(0x4000, 0x4040))
    if not filters:
        return set(universe)
    allowed = set() if filters[0][0] == "allow" else set(universe)
    for action, first, last in filters:
        rng = {e for e in universe if first <= e <= last}
        allowed = allowed | rng if action == "allow" else allowed - rng
    return allowed


def mask(pmceid0, pmceid1, allowed):
    m0 = sum(1 << e for e in range(32) if e in allowed) | sum(1 << (32 + e) for e in range(32) if 0x4000 + e in allowed)
    m1 = (sum(1 << e for e in range(32) if 32 + e in allowed)
          | sum(1 << (32 + e) for e in range(32) if 0x4020 + e in allowed))
    return pmceid0 & m0, pmceid1 & m1


SCENARIOS = {
    # name: (filters, expected br, inst, swinc, cycles/ccnt)
    "without_filter": ([], 10, 33, 1, 33),
    "member_allow": ([("allow", SW, SW), ("allow", INST, INST), ("allow", BR, BR)], 10, 33, 1, 0),
    "member_deny": ([("deny", SW, SW), ("deny", INST, INST), ("deny", BR, BR)], 0, 0, 1, 33),
    "not_member_deny": ([("deny", SW, SW)], 10, 33, 1, 33),
    "not_member_allow": ([("allow", SW, SW)], 0, 0, 1, 0),
    "cancel": ([("allow", CYC, CYC), ("deny", CYC, CYC)], 0, 0, 1, 0),
    "multiple": ([("allow", 0, 0xF), ("deny", 6, 8)], 0, 0, 1, 0),
    "deny_chain": ([("deny", CHAIN, CHAIN)], 10, 33, 1, 33),
    "deny_cpu_cycles": ([("deny", CYC, CYC)], 10, 33, 1, 0),
}


@pytest.fixture(scope="module")
def base(vpmu_guest_dir):
    from vpmu.api import run_config
    from vpmu.options import RunOptions
    kv = run_config(str(vpmu_guest_dir / "pmu_filter.elf"), RunOptions().to_machine_config()).kv()
    return int(kv["pmceid0"], 16), int(kv["pmceid1"], 16)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_filter_scenario(vpmu_run, base, name):
    filters, br, inst, swinc, cyc = SCENARIOS[name]
    r = vpmu_run("pmu_filter", filters=[f"{a}:{first:#x}-{last:#x}" for a, first, last in filters])
    p0, p1 = mask(*base, allowed_set(filters))
    # PMEVTYPER keeps what the guest wrote even when the event is denied
    assert_kv(r, br=br, inst=inst, swinc=swinc, cycles=cyc, ccnt=cyc, pmceid0=p0, pmceid1=p1, typer0=BR)


def test_pmceid_high_halves_need_a_16bit_guest(vpmu_guest_dir, base):
    """A 3.4 host (16-bit filter space) running a guest lowered to PMUv3 v8.0 (10-bit events):
    the filter's bounds use the host's space, PMCEID's 0x4000-range halves read 0."""
    from vpmu import kvm
    from vpmu.api import run_config
    vm = kvm.Vm(kvm.Host(pmus=[kvm.HostPmu(type=8, version="3.4")]))
    vgic = vm.create_vgic(init=False)
    vcpu = vm.create_vcpu(pmu=True)
    vgic.init()                                  # KVM_DEV_ARM_VGIC_CTRL_INIT after the vCPUs exist
    vcpu.set_id_pmuver("3.0")
    vcpu.set_attr(kvm.KVM_ARM_VCPU_PMU_V3_CTRL, kvm.KVM_ARM_VCPU_PMU_V3_IRQ, 23)
    vcpu.set_attr(kvm.KVM_ARM_VCPU_PMU_V3_CTRL, kvm.KVM_ARM_VCPU_PMU_V3_FILTER,
                  kvm.KvmPmuEventFilter(base_event=0, nevents=0xFFFF, action=kvm.KVM_PMU_EVENT_ALLOW))
    vcpu.set_attr(kvm.KVM_ARM_VCPU_PMU_V3_CTRL, kvm.KVM_ARM_VCPU_PMU_V3_INIT)
    kv = run_config(str(vpmu_guest_dir / "pmu_filter.elf"), vcpu.run()).kv()
    assert int(kv["pmceid0"], 16) >> 32 == 0 and int(kv["pmceid1"], 16) >> 32 == 0
    assert int(kv["pmceid0"], 16) & 0xFFFFFFFF == base[0] & 0xFFFFFFFF


def test_pmceid_high_half_masked_on_a_16bit_guest(vpmu_run, base):
    r = vpmu_run("pmu_filter", filters=["deny:0x4004"])
    assert int(r.kv()["pmceid0"], 16) == base[0] & ~(1 << (32 + 4))              # CNT_CYCLES hidden


def test_filter_bounds_use_the_event_space(vpmu_run, vpmu_guest_dir, capsys):
    """KVM_ARM_VCPU_PMU_V3_FILTER with base + nevents beyond the event space: EINVAL, reported
    with the errno name and KVM's meaning (status 105)."""
    assert vpmu_run("pmu_filter", pmu_version="3.0", filters=["deny:0x3ff"]).exit_status == 0
    from vpmu.cli import main
    capsys.readouterr()
    assert main(["run", "--pmu-version", "3.0", "--filter", "deny:0x3ff-0x400",
                 str(vpmu_guest_dir / "pmu_filter.elf")]) == 105
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "EINVAL" in err and "KVM_ARM_VCPU_PMU_V3_FILTER" in err
