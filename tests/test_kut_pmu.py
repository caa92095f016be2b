"""kvm-unit-tests ``arm/pmu.c`` (with ``arm/unittests.cfg``) reproduced as a real guest,
``guests/src/kut_pmu.c``, on PMU versions 3.0, 3.4, 3.5 and 3.7 with exact expected values.

Every subtest of unittests.cfg is a test here: cycle-counter, pmu-event-introspection,
pmu-event-counter-config, pmu-basic-event-count, pmu-mem-access, pmu-mem-access-reliability,
pmu-sw-incr, pmu-chained-counters, pmu-chained-sw-incr, pmu-chain-promotion (its six steps)
and pmu-overflow-interrupt, each in the "32-bit overflows" and, where the original has one,
the "64-bit overflows" variant, which must report SKIP below PMUv3p5 exactly as the original
skips it.  The guest prints one ``<subtest>.<variant>.<check>=PASS|FAIL`` line per report()
of the original plus the measured values; the tests assert the check names, their outcome and
the values (kvm-pmu.md sections 3 and 4.1 give the rules the expected values follow).

One guest run per PMU version runs all subtests (the empty command line); it is shared by the
tests of that version.  The overflow interrupt subtest is also run alone (``--append
pmu-overflow-interrupt``, as unittests.cfg passes its name) with a trace, to check where the
overflows and the interrupts happened.

Deviations from the original (all in the direction of stricter checks unless noted):
- our model is exact, so next to each original check there is an ``*_exact`` one: exact
  counts (42 instructions/cycles for 20 loop iterations, exactly 20 / COUNT loads, CHAIN
  values, counter values after wrapping), and the overflow interrupt must be taken right after
  the 16th load / 16th PMSWINC write (from the interrupted ELR and x10 of the load loop);
- the CPI check runs with cpi=1 (unittests.cfg passes 0, which only checks "not zero" and
  "fits in 32 bits"); "cycle-counter 0" is still accepted and tested;
- the 100 PMSWINC writes are 100 unrolled ``msr pmswinc_el0`` instead of a C loop, so an
  interrupt's ELR tells how many writes had retired;
- pmu-event-counter-config: the original selects counter 1 through PMSELR (its comment says
  counter 0; kvm-pmu.md 4.1 says 0); we use 1 as the code does, and 0 when N = 1 where the
  original would take an UNDEF;
- pmccntr64_test() of the original is AArch32-only and has no AArch64 counterpart;
- all subtests in one run (for speed) share one vCPU; the original starts a fresh VM per
  subtest.  Every subtest but pmu-basic-event-count begins with pmu_reset() as in the
  original, and basic-event-count resets everything it checks.
"""
from __future__ import annotations

import re

import pytest
from elftools.elf.elffile import ELFFile

from vpmu.pytest_plugin import resolve_guest
from vpmu.testing import assert_irq_follows_overflows, assert_kv, assert_overflows, records

VERSIONS = ["3.0", "3.4", "3.5", "3.7"]
PMUVER = {"3.0": 1, "3.4": 5, "3.5": 6, "3.7": 7}
N = 6                                     # default PMCR_EL0.N
M32, M64 = (1 << 32) - 1, (1 << 64) - 1
PRE_OVERFLOW = {"32": 0xFFFFFFF0, "64": 0xFFFF_FFFF_FFFF_FFF0}
COUNT, MARGIN, COUNT_INT = 250, 100, 1000
PRE_OVERFLOW2_32 = M32 - COUNT - MARGIN   # 0xFFFFFEA1
LC, LP = 0x40, 0x80
MEM_LOOP_INSNS = 5 + 4 * COUNT            # mem_access_loop(COUNT): cycles counted by CPU_CYCLES

_RUNS: dict = {}


def run_all(vpmu_run, version):
    """The whole suite on one PMU version (one guest run, shared by the tests)."""
    if version not in _RUNS:
        _RUNS[version] = vpmu_run("kut_pmu", pmu_version=version)
    return _RUNS[version]


def v3p5(version: str) -> bool:
    return PMUVER[version] >= 6


