"""`vpmu stat` (vpmu.stat): the counts equal what the guest reads itself, the event list,
multiplexing and metrics follow perf, and the table, -x and --json output are perf's."""
import csv
import io
import json

import pytest

from vpmu import stat
from vpmu.cli import main
from vpmu.pmu.perfnames import parse

from demo_guest import DEMO, demo_readings




# ---- the -e list -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, groups", [
    ("instructions,cycles", [["instructions"], ["cycles"]]),
    ("{instructions,cycles},branch-misses", [["instructions", "cycles"], ["branch-misses"]]),
    ("armv8_pmuv3_0/event=0x11,name=cyc/,r10", [["armv8_pmuv3_0/event=0x11,name=cyc/"], ["r10"]]),
    (" cycles:u , {r8,armv8_pmuv3/br_mis_pred/k} ", [["cycles:u"], ["r8", "armv8_pmuv3/br_mis_pred/k"]]),
])
def test_event_lists(text, groups):
    assert stat.split_event_list(text) == groups


@pytest.mark.parametrize("text, message", [
    ("{cycles", "without '}'"), ("cycles}", "without '{'"), ("{}", "empty group"), ("{a,{b}}", "inside"),
    ("armv8_pmuv3_0/event=0x10", "unterminated"), (" , ", "empty event list"),
])
def test_bad_event_lists(text, message):
    with pytest.raises(stat.StatError, match=message):
        stat.split_event_list(text)


def test_plan_keeps_groups_and_order():
    evs = stat.parse_events(["instructions,{cycles,branches},branch-misses,ref-cycles,r8"], 7)
    assert stat.plan(evs, 2) == 3
    assert [(e.name, e.run) for e in evs] == [("instructions", 0), ("cycles", 1), ("branches", 1),
                                              ("branch-misses", 2), ("ref-cycles", -1), ("r8", 2)]
    assert stat.plan(evs, 25) == 1 and {e.run for e in evs if e.supported} == {0}
    with pytest.raises(stat.StatError, match="has 2 events but only 1"):
        stat.plan(evs, 1)
    with pytest.raises(stat.StatError, match="no counters left"):
        stat.plan(evs, 0)


def test_unsupported_events_are_kept():
    evs = stat.parse_events(["ref-cycles,L1-dcache-stores,sw_incr,chain,l1d_cache_rd,stalled-cycles-backend"], 1)
    assert [e.supported for e in evs] == [False] * 6            # STALL_BACKEND: PMUv3p1 and later
    assert "maps no event" in evs[0].reason and "not implemented at this PMU version" in evs[5].reason
    assert "not implemented by vpmu" in evs[4].reason
    assert stat.parse_events(["stalled-cycles-backend"], 4)[0].supported


# ---- metrics ---------------------------------------------------------------------------------

def _report(values: dict, repeat=1):
    evs = []
    for text, v in values.items():
        e = stat.StatEvent(parse(text), 0)
        e.values = [v] * repeat
        evs.append(e)
    return stat.StatReport("g", evs, "enabled", repeat, 1, 25, guest_ns=1000, instructions=10)


def test_perf_metrics():
    rep = _report({"instructions": 300, "cycles": 400, "branches": 50, "branch-misses": 5,
                   "cache-references": 1000, "cache-misses": 3, "stalled-cycles-frontend": 100,
                   "stalled-cycles-backend": 60, "L1-icache-loads": 200, "L1-icache-load-misses": 2,
                   "r8:u": 7})
    m = {e.name: [(x.fmt % x.value, x.unit) for x in stat.metrics(rep, e)] for e in rep.events}
    assert m["instructions"] == [("   0.75 ", "insn per cycle"), ("   0.33 ", "stalled cycles per insn")]
    assert m["branch-misses"] == [("  10.00%", "of all branches")]
    assert m["cache-misses"] == [("   0.300 %", "of all cache refs")]
    assert m["stalled-cycles-frontend"] == [("  25.00%", "frontend cycles idle")]
    assert m["stalled-cycles-backend"] == [("  15.00%", "backend cycles idle")]
    assert m["L1-icache-load-misses"] == [("   1.00%", "of all L1-icache accesses")]
    assert m["cycles"] == [] and m["branches"] == []
    assert m["r8:u"] == []              # EL0-only instructions: no EL0-only cycles to divide by
    text = stat.format_std(rep)
    assert "               300      instructions                     #    0.75  insn per cycle" in text
    assert "#    0.33  stalled cycles per insn" in text


# ---- the command -----------------------------------------------------------------------------

def _table(err: str) -> dict:
    out = {}
    for line in err.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].replace(",", "").isdigit():
            out[parts[1]] = int(parts[0].replace(",", ""))
    return out


