"""End-to-end smoke tests of the board and the counting path (real guests)."""
from vpmu.testing import assert_irq_follows_overflows, assert_kv, assert_overflows


def test_hello(vpmu_run):
    r = vpmu_run("hello")
    assert r.exit_status == 0 and r.reason == "exit"
    assert r.output.startswith("hello from a vpmu guest\n")
    assert_kv(r, el=1, answer=42)


def test_precise_loop_counts(vpmu_run):
    r = vpmu_run("pmu_smoke")
    # kvm-unit-tests precise loop: 2 + 2*20 instructions, 20 conditional branches (19 taken)
    assert_kv(r, inst=42, cycles=42, br=20, ccnt=42, n=6, pmuver=7)


def test_overflow_irq_is_precise(vpmu_run):
    r = vpmu_run("pmu_overflow_irq")
    assert_kv(r, irq_count=1, irq_intid=23, elr_offset=15, ovs=1)
    assert_overflows(r, counter=0, times=1)
    assert_irq_follows_overflows(r, intid=23, within=0)


def test_failed_store_exclusive_is_not_a_store(vpmu_run):
    r = vpmu_run("pmu_exclusive")
    assert_kv(r, status_ok=0, status_fail=1, st_ok=1, mem_ok=2, inst_ok=3, st_fail=0, mem_fail=0, inst_fail=3)