def cmask(version: str) -> int:
    """pmevcntr_mask(): event counters are 64 bits wide from PMUv3p5."""
    return M64 if v3p5(version) else M32


def checks_of(r, prefix: str) -> dict:
    pat = re.compile(re.escape(prefix) + r"\.([\w.]+)=(PASS|FAIL)$")
    return {m[1]: m[2] for m in map(pat.match, r.output.splitlines()) if m}


def assert_passed(r, prefix: str, checks: list[str]) -> None:
    """The subtest variant passed, with exactly these checks, each PASS."""
    got = checks_of(r, prefix)
    assert list(got) == checks, f"{prefix}: checks {list(got)}, expected {checks}"
    bad = {k: v for k, v in got.items() if v != "PASS"}
    assert not bad, f"{prefix}: failed checks {bad}\n" + "\n".join(
        line for line in r.output.splitlines() if line.startswith(f"# FAIL: {prefix}"))
    assert_kv(r, **{prefix: "PASS"})


def values(prefix: str, **kv) -> dict:
    return {f"{prefix}.{k.replace('__', '.')}": v for k, v in kv.items()}


def variant_or_skip(r, version: str, name: str, variant: str):
    """The prefix of a variant that must run, or None after checking that it was skipped
    like kvm-unit-tests skips it (64-bit overflows need FEAT_PMUv3p5)."""
    prefix = f"{name}.{variant}"
    if variant == "64" and not v3p5(version):
        assert_kv(r, **{prefix: "SKIP"})
        assert f"# SKIP: {prefix}: 64 overflows need FEAT_PMUv3p5" in r.output
        assert not checks_of(r, prefix)
        return None
    return prefix


# ---------------------------------------------------------------------------------------------
# the whole run

@pytest.mark.parametrize("version", VERSIONS)
def test_whole_suite(vpmu_run, version):
    r = run_all(vpmu_run, version)
    assert r.reason == "exit" and r.exit_status == 0, r.output[-3000:]
    assert_kv(r, failures=0, cmdline="", **{"pmu.version": PMUVER[version], "pmu.counters": N,
                                            "pmu.pmcr_ro": N << 11})
    skipped = {line.split("=")[0] for line in r.output.splitlines() if line.endswith("=SKIP")}
    want = set() if v3p5(version) else {f"{t}.64" for t in (
        "pmu-basic-event-count", "pmu-mem-access", "pmu-mem-access-reliability", "pmu-sw-incr",
        "pmu-overflow-interrupt")}
    assert skipped == want
    assert "FAIL" not in r.output


# ---------------------------------------------------------------------------------------------
# one test per subtest (and variant)

@pytest.mark.parametrize("version", VERSIONS)
def test_cycle_counter(vpmu_run, version):
    r = run_all(vpmu_run, version)
    p = "cycle-counter"
    assert_passed(r, p, ["monotonic_exact", "monotonic", "cpi_samples_equal", "cpi"])
    # back-to-back PMCCNTR reads are one instruction apart; i instructions take i cycles
    assert_kv(r, **values(p, cpi_param=1, delta=1),
              **{f"{p}.cycles_{i}": i for i in range(4, 300, 32)})


def test_cycle_counter_as_in_unittests_cfg(vpmu_run):
    """unittests.cfg: ``extra_params = -append 'cycle-counter 0'`` (cpi unknown)."""
    r = vpmu_run("kut_pmu", append="cycle-counter 0")
    assert r.exit_status == 0
    assert_passed(r, "cycle-counter", ["monotonic", "cpi_samples_equal", "cpi"])
    assert_kv(r, **values("cycle-counter", cpi_param=0, delta=1, cycles_292=292), cmdline="cycle-counter 0")
    assert "pmu-event-introspection" not in r.output      # only the selected subtest ran


def test_cycle_counter_cpi_follows_the_cycle_model(vpmu_run):
    """With 2 cycles per instruction the strict check passes for cpi=2 and fails for cpi=1."""
    r = vpmu_run("kut_pmu", append="cycle-counter 2", cycles="base=2")
    assert r.exit_status == 0
    assert_kv(r, **values("cycle-counter", cpi_param=2, delta=2, cycles_4=8, cycles_292=584))
    r = vpmu_run("kut_pmu", append="cycle-counter", cycles="base=2")
    assert r.exit_status == 2                              # monotonic_exact and cpi fail
    assert_kv(r, **values("cycle-counter", monotonic="PASS", monotonic_exact="FAIL", cpi="FAIL"))


