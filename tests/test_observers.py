"""The observer counters (config.Observers) under `vpmu stat`: beyond PMCR_EL0.N, they count
what the guest's own counters count without disturbing the guest's run in any way."""
import pytest

from vpmu import api
from vpmu.config import Observers
from vpmu.options import RunOptions

from demo_guest import DEMO, demo_readings

DEMO_NUMBERS = {"INST_RETIRED": 0x08, "BR_RETIRED": 0x21, "BR_MIS_PRED": 0x10, "LD_RETIRED": 0x06,
                "ST_RETIRED": 0x07, "MEM_ACCESS": 0x13, "CPU_CYCLES": 0x11}



def _run(guest, events=(), window="enabled", **opts):
    cfg = RunOptions.from_keywords(**opts).to_machine_config()
    cfg.trace_pmu_regs = True
    cfg.observe = Observers(tuple(events), window)
    return api.run_config(guest, cfg)


def _all(*numbers):
    return [(n, True, True) for n in numbers]


def test_observers_count_what_the_guest_reads(vpmu_guest_dir):
    demo = str(vpmu_guest_dir / "demo.elf")
    r = _run(demo, _all(*DEMO_NUMBERS.values()))
    assert demo_readings(r.output) == DEMO
    assert dict(zip(DEMO_NUMBERS, r.observed)) == DEMO
    whole = _run(demo, _all(0x08, 0x11), window="run")
    assert whole.observed == [whole.icount, whole.cycles] == [148693, 148693]


@pytest.mark.parametrize("guest, opts", [
    ("demo", {}), ("pmu_overflow_irq", {}), ("pmu_overflow_irq", {"pmu_version": "3.0"}),
    ("kut_pmu", {}), ("timer_periodic", {}), ("board_el0", {}), ("demo", {"eager": True}),
    ("demo", {"filters": ["deny:INST_RETIRED"], "cycles": "base=1,load=2,mispredict=7"}),
])
@pytest.mark.parametrize("window", ["enabled", "run"])
def test_observers_do_not_disturb_the_guest(vpmu_guest_dir, guest, opts, window):
    """Every trace record (PMU register accesses with the values read, overflows, interrupt
    levels, the exit record with all registers) and the output are those of the run without
    observers, whatever they count: 25 counters beside the guest's 6, 32-bit overflow
    thresholds long passed, PMU_OVFS, CHAIN, CNT_CYCLES, mispredicts, exceptions."""
    g = str(vpmu_guest_dir / f"{guest}.elf")
    plain = _run(g, (), **opts)
    numbers = [0x08, 0x11, 0x10, 0x0C, 0x21, 0x06, 0x07, 0x13, 0x09, 0x0A, 0x1E, 0x00, 0x400D, 0x4004,
               0x23, 0x24, 0x3A, 0x0D, 0x0E, 0x22, 0x12, 0x1B, 0x3C]
    watched = _run(g, [(n, el0, el1) for n in numbers for el0, el1 in ((True, True),)] +
                   [(0x08, True, False), (0x08, False, True)], window=window, **opts)
    assert watched.output == plain.output and watched.exit_status == plain.exit_status
    assert watched.trace == plain.trace
    assert watched.pmu == plain.pmu
    obs = dict(zip(numbers, watched.observed))
    if window == "run":
        assert obs[0x08] == watched.icount and obs[0x11] == watched.cycles
        assert watched.observed[-2] + watched.observed[-1] == watched.icount      # EL0 + EL1
    assert obs[0x1E] == 0 and obs[0x00] == 0          # CHAIN / SW_INCR: nothing reaches an observer


def test_cache_observers_run_the_cache_model_from_the_start(vpmu_guest_dir):
    """Counting a cache event starts the cache model at the first instruction, as --cache
    does: the guest's run is then the --cache run."""
    g = str(vpmu_guest_dir / "ev_caches.elf")
    with_cache = _run(g, (), cache="line=64")
    watched = _run(g, _all(0x03, 0x04, 0x01, 0x15), window="run", cache="line=64")
    assert watched.trace == with_cache.trace and watched.output == with_cache.output
    assert watched.observed[1] > watched.observed[0] > 0


def test_the_guests_filter_does_not_apply_to_observers(vpmu_guest_dir):
    r = _run(str(vpmu_guest_dir / "demo.elf"), _all(0x08, 0x10), filters=["deny:0-0xFFFF"])
    assert demo_readings(r.output)["INST_RETIRED"] == 0           # the guest's counters are stopped
    assert r.observed == [DEMO["INST_RETIRED"], DEMO["BR_MIS_PRED"]]


def test_observers_need_room_beside_the_guests_counters(vpmu_guest_dir):
    cfg = RunOptions(counters=30).to_machine_config()
    cfg.observe = Observers(tuple(_all(0x08, 0x11)))
    r = api.run_config(str(vpmu_guest_dir / "hello.elf"), cfg)
    assert r.exit_status == 2 and "do not fit" in r.error
