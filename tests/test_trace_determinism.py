"""``--trace FILE`` (JSON Lines): the same guest gives the same bytes, run after run and
process after process; every record has a type and an icount that never decreases; the
exceptions taken, the interrupts delivered and the exit (or the runner's error) are in it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import vpmu
from vpmu import trace as T

# guest, options, how the run ends
CASES = [
    ("board_irq", {}, "exit"),
    ("board_timer", {}, "exit"),
    ("board_el0", {}, "exit"),
    ("board_sp0", {}, "exit"),
    ("exceptions", {}, "exit"),
    ("pmu_overflow_irq", {}, "exit"),
    ("board_exit", {"append": "psci=off"}, "exit"),
    ("board_fault_loop", {}, "error"),
    ("board_wfi_deadlock", {}, "error"),
    ("board_spin", {"max_insns": 20_000}, "error"),
]


def api_trace(path, guest_path, **options) -> bytes:
    vpmu.run(str(guest_path), trace=str(path), **options)
    return path.read_bytes()


@pytest.mark.parametrize("guest, options, end", CASES, ids=[c[0] for c in CASES])
def test_same_bytes_twice(tmp_path, vpmu_guest_dir, guest, options, end):
    elf = vpmu_guest_dir / f"{guest}.elf"
    a = api_trace(tmp_path / "a.jsonl", elf, **options)
    b = api_trace(tmp_path / "b.jsonl", elf, **options)
    assert a == b
    recs = list(T.read(str(tmp_path / "a.jsonl")))           # validates schema and icount order
    assert recs[0]["type"] == "run" and recs[-1]["type"] == end
    assert len(recs) >= 2


def _cli(trace, guest, *args):
    return subprocess.run([sys.executable, "-m", "vpmu", "run", "--trace", str(trace), *args, str(guest)],
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("guest", ["board_irq", "board_el0"])
def test_same_bytes_across_processes(tmp_path, vpmu_guest_dir, guest):
    elf = vpmu_guest_dir / f"{guest}.elf"
    p1 = _cli(tmp_path / "1.jsonl", elf)
    p2 = _cli(tmp_path / "2.jsonl", elf)
    assert p1.returncode == p2.returncode == 0
    assert p1.stdout == p2.stdout
    assert (tmp_path / "1.jsonl").read_bytes() == (tmp_path / "2.jsonl").read_bytes()
    # and the in-process API writes the same bytes as the CLI
    assert api_trace(tmp_path / "3.jsonl", elf) == (tmp_path / "1.jsonl").read_bytes()


def test_records_are_well_formed(tmp_path, vpmu_guest_dir):
    raw = api_trace(tmp_path / "t.jsonl", vpmu_guest_dir / "board_irq.elf").decode()
    assert raw.endswith("\n")
    last = -1
    for line in raw.splitlines():
        rec = json.loads(line)
        assert list(rec)[:2] == ["type", "icount"]             # fixed key order: type, icount first
        assert rec["type"] in T.SCHEMA
        assert isinstance(rec["icount"], int) and rec["icount"] >= last
        last = rec["icount"]
        assert line == json.dumps(rec, separators=(",", ":"))  # compact, one object per line


def test_exceptions_interrupts_and_exit_are_recorded(tmp_path, vpmu_guest_dir):
    r = vpmu.run(str(vpmu_guest_dir / "board_el0.elf"), trace=str(tmp_path / "t.jsonl"))
    recs = list(T.read(str(tmp_path / "t.jsonl")))
    assert recs == r.trace                                     # the file is the API's record list
    kinds = [x["kind"] for x in recs if x["type"] == "exception"]
    assert kinds.count("svc") == 9 and {"brk", "undef", "data_abort", "prefetch_abort"} <= set(kinds)
    irq = [x for x in recs if x["type"] == "irq"]
    assert [(x["intid"], x["from_el"]) for x in irq] == [(7, 0)]
    ex = recs[-1]
    assert ex["type"] == "exit" and ex["status"] == 0 and ex["reason"] == "exit" and ex["icount"] == r.icount
    for x in recs:
        if x["type"] == "exception":
            assert {"esr", "elr", "far", "from_el", "vector"} <= set(x) and x["icount"] > 0


def test_error_record_names_reason_and_pc(tmp_path, vpmu_guest_dir):
    r = vpmu.run(str(vpmu_guest_dir / "board_spin.elf"), trace=str(tmp_path / "t.jsonl"), max_insns=20_000)
    assert r.exit_status == 103
    last = list(T.read(str(tmp_path / "t.jsonl")))[-1]
    assert last["type"] == "error" and last["icount"] == 20_000
    assert last["reason"] == r.error and f"at PC {last['pc']:#x}" in r.error


def test_different_runs_differ(tmp_path, vpmu_guest_dir):
    """Determinism is not blindness: a different exit code changes the trace."""
    elf = vpmu_guest_dir / "board_exit.elf"
    a = api_trace(tmp_path / "a.jsonl", elf, append="exit=1")
    b = api_trace(tmp_path / "b.jsonl", elf, append="exit=2")
    assert a != b