@pytest.mark.parametrize("version", VERSIONS)
def test_event_introspection(vpmu_run, version):
    r = run_all(vpmu_run, version)
    p = "pmu-event-introspection"
    assert_passed(r, p, ["required_events"])
    kv = r.kv()
    ceid0, ceid1 = int(kv[f"{p}.pmceid0"], 0), int(kv[f"{p}.pmceid1"], 0)
    common = (ceid0 & M32) | ((ceid1 & M32) << 32)
    for ev in (0x00, 0x08, 0x11, 0x13, 0x1E):            # SW_INCR INST_RETIRED CPU_CYCLES MEM_ACCESS CHAIN
        assert common >> ev & 1, hex(ev)
    stall = (common >> 0x23 & 1, common >> 0x24 & 1)      # required from PMUv3p1
    assert stall == ((0, 0) if version == "3.0" else (1, 1))
    assert ceid1 >> 29 & 7 == 0                           # STALL_SLOT* hidden (PMMIR RAZ)
    if version == "3.0":                                  # 10-bit event space: no 0x4000 events
        assert ceid0 >> 32 == 0 and ceid1 >> 32 == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_event_counter_config(vpmu_run, version):
    r = run_all(vpmu_run, version)
    p = "pmu-event-counter-config"
    assert_passed(r, p, ["pmxevtyper", "pmxevtyper_exact", "pmxevcntr", "unsupported_event_cntr"])
    # event 0x02 (L1I_TLB_REFILL) is the first one PMCEID does not advertise
    assert_kv(r, **values(p, sel=1, typer=0xEA, cntr=0xDEADBEEF, unsupported_event=2))


BASIC_CHECKS = ["pmcntenclr", "pmcr_reset", "cntr0_preset", "cntr1_zero", "pmcntenset_impl", "pmcntenset_01",
                "pmovs_zero", "pmintenclr", "pmintenset_impl", "overflow_0_only", "counts_exact"]


@pytest.mark.parametrize("variant", ["32", "64"])
@pytest.mark.parametrize("version", VERSIONS)
def test_basic_event_count(vpmu_run, version, variant):
    r = run_all(vpmu_run, version)
    p = variant_or_skip(r, version, "pmu-basic-event-count", variant)
    if p is None:
        return
    assert_passed(r, p, BASIC_CHECKS)
    pre = PRE_OVERFLOW[variant]
    # the precise loop (20 iterations: 42 instructions) runs with PMCR = E only, so counter #0
    # overflows at 32 bits in both variants; 64-bit counters keep counting into [63:32]
    assert_kv(r, **values(p, pmcr=(N << 11) | LC | (LP if variant == "64" else 0), pmcntenset_all=(1 << N) - 1,
                          pmintenset=(1 << N) - 1, cntr0=(pre + 42) & cmask(version), cntr1=42, ovs=0x1))


@pytest.mark.parametrize("variant", ["32", "64"])
@pytest.mark.parametrize("version", VERSIONS)
def test_mem_access(vpmu_run, version, variant):
    r = run_all(vpmu_run, version)
    p = variant_or_skip(r, version, "pmu-mem-access", variant)
    if p is None:
        return
    assert_passed(r, p, ["20_accesses", "20_accesses_exact", "overflows", "overflows_exact"])
    wrapped = (PRE_OVERFLOW[variant] + 20) & cmask(version)
    assert_kv(r, **values(p, cntr0=20, cntr1=20, ovf_cntr0=wrapped, ovf_cntr1=wrapped, ovs=0x3))


@pytest.mark.parametrize("variant", ["32", "64"])
@pytest.mark.parametrize("version", VERSIONS)
def test_mem_access_reliability(vpmu_run, version, variant):
    r = run_all(vpmu_run, version)
    p = variant_or_skip(r, version, "pmu-mem-access-reliability", variant)
    if p is None:
        return
    assert_passed(r, p, ["reliable", "reliable_exact"])
    # 100 loops of COUNT loads from PRE_OVERFLOW2: every one counts exactly COUNT
    assert_kv(r, **values(p, min=COUNT, max=COUNT, overflow=0))