def test_stat_counts_equal_the_guests_own_readings(vpmu_guest_dir, capsys):
    """The issue's acceptance: `vpmu stat -e instructions,branch-misses,cycles demo.elf`."""
    assert main(["stat", "-e", "instructions,branch-misses,cycles", str(vpmu_guest_dir / "demo.elf")]) == 0
    cap = capsys.readouterr()
    own = demo_readings(cap.out)
    assert own == DEMO
    assert "Performance counter stats for" in cap.err
    assert _table(cap.err) == {"instructions": own["INST_RETIRED"], "branch-misses": own["BR_MIS_PRED"],
                               "cycles": own["CPU_CYCLES"]}
    line = next(x for x in cap.err.splitlines() if "instructions" in x)
    assert line.rstrip().endswith("#    1.00  insn per cycle")
    assert "seconds time elapsed" in cap.err and "PMCR_EL0.E" in cap.err


def test_stat_x_and_json_parse(vpmu_guest_dir, capsys):
    demo = str(vpmu_guest_dir / "demo.elf")
    ev = "instructions,branch-misses,cycles,branches,ref-cycles"
    assert main(["stat", "-x", ",", "-e", ev, demo]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().err)))
    assert [r[2] for r in rows] == ev.split(",")
    byname = {r[2]: r for r in rows}
    assert int(byname["instructions"][0]) == DEMO["INST_RETIRED"] and byname["instructions"][1] == ""
    assert byname["instructions"][3:] == ["148693", "100.00", "1.00", "insn per cycle"]
    assert int(byname["branch-misses"][0]) == DEMO["BR_MIS_PRED"]
    assert byname["branch-misses"][5:] == [f"{100 * DEMO['BR_MIS_PRED'] / int(byname['branches'][0]):.2f}",
                                           "of all branches"]
    assert byname["ref-cycles"][0] == "<not supported>"
    assert main(["stat", "--json", "-r", "2", "-e", ev, demo]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [o["event"] for o in objs] == ev.split(",")
    o = objs[0]
    assert float(o["counter-value"]) == DEMO["INST_RETIRED"] and o["variance"] == 0
    assert (o["metric-unit"], o["metric-value"], o["pcnt-running"]) == ("insn per cycle", 1.0, 100.0)
    assert objs[-1]["counter-value"] == "<not supported>"


def test_stat_multiplexes_by_running_again(vpmu_guest_dir, capsys):
    """29 guest counters leave 2: five events take three runs; every count is exact."""
    ev = "cycles,instructions,r10,BR_RETIRED,armv8_pmuv3_0/ld_retired/"
    assert main(["stat", "--counters", "29", "-x", ";", "-e", ev, str(vpmu_guest_dir / "demo.elf")]) == 0
    rows = [line.split(";") for line in capsys.readouterr().err.splitlines()]
    assert {r[2]: int(r[0]) for r in rows} == {
        "cycles": DEMO["CPU_CYCLES"], "instructions": DEMO["INST_RETIRED"], "r10": DEMO["BR_MIS_PRED"],
        "BR_RETIRED": DEMO["BR_RETIRED"], "armv8_pmuv3_0/ld_retired/": DEMO["LD_RETIRED"]}
    assert all(r[4] == "100.00" for r in rows)
    assert main(["stat", "--counters", "29", "-r", "2", "-e", ev, str(vpmu_guest_dir / "demo.elf")]) == 0
    err = capsys.readouterr().err
    assert "(2 runs)" in err and "counted in 3 runs" in err and "( +-  0.00% )" in err
    assert "spread is 0 because vpmu is deterministic" in err


def test_stat_window_run_and_modifiers(vpmu_guest_dir, capsys, tmp_path):
    out = tmp_path / "stat.txt"
    assert main(["stat", "--window", "run", "-o", str(out), "-e", "instructions:u,instructions:k,instructions",
                 str(vpmu_guest_dir / "board_el0.elf")]) == 0
    t = _table(out.read_text())
    assert t["instructions:u"] > 0 and t["instructions:u"] + t["instructions:k"] == t["instructions"]


def test_stat_reports_counts_up_to_a_runner_error(vpmu_guest_dir, capsys):
    assert main(["stat", "--window", "run", "--max-insns", "1000", "-x", ",", "-e", "instructions",
                 str(vpmu_guest_dir / "demo.elf")]) == 103
    err = capsys.readouterr().err.splitlines()
    assert err[0].split(",")[:3] == ["1000", "", "instructions"]
    assert err[-1].startswith("vpmu: instruction limit reached")


@pytest.mark.parametrize("argv, message", [
    (["-e", "instructionz"], "did you mean instructions"),
    (["-e", "{cycles,instructions,branches}", "--counters", "29"], "has 3 events but only 2"),
    (["--counters", "31"], "no counters left"),
    (["-r", "0"], "-r must be at least 1"),
    (["-r", "99999999999"], "-r must be at most 100"),             # (ran for ever)
    (["-e", "cycles:G"], "unsupported modifier"),
])
def test_stat_errors_are_one_line(vpmu_guest_dir, capsys, argv, message):
    assert main(["stat", *argv, str(vpmu_guest_dir / "hello.elf")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
