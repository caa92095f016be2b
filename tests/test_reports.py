"""Machine-readable output (vpmu.report): --json, -x SEP and --csv of `vpmu events`,
`run --summary`, `trace summary` and `policy impact` parse, and say what the text says."""
import csv
import io
import json

import pytest

from vpmu import report
from vpmu.cli import main
from vpmu.pmu import events

from demo_guest import DEMO, demo_readings




def _sv(text: str, sep: str = ",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter=sep))


def test_separated_values_quote_what_needs_it():
    text = report.to_sv(["a", "b", "c"], [["x;y", 'say "hi"', ["p", "q"]], [None, True, 3]], ";")
    assert text.splitlines()[1] == '"x;y";"say ""hi""";p q'
    rows = _sv(text, ";")
    assert rows[0] == {"a": "x;y", "b": 'say "hi"', "c": "p q"} and rows[1] == {"a": "", "b": "true", "c": "3"}
    with pytest.raises(ValueError):
        report.to_sv(["a"], [], "\n")


def test_events_json_and_csv(capsys):
    assert main(["events", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [r["number"] for r in recs] == [e.number for e in events.ALL]
    by = {r["name"]: r for r in recs}
    assert by["PC_WRITE_RETIRED"]["perf"][:2] == ["branch-instructions", "branches"]
    assert by["L1D_CACHE_RD"]["kind"] == "impdef" and not by["L1D_CACHE_RD"]["implemented"]
    assert by["STALL_FRONTEND"]["min_pmu_version"] == "3.1"
    assert main(["events", "--pmu-version", "3.0", "--implemented", "-x", ";"]) == 0
    rows = _sv(capsys.readouterr().out, ";")
    assert rows and all(r["implemented"] == "true" for r in rows)
    assert "STALL_FRONTEND" not in {r["name"] for r in rows}        # PMUv3p1 and later
    assert {r["name"] for r in rows} == {e.name for e in events.ALL if events.implemented_for(e.number, 1)}


def test_events_resolves_spellings(capsys):
    assert main(["events", "--csv", "branches", "r10", "armv8_pmuv3_0/event=0x11/", "l1d_cache_rd"]) == 0
    rows = _sv(capsys.readouterr().out)
    assert [(r["spelling"], int(r["number"]), r["name"]) for r in rows] == [
        ("branches", 0x0C, "PC_WRITE_RETIRED"), ("r10", 0x10, "BR_MIS_PRED"),
        ("armv8_pmuv3_0/event=0x11/", 0x11, "CPU_CYCLES"), ("l1d_cache_rd", 0x40, "L1D_CACHE_RD")]
    assert main(["events", "instructions"]) == 0
    assert capsys.readouterr().out.startswith("instructions = 0x0008  INST_RETIRED")
    assert main(["events", "ref-cycles"]) == 2
    assert "maps no event" in capsys.readouterr().err


def test_run_summary_json_and_csv_match_the_guests_readings(vpmu_guest_dir, capsys):
    demo = str(vpmu_guest_dir / "demo.elf")
    assert main(["run", "--json", demo]) == 0
    cap = capsys.readouterr()
    assert demo_readings(cap.out) == DEMO
    data = json.loads(cap.err)
    assert (data["reason"], data["exit_status"], data["instructions"]) == ("exit", 0, 148693)
    got = {c["event_name"]: c["value"] for c in data["pmu"]["counters"]}
    assert got == DEMO and data["pmu"]["n"] == 6 and not data["pmu"]["pmcr_e"]
    assert main(["run", "-x", "\t", demo]) == 0
    rows = _sv(capsys.readouterr().err, "\t")
    assert {r["event_name"]: int(r["value"]) for r in rows} == DEMO
    assert [r["counter"] for r in rows] == [f"PMEV{i}" for i in range(6)] + ["PMCCNTR"]
    assert all(r["enabled"] == "true" and r["overflowed"] == "false" for r in rows)


def test_run_json_and_csv_exclude_each_other(vpmu_guest_dir, capsys):
    with pytest.raises(SystemExit) as ei:
        main(["run", "--json", "--csv", str(vpmu_guest_dir / "hello.elf")])
    assert ei.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_trace_summary_json_and_csv(tmp_path, vpmu_guest_dir, capsys):
    t = tmp_path / "t.jsonl"
    assert main(["run", "--trace", str(t), str(vpmu_guest_dir / "pmu_overflow_irq.elf")]) == 0
    capsys.readouterr()
    assert main(["trace", "summary", "--json", str(t)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["end"]["type"] == "exit" and d["end"]["status"] == 0 and d["pmu_interrupts"] == 1
    pmev0 = d["counters"][0]
    assert (pmev0["event_name"], pmev0["overflows"]) == ("INST_RETIRED", 1)
    assert main(["trace", "summary", "--csv", str(t)]) == 0
    rows = _sv(capsys.readouterr().out)
    assert rows[0]["event_name"] == "INST_RETIRED" and rows[0]["overflows"] == "1"
    assert int(rows[0]["value"]) == pmev0["value"] and rows[-1]["counter"] == "PMCCNTR"
    # the text is made from the same data
    assert main(["trace", "summary", str(t)]) == 0
    assert f"{pmev0['value']:>20}" in capsys.readouterr().out


def test_policy_impact_json_and_csv(vpmu_guest_dir, capsys):
    demo = str(vpmu_guest_dir / "demo.elf")
    assert main(["policy", "impact", demo, "--filter", "deny:branch-misses", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["changed"] == 1 and d["denied_programmed"] == [{"event": 0x10, "event_name": "BR_MIS_PRED"}]
    ch = [c for c in d["counters"] if c["changed"]]
    assert [(c["counter"], c["decision"], c["without"], c["with_policy"]) for c in ch] == \
        [("PMEV2", "denied", DEMO["BR_MIS_PRED"], 0)]
    assert main(["policy", "impact", demo, "--filter", "deny:branch-misses", "-x", "|"]) == 1
    rows = _sv(capsys.readouterr().out, "|")
    assert {r["event_name"]: int(r["without"]) for r in rows} == DEMO
