"""The KVM selftest ``tools/testing/selftests/kvm/arm64/vpmu_counter_access.c`` reproduced with a
real guest (``guests/src/counter_access.c``, the selftest's ``guest_code``) on our board.

What the guest checks, for a PMU with PMCR_EL0.N = N (kvm-pmu.md section 4.2): PMCR.N == N;
bits [30:N] of PMCNTEN/PMINTEN/PMOVS SET/CLR read 0; for every implemented counter and all
four accessor combinations (PMEVCNTR<n>/PMEVTYPER<n> directly or through PMSELR +
PMXEVCNTR/PMXEVTYPER, for reads and writes) clear/set/clear through the CLR/SET registers is
visible in all six views, PMEVTYPER := P|INST_RETIRED reads back, the counter reads 0 after
PMCR.P and i + 0x12345 after a write; for every unimplemented counter in [N, 30] each of the
four accesses raises one UNDEF (ESR.EC 0) and SET writes leave the six views clear.

Host side, as in the selftest: the access test for N = 0..n_max and the error test for
N = n_max+1..31 (``KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS`` fails with EINVAL, the newer upstream
variant), and the vCPU "reset and rerun" check that N is preserved.  In addition every N in
0..31 is run through the runner's ``--counters N`` (which builds a host PMU with N counters),
and N = 32 must be refused by the runner.

Deviations from the original:
- the guest checks are stricter: each of the six views must equal exactly the one bit (or 0),
  not just have the bit set/clear, and each UNDEF must be reported at the accessing
  instruction itself (ELR);
- the expected N reaches the guest on the kernel command line (``--append N``) instead of
  ``vcpu_args_set``; the guest reports results as key=value lines instead of ucalls;
- "reset the vCPU and rerun" is a second run of the same KVM vCPU object (``Vcpu.run``);
- the selftest's userspace (ONE_REG) validity test is not part of this guest test.
"""
from __future__ import annotations

import errno

import pytest

from vpmu import kvm, vmdesc
from vpmu.api import run_config
from vpmu.cli import main as cli_main
from vpmu.errors import EXIT_USAGE, VpmuError
from vpmu.pytest_plugin import resolve_guest
from vpmu.testing import assert_kv

MAX_GENERAL_COUNTERS = 31
HOST_N_MAX = 6                       # the default host PMU of a VM description


def expected(n: int) -> dict:
    """Every key=value line the guest prints for PMCR.N = n (counts of individual checks:
    6 views per bitmap check, 3 bitmap checks per implemented counter and accessor
    combination, 2 per unimplemented one, 4 UNDEFs per unimplemented counter and combination)."""
    unimpl = MAX_GENERAL_COUNTERS - n
    checks = {
        "pmcr_n": 1,
        "unimpl_bits_clear": 6,
        "impl_bitmap": 4 * n * 3 * 6,
        "impl_typer": 4 * n,
        "impl_cntr_reset": 4 * n,
        "impl_cntr_rw": 4 * n,
        "unimpl_undef": 4 * unimpl * 4,
        "unimpl_bitmap": 4 * unimpl * 2 * 6,
    }
    kv = {"pmcr_n": "PASS", "expected_n": n, "unimp_mask": ((1 << 31) - 1) & ~((1 << n) - 1),
          "undefs": 16 * unimpl, "undefs_expected": 16 * unimpl, "bad_exceptions": 0, "bad_elr": 0,
          "failures": 0}
    for name, count in checks.items():
        kv[name] = "PASS"
        kv[f"{name}.checks"] = count
    return kv


def assert_access_test(r, n: int) -> None:
    assert r.reason == "exit", r.output[-2000:]
    assert_kv(r, **expected(n))
    assert r.exit_status == 0
    # the PMCR_EL0.N line is printed before the first check: read it back explicitly too
    assert r.kv()["pmcr_n"] == "PASS" and int(r.output.split("pmcr_n=", 1)[1].split()[0]) == n


@pytest.mark.parametrize("n", range(MAX_GENERAL_COUNTERS + 1))
def test_access_every_n(vpmu_run, n):
    """The guest's access test with the runner's --counters N, for every N the ABI allows."""
    r = vpmu_run("counter_access", counters=n, append=str(n))
    assert_access_test(r, n)


