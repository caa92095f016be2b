"""vpmu.policy: explain / lint / diff / export / import / impact, through the real command line
(``vpmu policy ...``), with their output and exit status checked (0 ok, 1 findings, 2 bad input).
"""
from __future__ import annotations

import pytest

from vpmu import policy
from vpmu.api import RunResult
from vpmu.cli import main
from vpmu.filter import EventFilter, parse_filter


def cli(capsys, *argv):
    try:
        rc = main(["policy", *argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def F(*items):
    return [item for i in items for item in ("--filter", i)]


# ---------------------------------------------------------------------------------------------
# explain

def test_explain_member_allow(capsys):
    rc, out, err = cli(capsys, "explain", *F("allow:SW_INCR", "allow:INST_RETIRED", "allow:BR_RETIRED"))
    assert rc == 0 and err == ""
    assert "Default: DENY (set by the first filter, allow:0x0, which is an ALLOW)" in out
    lines = out.splitlines()
    assert "  allow  0x0000         SW_INCR" in lines
    assert "  allow  0x0008         INST_RETIRED" in lines
    assert "  allow  0x0021         BR_RETIRED" in lines
    assert "Everything else: deny" in lines
    assert "Allowed: 3 events; denied: 65533 events" in lines


def test_explain_multiple_and_names(capsys):
    rc, out, _ = cli(capsys, "explain", *F("allow:0-0xF", "deny:6-8"))
    assert rc == 0
    assert "  allow  0x0000-0x0005  (6 events) SW_INCR, L1I_CACHE_REFILL, L1I_TLB_REFILL, " \
           "L1D_CACHE_REFILL, L1D_CACHE, L1D_TLB_REFILL" in out.splitlines()
    assert "  allow  0x0009-0x000F  (7 events) EXC_TAKEN" in out
    assert "Allowed: 13 events; denied: 65523 events" in out


def test_explain_deny_first_and_no_filter(capsys):
    rc, out, _ = cli(capsys, "explain", *F("deny:CPU_CYCLES"), "--pmu-version", "3.0")
    assert "1024 events" in out and "Default: ALLOW" in out
    assert "  deny   0x0011         CPU_CYCLES" in out.splitlines()
    assert "Allowed: 1023 events; denied: 1 events" in out
    rc, out, _ = cli(capsys, "explain")
    assert rc == 0 and "No filter: KVM installs no bitmap" in out


def test_explain_cancel_shows_everything_denied(capsys):
    rc, out, _ = cli(capsys, "explain", *F("allow:0x11", "deny:0x11"))
    assert "Exceptions to the default: none" in out and "Allowed: 0 events" in out


# ---------------------------------------------------------------------------------------------
# lint

def codes(*items, nr=65536):
    return [w.code for w in policy.lint_policy([parse_filter(i) for i in items], nr)]


def test_lint_clean_policy_exit_0(capsys):
    rc, out, _ = cli(capsys, "lint", *F("deny:BR_MIS_PRED"))
    assert rc == 0 and out.startswith("0 warning(s) for 1 filter(s)")
    assert codes() == []


def test_lint_cancel_allow_first(capsys):
    rc, out, _ = cli(capsys, "lint", *F("allow:0x0-0x9", "deny:0x0-0x9"))
    assert rc == 1
    assert ("warning[cancel]: filter #2 deny:0x0-0x9 cancels the first filter allow:0x0-0x9, but "
            "the default that first filter set stays DENY") in out
    assert "the whole event space is denied" in out
    assert codes("allow:0x0-0x9", "deny:0x0-0x9") == ["cancel", "sw-incr", "chain", "cpu-cycles"]


def test_lint_cancel_by_several_filters_and_deny_first():
    assert codes("allow:0x10-0x13", "deny:0x10-0x11", "deny:0x12-0x13")[0] == "cancel"
    ws = policy.lint_policy([parse_filter("deny:0x10"), parse_filter("allow:0x10")], 65536)
    assert [w.code for w in ws] == ["cancel"]
    assert "the default stays ALLOW" in ws[0].message and ws[0].item == 2
    # partial undo is the legitimate "multiple" pattern, not a cancel
    assert "cancel" not in codes("allow:0x0-0xF", "deny:6-8")


def test_lint_sw_incr_chain_cpu_cycles(capsys):
    rc, out, _ = cli(capsys, "lint", *F("allow:INST_RETIRED"))
    assert rc == 1
    assert "warning[sw-incr]: SW_INCR (0x00) is denied" in out and "PMCEID0 bit 0 reads 0" in out
    assert "warning[chain]: CHAIN (0x1E) is denied" in out and "PMCEID0 bit 30" in out
    assert "warning[cpu-cycles]: CPU_CYCLES (0x11) is denied: this also stops the cycle counter " \
           "PMCCNTR_EL0" in out
    assert out.splitlines()[-1].startswith("3 warning(s) for 1 filter(s)")
    assert codes("allow:SW_INCR", "allow:CHAIN", "allow:CPU_CYCLES") == []
    assert codes("deny:CHAIN") == ["chain"]


def test_lint_out_of_space_for_the_pmu_version(capsys):
    rc, out, _ = cli(capsys, "lint", *F("deny:0x10", "deny:0x4000-0x401F"), "--pmu-version", "3.0")
    assert rc == 1
    assert ("warning[out-of-space]: filter #2 deny:0x4000-0x401F is outside the 10-bit event space "
            "of a PMUv3 v3p0 host (0x000-0x3FF): KVM_ARM_VCPU_PMU_V3_FILTER returns EINVAL") in out
    assert codes("deny:0x10", "deny:0x4000-0x401F") == []          # fine on a 16-bit host
    assert codes("deny:none@0x401", nr=1024) == ["out-of-space"]


def test_lint_redundant_and_shadowed():
    assert codes("deny:0x10", "allow:0x20") == ["redundant"]                 # default allow already
    assert codes("deny:0x10", "deny:0x10") == ["redundant"]
    assert codes("deny:0x10", "allow:none") == ["redundant"]
    # #2 changes nothing (default deny); #3 also undoes the first filter entirely: a cancel
    assert codes("allow:0x8", "deny:0x20", "deny:0x0-0x30") == ["redundant", "cancel", "sw-incr",
                                                                "chain", "cpu-cycles"]
    items = ("allow:0x8", "allow:0x11", "deny:0x11", "allow:0x0-0x40")
    ws = policy.lint_policy([parse_filter(i) for i in items], 65536)
    shadowed = [w for w in ws if w.code == "shadowed"]
    assert [w.item for w in shadowed] == [2, 3]     # both rewritten by #4; #1 sets the default
    assert "filter #3 deny:0x11 is fully overridden by later filters" in shadowed[1].message


# ---------------------------------------------------------------------------------------------
# diff

def test_diff_against_no_filter_and_between_policies(capsys):
    rc, out, _ = cli(capsys, "diff", *F("allow:0x8"), "--new-filter", "deny:0x10")
    assert rc == 1
    lines = out.splitlines()
    assert lines[0] == "A: allow:0x8" and lines[1] == "B: deny:0x10"
    assert lines[3].startswith("  0x0000-0x0007  deny -> allow   (8 events) SW_INCR")
    assert lines[4].startswith("  0x0009-0x000F  deny -> allow   (7 events) EXC_TAKEN")
    assert lines[5].startswith("  0x0011-0xFFFF  deny -> allow   (65519 events) CPU_CYCLES")
    assert lines[-1] == "65534 event(s) differ."
    rc, out, _ = cli(capsys, "diff", *F("deny:CPU_CYCLES"))           # vs no filter
    assert rc == 1 and out.splitlines()[1:] == ["B: (no filter)", "Events decided differently (A -> B):",
                                                "  0x0011         deny -> allow   CPU_CYCLES",
                                                "1 event(s) differ."]


def test_diff_identical_decisions(capsys):
    rc, out, _ = cli(capsys, "diff", *F("allow:0-0xF", "deny:6-8"),
                     "--new-filter", "allow:0-5", "--new-filter", "allow:9-0xF")
    assert rc == 0 and "exactly the same events" in out
    rc, out, _ = cli(capsys, "diff", *F("deny:none"))
    assert rc == 0 and "Note: only one of them installs a filter" in out


def test_diff_function_splits_where_a_flips():
    a = [parse_filter("allow:0x10")]
    b = [parse_filter("deny:0x10")]
    assert policy.diff_policies(a, b, 1024) == [(0, 0xF, False, True), (0x10, 0x10, True, False),
                                                (0x11, 0x3FF, False, True)]


# ---------------------------------------------------------------------------------------------
# export / import

def test_export_hex_lines_are_the_structs(capsys):
    rc, out, _ = cli(capsys, "export", *F("allow:0-0xFFFF", "deny:CPU_CYCLES"))
    assert rc == 0
    assert out.splitlines() == ["0000ffff00000000", "ffff010000000000", "1100010001000000"]


def test_export_readable(capsys):
    rc, out, _ = cli(capsys, "export", "--readable", *F("allow:INST_RETIRED-CPU_CYCLES"))
    lines = out.splitlines()
    assert lines[0].split() == ["#", "base_event", "nevents", "action", "bytes", "(LE)", "covers"]
    assert lines[1].startswith("  0  0x0008           10  ALLOW   08 00 0a 00 00 00 00 00  "
                               "0x0008-0x0011 INST_RETIRED, EXC_TAKEN, EXC_RETURN")


def test_export_binary_import_round_trip_byte_exact(capsys, tmp_path):
    f1, txt, f2 = tmp_path / "a.bin", tmp_path / "a.txt", tmp_path / "b.bin"
    items = ("deny:none@0x7", "allow:0-0xFFFF", "deny:0x11", "allow:0x4000-0x401F", "deny:BR_MIS_PRED")
    rc, out, _ = cli(capsys, "export", *F(*items), "-o", str(f1))
    assert rc == 0 and out == f"wrote 6 struct kvm_pmu_event_filter (48 bytes) to {f1}\n"
    data = f1.read_bytes()
    assert data == policy.export_bytes([parse_filter(i) for i in items])
    assert data[:8] == bytes.fromhex("0700000001000000")
    rc, out, _ = cli(capsys, "import", str(f1))
    assert rc == 0
    assert out.splitlines() == [f"# 6 struct kvm_pmu_event_filter from {f1}", "deny:none@0x7",
                                "allow:0x0-0xFFFF", "deny:0x11", "allow:0x4000-0x401F", "deny:0x10"]
    txt.write_text(out)
    rc, _, _ = cli(capsys, "export", "--policy", str(txt), "-o", str(f2))
    assert rc == 0 and f2.read_bytes() == data


def test_import_hex_and_args(capsys, tmp_path):
    h = tmp_path / "p.hex"
    h.write_text("# from export\n0800010000000000\n11 00 01 00 01 00 00 00\n")
    rc, out, _ = cli(capsys, "import", "--args", str(h))
    assert rc == 0 and out == "--filter allow:0x8 --filter deny:0x11\n"
    rc, out, _ = cli(capsys, "explain", "--policy", str(h))        # --policy reads hex too
    assert rc == 0 and "  allow  0x0008         INST_RETIRED" in out


def test_import_nonzero_pad_is_noted(capsys, tmp_path):
    b = tmp_path / "p.bin"
    b.write_bytes(bytes.fromhex("0800010000ff0000"))
    rc, out, err = cli(capsys, "import", str(b))
    assert rc == 0 and out.splitlines()[1] == "allow:0x8" and "nonzero pad bytes" in err


def test_policy_text_file(capsys, tmp_path):
    p = tmp_path / "policy.txt"
    p.write_text("# only retired instructions and branches\nallow:INST_RETIRED\n\n"
                 "allow:BR_RETIRED   # branches\n")
    rc, out, _ = cli(capsys, "explain", "--policy", str(p))
    assert rc == 0 and "Filters: allow:0x8, allow:0x21" in out


# ---------------------------------------------------------------------------------------------
# bad input: one line on stderr, exit 2, no traceback

@pytest.mark.parametrize("argv, message", [
    (["explain", "--filter", "allow:0x12-0x11"], "FIRST 0x12 is greater than LAST 0x11"),
    (["lint", "--filter", "deny:FOO"], "unknown event name 'FOO'"),
    (["explain", "--pmu-version", "3.9"], "unknown --pmu-version '3.9'"),
    (["explain", "--filter", "allow:0x400", "--pmu-version", "3.0"], "KVM_ARM_VCPU_PMU_V3_FILTER would return EINVAL"),
    (["export", "--filter", "allow:0x8", "--policy", "x"], "not both"),
    (["explain", "--policy", "/nonexistent/p.txt"], "cannot read /nonexistent/p.txt"),
    (["import", "/nonexistent/p.bin"], "cannot read"),
    (["diff", "--new-filter", "allow:0x10000"], "outside the 16-bit event space"),
    (["impact", "g.elf", "--filter", "nope"], "bad filter 'nope'"),
])
def test_bad_input(capsys, argv, message):
    rc, out, err = cli(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert err.startswith(f"vpmu policy {argv[0]}: error: ")


def test_bad_files(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("allow:0x8\npermit:3\n")
    rc, _, err = cli(capsys, "lint", "--policy", str(bad))
    assert rc == 2 and f"{bad}:2: bad filter 'permit:3'" in err and err.count("\n") == 1
    short = tmp_path / "short.bin"
    short.write_bytes(b"\x08\x00\x01\x00\x00\x00\x00")
    rc, _, err = cli(capsys, "import", str(short))
    assert rc == 2 and "7 bytes is not a whole number" in err
    act = tmp_path / "act.bin"
    act.write_bytes(bytes.fromhex("0800010002000000"))
    rc, _, err = cli(capsys, "import", str(act))
    assert rc == 2 and "action 2" in err


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["policy", "explain", "--bogus"])
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert err == "vpmu: error: unrecognized arguments: --bogus\n"
    with pytest.raises(SystemExit) as ei:
        main(["policy"])
    assert ei.value.code == 2 and capsys.readouterr().err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# impact

def result(evtyper, evcntr, pmcntenset, pmccntr, n=None):
    return RunResult(exit_status=0, output="", reason="exit", icount=100, cycles=100,
                     pmu={"n": len(evtyper) if n is None else n, "evtyper": evtyper,
                          "evcntr": evcntr, "pmcntenset": pmcntenset, "pmccntr": pmccntr})


U = 1 << 30          # PMEVTYPER.U (exclude EL0): must be masked off to find the event


def test_impact_report_with_fakes():
    without = result([0x21 | U, 0x08 | U, 0x00, 0x1E, 0x11], [10, 500, 3, 1, 900], 0x8000000F, 1000)
    withp = result([0x21 | U, 0x08 | U, 0x00, 0x1E, 0x11], [0, 500, 3, 1, 900], 0x8000000F, 0)
    flt = EventFilter.from_ranges([parse_filter("allow:INST_RETIRED")])
    rep = policy.impact_report(without, withp, flt, guest_pmuver=4)
    assert [(c.index, c.event, c.changed) for c in rep.counters] == [
        (0, 0x21, True), (1, 0x08, False), (2, 0x00, False), (3, 0x1E, False), (4, 0x11, False),
        (31, 0x11, True)]
    assert rep.denied_programmed == [0x21, 0x11]          # BR_RETIRED, CPU_CYCLES (#4 and PMCCNTR)
    assert rep.never_filtered_denied == [0x00, 0x1E]      # SW_INCR, CHAIN: still counted
    assert [c.index for c in rep.changed] == [0, 31]
    assert not rep.counters[4].enabled                    # #4 not in PMCNTENSET 0x8000000F
    text = rep.format()
    assert "#0  0x0021 BR_RETIRED" in text and "10 -> 0  CHANGED" in text
    assert "CC  0x0011 CPU_CYCLES" in text and "1000 -> 0  CHANGED" in text
    assert "Programmed events the policy denies: 0x0021 BR_RETIRED, 0x0011 CPU_CYCLES" in text
    assert "never filtered by KVM" in text and "0x001E CHAIN" in text
    assert text.splitlines()[-1] == "2 counter(s) changed."


def test_impact_report_skips_untouched_counters():
    without = result([0x08, 0, 0, 0], [5, 0, 0, 7], 0x80000001, 9)
    rep = policy.impact_report(without, without, EventFilter(), 4)
    assert [c.index for c in rep.counters] == [0, 3, 31]     # #1, #2: type 0, disabled, zero
    assert rep.changed == [] and rep.format().endswith("0 counter(s) changed.\n")


def test_impact_report_10_bit_guest_mask_and_programming_difference():
    without = result([0xFC11], [5], 0x1, 0)                # 10-bit guest: event 0x011
    withp = result([0x12], [5], 0x1, 0)
    rep = policy.impact_report(without, withp, EventFilter.from_ranges([parse_filter("deny:0x11")], 1024), 1)
    assert rep.counters[0].event == 0x11 and rep.programming_differs == [0]
    assert "differently in the two runs" in rep.format()


def test_impact_cli_uses_the_runner(capsys, monkeypatch):
    import vpmu.api
    calls = []

    def fake_run(elf, filters=(), **opts):
        calls.append((elf, list(filters), opts))
        if filters:
            return result([0x10], [0], 0x80000001, 700)
        return result([0x10], [42], 0x80000001, 700)
    monkeypatch.setattr(vpmu.api, "run", fake_run, raising=False)
    rc, out, _ = cli(capsys, "impact", "guest.elf", *F("deny:BR_MIS_PRED"), "--pmu-version", "3.4",
                     "--max-insns", "1000")
    assert rc == 1
    assert calls == [("guest.elf", [], {"pmu_version": "3.4", "max_insns": 1000}),
                     ("guest.elf", ["deny:0x10"], {"pmu_version": "3.4", "max_insns": 1000})]
    assert "42 -> 0  CHANGED" in out and "Programmed events the policy denies: 0x0010 BR_MIS_PRED" in out


def test_impact_cli_reports_runner_errors(capsys, monkeypatch):
    import vpmu.api

    def failing(elf, filters=(), **opts):
        r = result([], [], 0, 0)
        r.error = "guest faulted at 0x40001000"
        return r
    monkeypatch.setattr(vpmu.api, "run", failing, raising=False)
    rc, out, err = cli(capsys, "impact", "g.elf")
    assert rc == 2 and err == "vpmu policy impact: error: g.elf: guest faulted at 0x40001000\n"
