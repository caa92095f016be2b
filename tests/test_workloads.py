"""The benchmark workloads (vpmu/workloads.py, guests/src/bench*.c) at small sizes.

Every workload guest runs under vpmu with exact (loops: by the arithmetic in their
comments) or self-checked (OS-like guests: what they verify themselves) counts, the same
counts deferred and with ``eager=True`` on every trace record, the same counts from run to
run, and, where the table says so, its measured function on plain Unicorn with the guest's
own result.  The ``qemu`` tests run each workload on qemu-system-aarch64 to its end.
"""
from __future__ import annotations

import time

import pytest

from vpmu import workloads as W
from vpmu.api import run_config
from vpmu.errors import VpmuError
from vpmu.options import RunOptions
from vpmu.testing import assert_runs_identical

# Small sizes: every workload in the table has one (test_every_workload_has_a_test_size).
SMALL = {
    "loop10": {"n": 3000},
    "loop6": {"n": 3000},
    "loop4": {"n": 3000},
    "mmu": {"mb": 2, "r": 2, "touch": 8},
    "icache": {"n": 40, "pages": 2},           # 40 iterations over 32 slots: slots are rewritten
    "timer_syscalls": {"n": 2000, "k": 2000},  # 4.2 million instructions: a 4 ms tick is taken
    "exceptions": {"n": 40, "k": 40},
}


def small(name: str) -> dict:
    return W.get(name).arguments(overrides=SMALL[name])


def _run(guest_dir, name: str, eager: bool, **options):
    w = W.get(name)
    cfg = RunOptions(append=W.append_string(small(name)), trace_pmu_regs=True, eager=eager,
                     **options).to_machine_config()
    return run_config(w.guest_path(guest_dir), cfg)


def test_every_workload_has_a_test_size():
    assert set(SMALL) == set(W.BY_NAME)
    assert {"loop10", "loop6", "loop4", "mmu", "icache", "timer_syscalls", "exceptions"} <= set(W.BY_NAME)


@pytest.mark.parametrize("name, per_iter, ld, st, mem", [
    ("loop10", 10, 2, 2, 4), ("loop6", 6, 1, 1, 2), ("loop4", 4, 1, 0, 1)])
def test_loop_counts_are_the_arithmetic(vpmu_guest_dir, name, per_iter, ld, st, mem):
    """The loops' comments: per_iter x n + 3 instructions of the function + 4 of the window
    (bench_common.h); one b.ne per iteration plus ret and blr."""
    n = SMALL[name]["n"]
    r = _run(vpmu_guest_dir, name, eager=False)
    assert r.ok, r.error
    c = W.counts(r.kv())
    inst = per_iter * n + 3 + W.BENCH_OVERHEAD
    assert c == {"inst": inst, "cpu_cycles": inst, "br": n + 2, "ld": ld * n, "st": st * n, "mem": mem * n,
                 "cycles": inst}


@pytest.mark.parametrize("name", list(SMALL))
def test_deferred_counting_equals_eager(vpmu_guest_dir, name):
    d = _run(vpmu_guest_dir, name, eager=False)
    e = _run(vpmu_guest_dir, name, eager=True)
    assert d.ok, (d.error, d.output[-500:])
    assert "bench: start" in d.output and "bench: end" in d.output
    assert_runs_identical(d, e)
    assert d.stats["deferred_misses"] == 0 and e.stats["deferred_blocks"] == 0


def test_os_workloads_check_themselves(vpmu_guest_dir):
    """What each OS-like guest verifies: the mappings took effect (mmu: bad = 0; icache and
    exceptions: their sums, compared with plain Unicorn / QEMU elsewhere), every exception
    was taken and handled, and the 250 Hz tick fired at its period."""
    kv = _run(vpmu_guest_dir, "mmu", eager=False).kv()
    assert (kv["bad"], kv["pages_mapped"]) == ("0", str(2 * 256 * 2))
    kv = _run(vpmu_guest_dir, "timer_syscalls", eager=False).kv()
    inst = int(kv["inst"])
    assert kv["syscalls"] == "2000"
    assert int(kv["ticks"]) == inst // 4_000_000 >= 1       # 4 ms of guest time = 4e6 instructions
    assert int(kv["user_ticks"]) + int(kv["kernel_ticks"]) == int(kv["ticks"])
    kv = _run(vpmu_guest_dir, "exceptions", eager=False).kv()
    assert (kv["faults"], kv["brks"], kv["udfs"], kv["reclaims"]) == ("20", "10", "10", "4")


@pytest.mark.parametrize("name", ["timer_syscalls", "exceptions", "mmu"])
def test_counts_are_the_same_from_run_to_run(vpmu_guest_dir, name):
    w = W.get(name)
    a = W.run_vpmu(w.guest_path(vpmu_guest_dir), small(name))
    b = W.run_vpmu(w.guest_path(vpmu_guest_dir), small(name))
    assert W.counts(a.kv) == W.counts(b.kv) and len(W.counts(a.kv)) == len(W.COUNT_KEYS)
    assert a.kv["sum"] == b.kv["sum"]
    assert a.seconds > 0 and a.insns == int(a.kv["inst"])


