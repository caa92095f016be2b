"""Deferred counting (kernels.defer_flush) gives exactly the eager result.

Every guest runs twice, with deferred counting (the default) and with ``eager=True`` (each
block added to the counters when it completes), with every PMU register access traced:
the output, exit, final PMU state, instruction and cycle counts and every trace record
(PMU register reads and writes with their values and icount, overflows with their
instruction, interrupt edges, exceptions, samples) must be identical.  The cases cover
the things the deferral budget must respect: counters about to overflow (32- and 64-bit,
CHAIN, with and without an interrupt), the instruction limit, --trace-sample, timer
deadlines, EL0/EL1 filtering, the Xen frontend, debug exceptions (watchpoints raised from a
memory hook, software steps, blocks without instructions), and configurations that must fall
back to eager counting (cache models, mispredict cycles).
"""
from __future__ import annotations

import pytest

from vpmu.api import run_config
from vpmu.options import RunOptions
from vpmu.pytest_plugin import resolve_guest

D_CACHE = dict(cache="line=64,l1d-size=512,l1d-ways=2", cycles="l1d-refill=20,l1d-writeback=7")
MODEL_B = "base=1,load=2,store=3,branch=1,mul=4,div=5,fp=6,system=7,mispredict=5"

CASES = [
    ("hello", {}), ("demo", {}), ("exceptions", {}), ("pmu_smoke", {}), ("pmu_overflow_irq", {}),
    ("pmu_exclusive", {}), ("pmu_el0_access", {}), ("pmu_probe", {}), ("counter_access", {}),
    ("pmu_filter", {"filters": ["deny:0x4004"]}),
    ("bench", {"append": "n=20000"}),
    ("bench", {"append": "n=30000", "max_insns": 123_457, "expect_error": True}),
    ("bench", {"append": "n=20000", "trace_sample": 9_999}),
    ("bench", {"append": "n=20000", "pmu_version": "3.0"}),
    ("kut_pmu", {}), ("kut_pmu", {"pmu_version": "3.0"}), ("kut_pmu", {"pmu_version": "3.4"}),
    ("kut_pmu", {"append": "pmu-overflow-interrupt"}),
    ("kut_pmu", {"append": "pmu-overflow-interrupt", "pmu_version": "3.1"}),
    ("kut_pmu", {"append": "cycle-counter 2", "cycles": "base=2"}),
    ("kut_pmu", {"append": "pmu-sw-incr"}),
    ("ev_insts", {"counters": 31}), ("ev_mem", {"counters": 31}), ("ev_misc", {"counters": 31}),
    ("ev_branches", {"counters": 31}), ("ev_cycles", {"counters": 31}),
    ("ev_cycles", {"counters": 31, "cycles": MODEL_B}), ("ev_caches", {"counters": 31, **D_CACHE}),
    ("board_el0", {}), ("board_el0_traps", {}), ("board_exc", {}), ("board_irq", {}), ("board_timer", {}),
    ("board_sp0", {}), ("board_store_abort", {}), ("board_psci", {}), ("board_semihost", {}),
    ("board_spin", {"max_insns": 10_000, "expect_error": True}),
    ("board_wfi_deadlock", {"append": "timer=imask", "expect_error": True}),
    ("timer_periodic", {}), ("boot_dt", {}), ("code_change", {}),
    ("debug_wp", {}), ("debug_ss", {}),
    ("xen_pmu_driver", {"xen": True}), ("xen_evtchn", {"xen": True}), ("xen_badptr", {"xen": True}),
]


def _run(guest_dir, name, options, eager):
    opts = dict(options)
    opts.pop("expect_error", None)
    cfg = RunOptions(trace_pmu_regs=True, eager=eager, **opts).to_machine_config()
    return run_config(resolve_guest(guest_dir, name), cfg)


@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_deferred_counting_is_exact(vpmu_guest_dir, name, options):
    d = _run(vpmu_guest_dir, name, options, eager=False)
    e = _run(vpmu_guest_dir, name, options, eager=True)
    if options.get("expect_error"):
        assert d.error is not None
    else:
        assert d.error is None and d.exit_status == 0, (d.error, d.output[-500:])
    assert (d.output, d.exit_status, d.reason, d.error) == (e.output, e.exit_status, e.reason, e.error)
    assert (d.icount, d.cycles, d.pmu) == (e.icount, e.cycles, e.pmu)
    assert len(d.trace) == len(e.trace)
    for a, b in zip(d.trace, e.trace):
        assert a == b
    assert d.stats["deferred_misses"] == 0
    assert e.stats["deferred_blocks"] == 0


def test_the_benchmark_loop_is_counted_deferred(vpmu_guest_dir):
    """The point of it: with six event counters and the cycle counter on, the loop's blocks
    are tallied, not added one by one (and the counts are the architectural ones)."""
    r = _run(vpmu_guest_dir, "bench", {"append": "n=100000"}, eager=False)
    kv = r.kv()
    assert (kv["inst"], kv["br"], kv["ld"], kv["st"], kv["mem"]) == ("1000010", "100002", "200000", "200000",
                                                                     "400000")
    assert r.stats["deferred_blocks"] > 99_000 and r.stats["deferred_misses"] == 0


@pytest.mark.parametrize("options", [D_CACHE, {"cycles": "mispredict=3"}], ids=["cache-model", "mispredict-cycles"])
def test_models_needing_every_block_count_eagerly(vpmu_guest_dir, options):
    r = _run(vpmu_guest_dir, "bench", {"append": "n=1000", **options}, eager=False)
    assert r.error is None and r.stats["deferred_blocks"] == 0