@pytest.mark.parametrize("variant", ["32", "64"])
@pytest.mark.parametrize("version", VERSIONS)
def test_sw_incr(vpmu_run, version, variant):
    r = run_all(vpmu_run, version)
    p = variant_or_skip(r, version, "pmu-sw-incr", variant)
    if p is None:
        return
    assert_passed(r, p, ["no_incr_without_e", "cntr0_100", "cntr1_100", "overflow_0"])
    pre = PRE_OVERFLOW[variant]
    # 32-bit variant: 0x54, or 0x1_0000_0054 with 64-bit counters (kvm-pmu.md 6.8)
    assert_kv(r, **values(p, disabled_cntr0=pre, cntr0=(pre + 100) & cmask(version), cntr1=100, ovs=0x1))


@pytest.mark.parametrize("version", VERSIONS)
def test_chained_counters(vpmu_run, version):
    r = run_all(vpmu_run, version)
    p = "pmu-chained-counters.32"
    assert_passed(r, p, ["chain_incr", "chain_incr_ovs", "chain_incr_exact", "chain_set_2", "chain_set_2_ovs",
                         "chain_set_2_exact", "chain_wrapped", "chain_wrapped_ovs", "chain_wrapped_exact"])
    c0 = (PRE_OVERFLOW["32"] + 46) & cmask(version)        # precise loop of 22: 46 cycles
    assert_kv(r, **values(p, a__cntr0=c0, a__cntr1=1, a__ovs=0x1, b__cntr0=c0, b__cntr1=2, b__ovs=0x1,
                          c__cntr0=c0, c__cntr1=0, c__ovs=0x3))
    assert "pmu-chained-counters.64" not in r.output       # 32-bit only, as the original


@pytest.mark.parametrize("version", VERSIONS)
def test_chained_sw_incr(vpmu_run, version):
    r = run_all(vpmu_run, version)
    p = "pmu-chained-sw-incr.32"
    assert_passed(r, p, ["chain_incr", "chain_incr_exact", "chain_overflow"])
    c0 = (PRE_OVERFLOW["32"] + 100) & cmask(version)
    # the CHAIN counter preset to ALL_SET_32 wraps to 0, or reads 0x1_0000_0000 when 64 bits wide
    assert_kv(r, **values(p, a__ovs=0x1, a__cntr0=c0, a__cntr1=1,
                          b__ovs=0x3, b__cntr0=c0, b__cntr1=(M32 + 1) & cmask(version)))


@pytest.mark.parametrize("version", VERSIONS)
def test_chain_promotion(vpmu_run, version):
    r = run_all(vpmu_run, version)
    p = "pmu-chain-promotion.32"
    assert_passed(r, p, ["s1.even_disabled", "s1.exact", "s2.odd_disabled", "s2.exact", "s3.first_exact",
                         "s3.overflow", "s3.no_chain", "s3.exact", "s4.first_exact", "s4.chain", "s4.exact",
                         "s5.first_exact", "s5.chain", "s5.exact", "s6.first_exact", "s6.overflow", "s6.exact"])
    m = cmask(version)
    twice = (PRE_OVERFLOW2_32 + 2 * COUNT) & m             # one loop stays below 2^32, two wrap
    assert PRE_OVERFLOW2_32 + COUNT < 1 << 32
    assert_kv(r, **values(
        p,
        s1__cntr0=0, s1__cntr1=0, s1__ovs=0,                                   # only CHAIN enabled
        s2__cntr0=(PRE_OVERFLOW["32"] + COUNT) & m, s2__cntr1=0, s2__ovs=0x1,  # odd counter disabled
        s3__cntr0=twice, s3__cntr1=0, s3__ovs=0x1,                             # CHAIN disabled for the wrap
        s4__cntr0=twice, s4__cntr1=1, s4__ovs=0x1,                             # CHAIN enabled for the wrap
        s5__first_cycles=MEM_LOOP_INSNS, s5__cntr0=twice, s5__cntr1=1, s5__ovs=0x1,
        s6__cntr0=twice, s6__cntr1=MEM_LOOP_INSNS, s6__ovs=0x1))               # CHAIN -> CPU_CYCLES