@pytest.mark.parametrize("name", [w.name for w in W.WORKLOADS if w.plain])
def test_plain_unicorn_runs_the_same_function(vpmu_guest_dir, name):
    w = W.get(name)
    v = W.run_vpmu(w.guest_path(vpmu_guest_dir), small(name))
    p = W.run_plain(w.guest_path(vpmu_guest_dir), w.plain, v.kv)
    assert p.result == int(v.kv["sum"], 0)
    assert p.insns == v.insns - W.BENCH_OVERHEAD and p.seconds > 0


def test_workloads_without_plain_say_why():
    for w in W.WORKLOADS:
        assert (w.plain is None) == bool(w.no_plain), w.name
    assert W.get("timer_syscalls").plain is None and W.get("exceptions").plain is None


def test_measure_alternates_rounds_and_reports_medians(vpmu_guest_dir):
    m = W.measure(W.get("loop6"), small("loop6"), rounds=3, qemu=None, qemu_skipped="qemu-system-aarch64 not found",
                  guest_dir=vpmu_guest_dir)
    assert len(m.vpmu_seconds) == len(m.plain_seconds) == len(m.plain_ratios) == 3
    assert m.plain_ratio == sorted(m.plain_ratios)[1]
    assert m.qemu_ratio is None and m.qemu_skipped == "qemu-system-aarch64 not found"
    assert m.counts["inst"] == 6 * 3000 + 7 and m.plain_insns == 6 * 3000 + 3
    assert m.vpmu_time == sorted(m.vpmu_seconds)[1] and m.vpmu_mips == m.insns / m.vpmu_time / 1e6
    assert m.plain_mips is not None and m.plain_mips > 0
    d = m.to_dict()
    assert d["workload"] == "loop6" and d["args"] == {"k": 6, "n": 3000} and d["plain_ratio"] == m.plain_ratio
    assert d["vpmu_mips"] == m.vpmu_mips and d["setup_time"] == m.setup_time
    m = W.measure(W.get("exceptions"), small("exceptions"), rounds=1, guest_dir=vpmu_guest_dir)
    assert m.plain_seconds == [] and m.plain_ratio is None and "VBAR_EL1" in m.plain_skipped


def test_arguments_scale_and_overrides():
    w = W.get("mmu")
    assert w.arguments() == {"mb": 128, "r": 8, "touch": 16}         # issue 10: a TLBI per page over 128 MiB
    assert w.arguments(scale=0.125) == {"mb": 128, "r": 1, "touch": 16}
    assert w.arguments(scale=0.01) == {"mb": 128, "r": 1, "touch": 16}   # never below 1
    assert w.arguments(overrides={"r": "3"}) == {"mb": 128, "r": 3, "touch": 16}
    with pytest.raises(VpmuError, match="no argument 'size'") as e:
        w.arguments(overrides={"size": 1})
    assert e.value.status == 2
    with pytest.raises(VpmuError, match="unknown workload 'nope'"):
        W.get("nope")


@pytest.mark.parametrize("name, over, message", [
    ("mmu", {"mb": 2048}, r"mb=2048 is outside 1\.\.1024"),
    ("mmu", {"mb": 0}, r"mb=0 is outside"),
    ("loop6", {"k": 4}, r"k=4 is outside 6\.\.6"),
    ("loop10", {"n": -1}, r"n=-1 is outside"),
    ("icache", {"len": 65}, r"len=65 is outside 3\.\.64"),
    ("timer_syscalls", {"n": 1_000_000, "k": 1_000_000}, r"about 1e\+12 instructions per round, more than"),
    ("exceptions", {"n": 2}, r"n=2 is outside 4\.\."),
])
def test_arguments_are_bounded(name, over, message):
    with pytest.raises(VpmuError, match=message) as e:
        W.get(name).arguments(overrides=over)
    assert e.value.status == 2


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_must_be_a_positive_number(scale):
    with pytest.raises(VpmuError, match="--scale must be a positive number"):
        W.get("loop6").arguments(scale=scale)


def test_every_default_round_is_within_the_bounds():
    for w in W.WORKLOADS:
        a = w.arguments()
        assert 0 < w.insns(a) <= W.MAX_ROUND_INSNS, w.name
        limit, plain_s, qemu_s = W.round_limits(w, a)
        assert limit > w.insns(a) and plain_s >= W.PLAIN_TIMEOUT and qemu_s >= W.QEMU_TIMEOUT