@pytest.mark.parametrize("version, n", [("3.0", 6), ("3.0", 31), ("3.4", 6), ("3.5", 6)])
def test_access_other_pmu_versions(vpmu_run, version, n):
    """Same test with 32-bit event counters (before PMUv3p5) and at PMUv3p5."""
    r = vpmu_run("counter_access", counters=n, append=str(n), pmu_version=version)
    assert_access_test(r, n)
    assert_kv(r, pmuver={"3.0": 1, "3.4": 5, "3.5": 6}[version])


def _selftest_vcpu(n: int):
    """create_vpmu_vm() of the selftest: vGICv3 created and initialised, one vCPU with
    PMU_V3, PMU IRQ = PPI 23, SET_NR_COUNTERS = n, PMU INIT (default host PMU: 6 counters)."""
    P = kvm.KVM_ARM_VCPU_PMU_V3_CTRL
    vm = kvm.Vm()
    vm.create_vgic(init=False)
    vcpu = vm.create_vcpu(pmu=True)
    vm.vgic.init()
    assert vcpu.set_attr(P, kvm.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, n) == 0
    assert vcpu.set_attr(P, kvm.KVM_ARM_VCPU_PMU_V3_IRQ, 23) == 0
    assert vcpu.set_attr(P, kvm.KVM_ARM_VCPU_PMU_V3_INIT) == 0
    return vcpu


def _run_vcpu(vcpu, guest: str, n: int):
    cfg = vcpu.run()                       # KVM_RUN checks; the vCPU's machine configuration
    cfg.append = str(n)                    # vcpu_args_set(vcpu, 1, pmcr_n)
    return run_config(guest, cfg)


@pytest.mark.parametrize("n", [0, HOST_N_MAX])
def test_selftest_access_through_kvm_and_rerun(vpmu_guest_dir, n):
    """run_access_test(): N set with SET_NR_COUNTERS (n <= n_max), guest run, then the vCPU
    is run again: PMCR.N must be preserved (it is VM-wide)."""
    guest = resolve_guest(vpmu_guest_dir, "counter_access")
    vcpu = _selftest_vcpu(n)
    assert_access_test(_run_vcpu(vcpu, guest, n), n)
    assert vcpu.vm.nr_pmu_counters == n
    assert_access_test(_run_vcpu(vcpu, guest, n), n)


def test_selftest_error_test_above_host_max():
    """run_error_test(): for n_max < N <= 31 (and 32) SET_NR_COUNTERS fails with EINVAL,
    both through the KVM API and through a VM description."""
    P = kvm.KVM_ARM_VCPU_PMU_V3_CTRL
    for n in range(HOST_N_MAX + 1, MAX_GENERAL_COUNTERS + 2):
        vm = kvm.Vm()
        vm.create_vgic(init=False)
        vcpu = vm.create_vcpu(pmu=True)
        with pytest.raises(OSError) as e:
            vcpu.set_attr(P, kvm.KVM_ARM_VCPU_PMU_V3_SET_NR_COUNTERS, n)
        assert e.value.errno == errno.EINVAL, n
        assert vm.nr_pmu_counters == HOST_N_MAX       # unchanged
        with pytest.raises(vmdesc.KvmAttrError) as e:
            vmdesc.loads(f"[pmu]\ncounters = {n}")
        assert e.value.errno == errno.EINVAL and "SET_NR_COUNTERS" in str(e.value), n


def test_runner_rejects_32_counters(vpmu_run, vpmu_guest_dir, capsys):
    """PMCR_EL0.N is 5 bits and counter 31 is the cycle counter: N = 32 is refused before
    anything runs, by the Python API and by the command line (exit status 2, one line)."""
    with pytest.raises(VpmuError) as e:
        vpmu_run("counter_access", counters=32)
    assert e.value.status == EXIT_USAGE
    assert "0..31" in str(e.value)
    guest = resolve_guest(vpmu_guest_dir, "counter_access")
    assert cli_main(["run", "--counters", "32", guest]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--counters" in err and "0..31" in err