OI_CHECKS = {"32": ["a.no_irq_preset", "a.no_irq_counting", "a.exact", "b.irq_0_1", "b.exact", "c.irq_0", "c.exact",
                    "d.irq_0_1", "d.odd_wrapped", "d.exact"],
             "64": ["a.no_irq_preset", "a.no_irq_counting", "a.exact", "b.irq_0_1", "b.exact", "c.irq_0", "c.exact",
                    "d.irq_0", "d.odd_unchanged", "d.exact"]}


@pytest.mark.parametrize("variant", ["32", "64"])
@pytest.mark.parametrize("version", VERSIONS)
def test_overflow_interrupt(vpmu_run, version, variant):
    r = run_all(vpmu_run, version)
    p = variant_or_skip(r, version, "pmu-overflow-interrupt", variant)
    if p is None:
        return
    assert_passed(r, p, OI_CHECKS[variant])
    m, pre = cmask(version), PRE_OVERFLOW[variant]
    after_swinc = (pre + 100) & m
    assert_kv(r, **values(
        p,
        # a: PMINTENSET = 0, both counters overflow silently
        a__cntr0=(pre + COUNT_INT) & m, a__cntr1=after_swinc, a__ovs=0x3,
        # b: one interrupt right after the 16th load (#0), one right after the 16th PMSWINC (#1)
        b__irqs=2, b__irq0__ovs=0x1, b__irq0__loads=16, b__irq1__ovs=0x2, b__irq1__swincs=16, b__cntr1=after_swinc,
        # c: #1 becomes CHAIN: counts the overflow of #0, except with PMCR.LP
        c__irqs=1, c__irq0__ovs=0x1, c__irq0__loads=16, c__cntr1=after_swinc + (variant == "32"),
        # d: #1 = ALL_SET: wraps with #0's overflow (one interrupt for both), or stays with LP
        d__irqs=1, d__irq0__ovs=0x3 if variant == "32" else 0x1, d__irq0__loads=16,
        d__cntr1=0 if variant == "32" else m))


# ---------------------------------------------------------------------------------------------
# the overflow interrupt subtest alone, with a trace