@pytest.mark.parametrize("name", list(SMALL))
def test_instruction_estimates_cover_the_counts(vpmu_guest_dir, name):
    """The estimate that bounds a round (and sets its instruction limit) is at least what the
    guest's window counts, and not wildly more."""
    w = W.get(name)
    v = W.run_vpmu(w.guest_path(vpmu_guest_dir), small(name))
    assert v.insns <= w.insns(small(name)) + 1000 < 3 * v.insns + 1000


def test_a_round_is_bounded_by_its_instruction_limit(vpmu_guest_dir):
    w = W.get("loop6")
    with pytest.raises(VpmuError) as e:
        W.run_vpmu(w.guest_path(vpmu_guest_dir), small("loop6"), max_insns=5000)
    assert e.value.status == 103


def test_spec_parsing():
    w, over = W.parse_spec("mmu:mb=16,r=0x2")
    assert w.name == "mmu" and over == {"mb": 16, "r": 2}
    assert W.parse_spec("loop6") == (W.get("loop6"), {})
    for bad in ("mmu:mb", "mmu:mb=x", "mmu:=3", "loop6:n=1.5"):
        with pytest.raises(VpmuError, match="expected NAME:KEY=NUMBER") as e:
            W.parse_spec(bad)
        assert e.value.status == 2


def test_vpmu_times_exclude_the_runtime_load(vpmu_guest_dir):
    """load_runtime runs once per process before any round; a round's start-up (machine set-up
    and boot to 'bench: start') contains its set-up."""
    w = W.get("loop4")
    W.load_runtime(w.guest_path(vpmu_guest_dir))
    assert W.load_runtime(w.guest_path(vpmu_guest_dir)) == 0.0
    m = W.measure(w, small("loop4"), rounds=2, plain=False, guest_dir=vpmu_guest_dir)
    assert m.vpmu_load == 0.0 and len(m.vpmu_setup) == len(m.vpmu_startup) == 2
    assert all(0 < s < b for s, b in zip(m.vpmu_setup, m.vpmu_startup))
    assert m.plain_skipped == "not requested" and m.plain_mips is None


def test_qemu_missing_is_reported(tmp_path):
    assert W.find_qemu(str(tmp_path / "no-such-qemu")) is None


@pytest.mark.qemu
@pytest.mark.parametrize("name", list(SMALL))
def test_workload_runs_on_qemu(vpmu_guest_dir, name):
    qemu = W.find_qemu()
    if qemu is None:
        pytest.skip("qemu-system-aarch64 not installed")
    w = W.get(name)
    q = W.run_qemu(qemu, w.guest_path(vpmu_guest_dir), small(name), timeout=120)
    v = W.run_vpmu(w.guest_path(vpmu_guest_dir), small(name))
    assert q.status == 0 and q.seconds >= 0 and q.startup > 0
    # the same computation: QEMU's TCG PMU counts fewer events (docs/qemu-compat.md), but
    # the results, and the guests' own checks, agree
    for key in ("sum", "bad", "syscalls", "faults", "brks", "udfs", "reclaims"):
        assert q.kv.get(key) == v.kv.get(key), key


@pytest.mark.parametrize("seconds", [0.0, 0.05])
def test_plain_unicorn_is_bounded(vpmu_guest_dir, monkeypatch, seconds):
    """A call that would run for minutes (10^9 iterations of loop6) is stopped by the watchdog,
    also when the stop comes before emu_start has begun (0 s)."""
    w = W.get("loop6")
    v = W.run_vpmu(w.guest_path(vpmu_guest_dir), small("loop6"))
    kv = dict(v.kv, a0=str(10**9))
    monkeypatch.setattr(W, "PLAIN_TIMEOUT", seconds)
    t = time.perf_counter()
    with pytest.raises(VpmuError, match=f"did not return within {seconds:g} s") as e:
        W.run_plain(w.guest_path(vpmu_guest_dir), w.plain, kv)
    assert e.value.status == 101 and time.perf_counter() - t < 30


def test_bench_plan_applies_iterations_scale_and_specs():
    from vpmu import bench
    names = [w.name for w, _ in bench.plan([])]
    assert names == [w.name for w in W.WORKLOADS] and names[0] == "loop10"   # the familiar one first
    p = dict((w.name, a) for w, a in bench.plan(["loop10", "loop6:n=7", "mmu"], iterations=5))
    assert p == {"loop10": {"n": 5}, "loop6": {"k": 6, "n": 7}, "mmu": {"mb": 128, "r": 8, "touch": 16}}
    p = dict((w.name, a) for w, a in bench.plan(["icache", "mmu:r=2"], scale=2))
    assert p["icache"]["n"] == 10_000 and p["mmu"]["r"] == 2
    assert bench.resolve_qemu(None, use=False) == (None, "--no-qemu")
    with pytest.raises(VpmuError, match="--rounds must be 1..100"):
        list(bench.measure(bench.plan(["loop4"]), rounds=0))