def _symbols(path: str, *names: str) -> list[int]:
    with open(path, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return [symtab.get_symbol_by_name(n)[0]["st_value"] for n in names]


def _overflow_interrupt_trace(vpmu_run, vpmu_guest_dir, version):
    key = ("oi", version)
    if key not in _RUNS:
        _RUNS[key] = vpmu_run("kut_pmu", pmu_version=version, append="pmu-overflow-interrupt")
    r = _RUNS[key]
    ldr, swinc = _symbols(resolve_guest(vpmu_guest_dir, "kut_pmu"), "kut_mem_ldr", "kut_swinc100")
    return r, ldr, swinc


@pytest.mark.parametrize("version", VERSIONS)
def test_overflow_interrupt_trace(vpmu_run, vpmu_guest_dir, version):
    r, ldr, swinc = _overflow_interrupt_trace(vpmu_run, vpmu_guest_dir, version)
    assert r.exit_status == 0 and r.kv()["pmu-overflow-interrupt.32"] == "PASS"
    recs = list(r.trace)
    # per variant: #0 overflows in steps a, b, c, d; #1 in a and b (PMSWINC) and, without LP, in
    # d (CHAIN wrap); 64-bit variant only from PMUv3p5
    variants = ["32", "64"] if v3p5(version) else ["32"]
    assert_overflows(r, counter=0, times=4 * len(variants))
    assert_overflows(r, counter=1, times=3 + 2 * (len(variants) - 1))
    ovf = [i for i, q in enumerate(recs) if q["type"] == "overflow"]
    want = [(0, ldr), (1, swinc + 15 * 4), (0, ldr), (1, swinc + 15 * 4), (0, ldr), (0, ldr), (1, ldr)]
    want64 = [(0, ldr), (1, swinc + 15 * 4), (0, ldr), (1, swinc + 15 * 4), (0, ldr), (0, ldr)]
    got = [(recs[i]["counter"], recs[i]["pc"]) for i in ovf]
    assert got == want + (want64 if len(variants) == 2 else []), "overflowing instruction (the 16th load / PMSWINC)"
    assert records(r, "irq", intid=23) and all(q["intid"] == 23 for q in records(r, "irq"))
    assert len(records(r, "irq")) == 4 * len(variants)      # b: 2, c: 1, d: 1 (both bits at once)
    starts = [0, 7]                                         # index into ovf of each variant's first overflow
    for v, s in enumerate(starts[:len(variants)]):
        end = ovf[starts[v + 1]] if v + 1 < len(variants) else len(recs)
        silent = recs[ovf[s]:ovf[s + 2]]                    # step a: PMINTENSET = 0
        assert not [q for q in silent if q["type"] == "irq"]
        loud = recs[ovf[s + 2]:end]
        # load-driven overflows: the interrupt is taken at the same instruction boundary
        assert_irq_follows_overflows(loud, intid=23, within=0, counters=[0])
        # PMSWINC-driven overflow of #1 in step b: taken right after that MSR (the guest saw
        # swincs=16), at the same icount (the MSR's own retirement)
        assert_irq_follows_overflows(loud, intid=23, within=0, counters=[1])
        for q in loud:
            if q["type"] == "irq":
                assert q["pc"] in (ldr + 4, swinc + 16 * 4)


def test_swinc_overflow_record_has_the_icount_of_its_instruction(vpmu_run, vpmu_guest_dir):
    r, ldr, swinc = _overflow_interrupt_trace(vpmu_run, vpmu_guest_dir, "3.4")
    recs = list(r.trace)
    i = [k for k, q in enumerate(recs) if q["type"] == "overflow" and q["counter"] == 1][1]   # step b
    assert recs[i]["pc"] == swinc + 15 * 4                  # the 16th msr pmswinc_el0
    irq = next(q for q in recs[i:] if q["type"] == "irq")
    assert irq["pc"] == swinc + 16 * 4                      # taken right after it ...
    assert irq["icount"] == recs[i]["icount"]               # ... so at the same icount


# ---------------------------------------------------------------------------------------------
# subtest selection, counter numbers

def test_command_line_selects_one_subtest(vpmu_run):
    r = vpmu_run("kut_pmu", append="pmu-sw-incr")
    assert r.exit_status == 0
    assert_kv(r, cmdline="pmu-sw-incr", failures=0, **{"pmu-sw-incr.32": "PASS", "pmu-sw-incr.64": "PASS"})
    ran = {line.split(".")[0] for line in r.output.splitlines() if line.startswith(("cycle", "pmu-"))}
    assert ran == {"pmu-sw-incr"}


def test_unknown_subtest_aborts(vpmu_run):
    r = vpmu_run("kut_pmu", append="pmu-no-such-test")
    assert r.exit_status == 255 and "Unknown sub-test 'pmu-no-such-test'" in r.output


@pytest.mark.parametrize("n", [0, 1])
def test_few_counters_skip_like_the_original(vpmu_run, n):
    """N = 0: only the cycle counter tests run; N = 1: the tests that need one counter."""
    r = vpmu_run("kut_pmu", counters=n)
    assert r.exit_status == 0
    kv = r.kv()
    runs = {k: v for k, v in kv.items() if re.fullmatch(r"(cycle-counter|pmu-[a-z-]+)(\.(32|64))?", k)}
    need_one = {"pmu-event-introspection", "pmu-event-counter-config", "pmu-mem-access-reliability.32",
                "pmu-mem-access-reliability.64"}
    for name, outcome in runs.items():
        expect = "PASS" if name == "cycle-counter" or (n == 1 and name in need_one) else "SKIP"
        assert outcome == expect, name
    assert len(runs) == 16
    if n == 1:
        assert_kv(r, **{"pmu-event-counter-config.sel": 0, "pmu-mem-access-reliability.32.min": COUNT})
