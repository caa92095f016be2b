"""Hostile input to the runner's front half (issue 13): option values the model cannot hold,
unwritable outputs, malformed --vm documents and traces, huge policies, special files as
outputs, wrong Python values, unbounded traces and output, and a guest forging the runner's
statuses.  Each case ends with its documented status in seconds (the CLI runs in this
process, tests/hostile.py), never 106 and never a traceback.
"""
from __future__ import annotations

import json
import os
import random
import stat
import time
from pathlib import Path

import pytest

import vpmu
from vpmu import errors
from vpmu.config import COUNT_MAX, XEN_DOMID_MAX, CacheModel, TraceLimit
from vpmu.errors import UsageError
from vpmu.filter import FilterRange
from vpmu.policy import lint_policy

from hostile import cli


@pytest.fixture(scope="module")
def hello(vpmu_guest_dir) -> str:
    return str(vpmu_guest_dir / "hello.elf")


# ------------------------------------------------------------------------------ item 4: --cache

@pytest.mark.parametrize("spec, pattern", [
    ("l1d-size=0", r"l1d-size 0 is not a positive multiple of line x ways"),
    ("line=1G", r"line must be a power of two in 4\.\.1M"),
    ("l1d-ways=0", r"l1d-ways must be at least 1"),
    ("l1i-ways=0", r"l1i-ways must be at least 1"),
    ("line=64,l1d-size=64,l1d-ways=4", r"l1d-size 64 is not a positive multiple"),
    ("l1d-size=1G", r"more than 4096 lines"),
    ("l1d-size=99999999999999999999G", r"too large"),
])
def test_cache_geometry_the_model_cannot_hold_is_status_2(hello, spec, pattern):
    """(Were 36,419 'Exception ignored ... ZeroDivisionError' lines from the compiled hook and
    status 0, or 106.)"""
    cli("run", "--cache", spec, hello).assert_error(errors.EXIT_USAGE, pattern)


def test_cache_model_object_is_checked_too(hello):
    with pytest.raises(UsageError, match="l1d-ways must be at least 1"):
        vpmu.run(hello, cache=CacheModel(enabled=True, l1d_ways=0))
    with pytest.raises(UsageError, match="l1d-ways must be at least 1"):
        vpmu.run(hello, cache="l1d-ways=0")


# ------------------------------------------------------------------------------ item 5: ranges

@pytest.mark.parametrize("args, pattern", [
    (["--xen", "--xen-domid", "-1"], r"--xen-domid must be a domain id in 0\.\.0x7fef"),
    (["--xen", "--xen-domid", "0x7FF0"], r"--xen-domid must be a domain id"),
    (["--xen", "--xen-domid", "65535"], r"--xen-domid must be a domain id"),
    (["--max-insns", str(2**64)], r"--max-insns must be at most 2\*\*63-1"),
    (["--max-insns", str(2**63)], r"--max-insns must be at most 2\*\*63-1"),
    (["--trace-sample", str(2**64)], r"--trace-sample must be at most 2\*\*63-1"),
    (["--cycles", f"l1d-refill={2**64}"], r"l1d-refill=\d+ is too large"),
    (["--cycles", "base=0"], r"base must be at least 1"),
    (["--pmu-irq", str(2**64)], r"--pmu-irq \d+ does not fit"),
    (["--trace-limit", "-1"], r"--trace-limit"),
    (["--trace-limit", "12Q"], r"--trace-limit: not a number of records"),
    (["--append", "x" * 70000], r"--append is 70000 characters"),
    (["--append", "a\x01b"], r"--append contains"),
])
def test_out_of_range_numbers_are_status_2(hello, args, pattern):
    cli("run", *args, hello).assert_error(errors.EXIT_USAGE, pattern)


def test_largest_accepted_values_run(hello):
    r = vpmu.run(hello, max_insns=COUNT_MAX, trace_sample=COUNT_MAX, cycles=f"l1d-refill={2**32 - 1}",
                 xen_domid=XEN_DOMID_MAX)
    assert r.exit_status == 0 and r.source == "guest"


@pytest.mark.parametrize("args, pattern", [
    (["sweep", "-q", "--max-insns", str(2**63)], r"--max-insns must be at most"),
    (["sweep", "-q", "--counters", "99"], r"--counters must be in 0\.\.31"),
    (["sweep", "-q", "-j", "-1"], r"--jobs must be in 0\.\.1024"),
    (["sweep", "-q", "-j", "100000"], r"--jobs must be in 0\.\.1024"),
    (["qemu-diff", "--timeout", "nan"], r"--timeout must be more than 0"),
    (["qemu-diff", "--timeout", "inf"], r"--timeout must be more than 0"),
    (["qemu-diff", "--timeout", "0"], r"--timeout must be more than 0"),
    (["bench", "--no-qemu", "--iterations", str(10**23), "loop10"], r"n=\d+ is outside 1\.\.1000000000"),
    (["bench", "--no-qemu", "--rounds", "1001"], r"--rounds must be 1\.\.100"),
])
def test_other_commands_bound_their_numbers(hello, args, pattern):
    """(sweep --max-insns 2**63 failed every job; qemu-diff --timeout nan|inf was 106; bench
    --iterations 1e23 ran for ever.)"""
    t = time.monotonic()
    cli(*args, *([] if args[0] == "bench" else [hello])).assert_error(errors.EXIT_USAGE, pattern)
    assert time.monotonic() - t < 30


# ------------------------------------------------------------------------------ item 6: outputs

@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_trace_write_error_keeps_the_guest_status(hello, tmp_path):
    """(Was 106 after the run: the guest's result was lost.)"""
    status = tmp_path / "status.json"
    o = cli("run", "--trace", "/dev/full", "--status-json", str(status), hello)
    o.assert_no_bug()
    assert o.status == 0 and "answer=0x2a" in o.out
    assert o.err.count("\n") == 1 and "--trace /dev/full: write failed (No space left on device)" in o.err
    s = json.loads(status.read_text())
    assert s["status"] == 0 and s["source"] == "guest" and "write failed" in s["trace_error"]
    r = vpmu.run(hello, trace="/dev/full")
    assert r.exit_status == 0 and r.trace_error and r.trace[-1]["type"] == "exit"


def test_sweep_output_paths_are_checked_before_running(hello, tmp_path):
    """(Was 106 after every job had run.)"""
    t = time.monotonic()
    cli("sweep", "-q", "-j", "1", "--csv", str(tmp_path / "no" / "x.csv"), hello).assert_error(
        errors.EXIT_USAGE, r"--csv .*: cannot write \(No such file or directory\)")
    cli("sweep", "-q", "-j", "1", "--json", str(tmp_path), hello).assert_error(
        errors.EXIT_USAGE, r"--json .*: cannot write")
    assert time.monotonic() - t < 5                  # no guest ran


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_sweep_write_error_after_the_runs_keeps_the_table(hello):
    o = cli("sweep", "-q", "-j", "1", "--csv", "/dev/full", hello)
    o.assert_error(errors.EXIT_USAGE, r"--csv /dev/full: write failed")
    assert "hello.elf" in o.out and "6499" in o.out


def test_status_json_unwritable_is_status_2_before_the_run(hello, tmp_path):
    cli("run", "--status-json", str(tmp_path / "no" / "s.json"), hello).assert_error(
        errors.EXIT_USAGE, r"--status-json .*: cannot write")


# ------------------------------------------------------------------------------ item 8: --vm TOML

@pytest.mark.parametrize("text, pattern", [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", r"nested too deeply"),
    ("a = " + "{x = " * 3000 + "1" + "}" * 3000 + "\n", r"nested too deeply"),
    ("memory = " + "9" * 5000 + "\n", r"Exceeds the limit \(4300 digits\)"),
    ("memory = " + "9" * 100 + "\n", r"outside what the board supports"),
    ("[pmu]\ncounters = " + "9" * 40 + "\n", r"counters|N"),
    ("[pmu]\nirq = " + "9" * 40 + "\n", r"irq|INTID|interrupt"),
])
def test_vm_documents_that_break_the_toml_parser_are_status_2(hello, tmp_path, text, pattern):
    """(Deep nesting was a RecursionError and long integers a ValueError: 106.)"""
    p = tmp_path / "vm.toml"
    p.write_text(text)
    o = cli("run", "--vm", str(p), hello)
    o.assert_no_bug()
    assert o.status in (errors.EXIT_USAGE, errors.EXIT_KVM), o.err
    assert len(o.err.splitlines()) == 1 and __import__("re").search(pattern, o.err), o.err


# ------------------------------------------------------------------------------ item 10: trace tools

def _valid_trace(tmp_path, hello) -> Path:
    p = tmp_path / "good.jsonl"
    assert vpmu.run(hello, trace=str(p)).exit_status == 0
    return p


BAD_TRACES = {
    "empty": (b"", r"empty: no records"),
    "non-utf8": (b"\xff\xfe\n", r"line 1: not UTF-8"),
    "deep-json": (b"[" * 100000 + b"]" * 100000 + b"\n", r"line 1: JSON nested too deeply"),
    "huge-int": (b'{"type":"run","icount":' + b"9" * 5000 + b"}\n", r"line 1: not a trace record \(Exceeds"),
    "not-json": (b"hello\n", r"line 1: not JSON"),
    "no-run-first": (b'{"type":"wfi","icount":0,"pc":0,"idle_cycles":0}\n',
                     r"line 1: a trace starts with a run record"),
    "long-line": (b"x" * ((1 << 20) + 10), r"line 1: longer than"),
}
RUN = {"type": "run", "icount": 0, "version": 1, "image": "x", "pmu_version": "3.7", "counters": 6,
       "pmu_irq": 23, "filters": False, "xen": False}
PMU = {"n": 2, "pmcr": 0, "pmcntenset": 0, "pmintenset": 0, "pmovsset": 0, "pmselr": 0, "pmuserenr": 0,
       "pmccntr": 0, "pmccfiltr": 0, "evcntr": [1, 2], "evtyper": [8, 8], "pmceid0": 0, "pmceid1": 0}
EXIT = {"type": "exit", "icount": 5, "status": 0, "reason": "exit", "cycles": 5, "pmu": PMU}
WRONG_FIELDS = [
    (dict(EXIT, pmu="zz"), r"line 2: exit\.pmu: expected object"),
    (dict(EXIT, pmu=dict(PMU, evcntr=["x"])), r"line 2: exit\.pmu\.evcntr\[0\]: expected integer"),
    (dict(EXIT, pmu=dict(PMU, n=31)), None),                     # n larger than the lists: still a summary
    (dict(EXIT, cycles=-1), r"line 2: exit\.cycles: -1 is outside"),
    (dict(EXIT, cycles=2**64), r"line 2: exit\.cycles: \d+ is outside"),
    (dict(EXIT, icount=True), r"line 2: record\.icount: expected integer"),
    ({"type": "overflow", "icount": 1, "counter": 40, "value": 0, "pc": 0}, r"overflow\.counter: 40 is outside"),
    ({"type": "irq", "icount": 1, "intid": "23", "pc": 0, "from_el": 1}, r"irq\.intid: expected integer"),
    ({"type": 7, "icount": 1}, r"record type must be a string"),
    ({"type": "bogus", "icount": 1}, r"unknown record type 'bogus'"),
    ([1, 2], r"record is not an object"),
    (dict(EXIT, icount=0, status=None), r"exit\.status: expected integer"),
]


@pytest.mark.parametrize("name", sorted(BAD_TRACES))
@pytest.mark.parametrize("command", ["summary", "diff", "plot"])
def test_malformed_trace_files_name_their_first_bad_line(tmp_path, hello, name, command):
    data, pattern = BAD_TRACES[name]
    p = tmp_path / "bad.jsonl"
    p.write_bytes(data)
    args = {"summary": ["trace", "summary", str(p)],
            "diff": ["trace", "diff", str(p), str(p)],
            "plot": ["trace", "plot", str(p), "-o", str(tmp_path / "x.png")]}[command]
    cli(*args).assert_error(errors.EXIT_USAGE, r"invalid trace: " + pattern)


@pytest.mark.parametrize("record, pattern", WRONG_FIELDS, ids=range(len(WRONG_FIELDS)))
def test_records_with_wrong_field_types(tmp_path, record, pattern):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(RUN) + "\n" + json.dumps(record) + "\n")
    o = cli("trace", "summary", str(p))
    if pattern is None:
        o.assert_no_bug()
        assert o.status == 0 and "PMEV1" in o.out
    else:
        o.assert_error(errors.EXIT_USAGE, pattern)


def test_trace_directory_and_missing_file(tmp_path):
    cli("trace", "summary", str(tmp_path)).assert_error(errors.EXIT_USAGE, r"cannot read")
    cli("trace", "summary", str(tmp_path / "none")).assert_error(errors.EXIT_USAGE, r"cannot read")


@pytest.mark.parametrize("args, pattern", [
    (["--width", "0"], r"--width must be 100\.\.10000"),
    (["--width", "-1"], r"--width must be 100\.\.10000"),
    (["--width", "100000"], r"--width must be 100\.\.10000"),
    (["--height", "0"], r"--height must be"),
])
def test_plot_sizes_are_bounded(tmp_path, hello, args, pattern):
    good = _valid_trace(tmp_path, hello)
    cli("trace", "plot", str(good), "-o", str(tmp_path / "x.png"), *args).assert_error(errors.EXIT_USAGE, pattern)


def test_plot_to_a_directory_or_a_full_device(tmp_path, hello):
    pytest.importorskip("matplotlib")
    good = _valid_trace(tmp_path, hello)
    cli("trace", "plot", str(good), "-o", str(tmp_path)).assert_error(errors.EXIT_USAGE, r"-o .*: cannot write")
    if os.path.exists("/dev/full"):
        cli("trace", "plot", str(good), "-o", "/dev/full", "--format", "png").assert_error(
            errors.EXIT_USAGE, r"-o /dev/full: cannot write")


def test_diff_context_cannot_be_negative(tmp_path, hello):
    good = _valid_trace(tmp_path, hello)
    cli("trace", "diff", str(good), str(good), "--context", "-3").assert_error(errors.EXIT_USAGE, r"--context")


# ------------------------------------------------------------------------------ item 11: policy lint

def test_policy_lint_scales_linearly(tmp_path):
    """(8k items took 1.9 s, 32k items 39 s, 200k items did not finish in 120 s.)"""
    rng = random.Random(13)
    items = []
    for _ in range(200_000):
        a = rng.randrange(0x10000)
        items.append(f"{rng.choice(['allow', 'deny'])}:{a:#x}-{min(0xFFFF, a + rng.randrange(300)):#x}")
    p = tmp_path / "big.policy"
    p.write_text("\n".join(items) + "\n")
    t = time.monotonic()
    o = cli("policy", "lint", "--policy", str(p))
    took = time.monotonic() - t
    o.assert_no_bug()
    assert o.status == 1 and o.out.rstrip().endswith("for 200000 filter(s) (16-bit event space of a PMUv3p1+ "
                                                      "host (0x0000-0xFFFF))")
    assert took < 60, took
    # the worst case for range scans: every filter covers the whole space
    t = time.monotonic()
    warns = lint_policy([FilterRange(i % 2, 0, 0xFFFF) for i in range(100_000)], 0x10000)
    assert time.monotonic() - t < 30
    assert sum(w.code == "shadowed" for w in warns) == 100_000 - 2


def test_policy_file_size_is_bounded(tmp_path):
    p = tmp_path / "huge.policy"
    with open(p, "wb") as f:
        f.truncate((16 << 20) + 1)
    cli("policy", "lint", "--policy", str(p)).assert_error(errors.EXIT_USAGE, r"larger than 16 MiB")


# ------------------------------------------------------------------------------ item 12: vpmu dtb -o

def test_dtb_output_through_a_symlink_keeps_the_link(tmp_path):
    target = tmp_path / "target.dtb"
    target.write_bytes(b"old")
    link = tmp_path / "link.dtb"
    link.symlink_to(target)
    assert cli("dtb", "-o", str(link)).status == 0
    assert link.is_symlink() and target.read_bytes()[:4] == b"\xd0\x0d\xfe\xed"


def test_dtb_output_into_a_fifo_is_written_not_replaced(tmp_path):
    import threading
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert cli("dtb", "-o", str(fifo)).status == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got and got[0][:4] == b"\xd0\x0d\xfe\xed"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_dtb_output_to_a_device_is_not_replaced():
    """(As root it replaced /dev/full with a regular file.)"""
    cli("dtb", "-o", "/dev/full").assert_error(errors.EXIT_USAGE, r"cannot write /dev/full: No space left")
    assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)


def test_dtb_output_regular_file_is_replaced_atomically(tmp_path):
    out = tmp_path / "a.dtb"
    out.write_bytes(b"old")
    assert cli("dtb", "-o", str(out)).status == 0
    assert out.read_bytes()[:4] == b"\xd0\x0d\xfe\xed" and sorted(os.listdir(tmp_path)) == ["a.dtb"]


# ------------------------------------------------------------------------------ item 13: the API

def test_api_accepts_a_pathlike_guest(hello):
    r = vpmu.run(Path(hello))
    assert r.exit_status == 0 and "answer=0x2a" in r.output


def test_api_bad_values_raise_vpmu_errors(hello):
    with pytest.raises(UsageError, match="--append is 1048576 characters"):
        vpmu.run(hello, append="x" * (1 << 20))
    with pytest.raises(UsageError, match="--trace-limit"):
        vpmu.run(hello, trace_limit=-5)
    with pytest.raises(TypeError, match="the guest must be a path"):
        vpmu.run(42)                                    # type: ignore[arg-type]


def test_fixture_raises_the_documented_error_for_bad_values(pytester, vpmu_guest_dir):
    """(The fixture let a ZeroDivisionError from the cache model through.)"""
    pytester.makepyfile(f"""
        import pathlib
        import pytest
        from vpmu.errors import UsageError

        def test_bad(vpmu_run):
            with pytest.raises(UsageError, match="l1d-ways must be at least 1"):
                vpmu_run({str(vpmu_guest_dir / 'hello.elf')!r}, cache="l1d-ways=0")

        def test_pathlike(vpmu_run):
            assert vpmu_run(pathlib.Path({str(vpmu_guest_dir / 'hello.elf')!r})).exit_status == 0
        """)
    res = pytester.runpytest_subprocess("-q")
    res.assert_outcomes(passed=2)


# ------------------------------------------------------------------------------ item 14: sizes

def test_trace_limit_in_records_truncates_with_a_final_record(tmp_path, vpmu_guest_dir):
    p = tmp_path / "t.jsonl"
    r = vpmu.run(str(vpmu_guest_dir / "demo.elf"), trace=str(p), trace_pmu_regs=True, trace_limit=10)
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    assert [x["type"] for x in lines[-2:]] == ["truncated", "exit"] and len(lines) == 12
    assert lines[-2]["records"] == 10 and lines[-2]["limit"] == "10 records"
    assert r.trace == lines and r.exit_status == 0
    o = cli("trace", "summary", str(p))
    assert o.status == 0 and "the trace limit (10 records) was reached" in o.out


def test_trace_limit_in_bytes(tmp_path, vpmu_guest_dir):
    p = tmp_path / "t.jsonl"
    o = cli("run", "--trace", str(p), "--trace-pmu-regs", "--trace-limit", "2KiB", str(vpmu_guest_dir / "demo.elf"))
    assert o.status == 0
    text = p.read_text()
    lines = text.splitlines()
    assert json.loads(lines[-2])["type"] == "truncated" and json.loads(lines[-1])["type"] == "exit"
    assert len(text) - len(lines[-1]) - len(lines[-2]) - 2 <= 2048


def test_default_trace_limit_bounds_a_sampled_run(vpmu_guest_dir):
    """--trace-sample 1 wrote a record per instruction without end (835 MB for 2x10^7)."""
    r = vpmu.run(str(vpmu_guest_dir / "demo.elf"), trace_sample=1, trace_limit=20_000)
    assert len(r.trace) == 20_002 and r.trace[-2]["type"] == "truncated" and r.trace[-1]["type"] == "exit"
    assert TraceLimit().records == TraceLimit.DEFAULT_RECORDS == 1_000_000


def test_sampling_stops_at_the_trace_limit(vpmu_guest_dir):
    """Past the limit no sample is recorded, so none is asked for: 5x10^6 instructions with
    --trace-sample 1 run at full speed after the first 1000 records (a Python call per
    instruction before)."""
    t = time.monotonic()
    r = vpmu.run(str(vpmu_guest_dir / "bench.elf"), append="n=500000", trace_sample=1, trace_limit=1000)
    assert r.exit_status == 0 and r.icount > 5_000_000
    assert len(r.trace) == 1002 and r.trace[-2]["type"] == "truncated"
    assert time.monotonic() - t < 60


def test_output_is_stored_compactly(tmp_path):
    """RunResult keeps the guest's output as bytes (was a list of one-byte objects, 85 bytes
    per byte of output) and decodes it once, on first use."""
    r = vpmu.api.RunResult(0, output=bytearray(b"x" * (4 << 20)) + b"\xff")
    assert isinstance(r.output_bytes, bytes) and len(r.output_bytes) == (4 << 20) + 1
    assert r._text is None
    assert r.output.endswith("x\ufffd") and r.output is r.output


# ------------------------------------------------------------------------------ item 15: statuses

def test_status_json_says_who_chose_the_status(tmp_path, vpmu_guest_dir):
    s = tmp_path / "s.json"
    o = cli("run", "--status-json", str(s), "--max-insns", "100", str(vpmu_guest_dir / "hello.elf"))
    o.assert_error(errors.EXIT_INSN_LIMIT, r"instruction limit reached")
    got = json.loads(s.read_text())
    assert got["status"] == 103 and got["source"] == "runner" and "instruction limit" in got["error"]
    o = cli("run", "--status-json", str(s), "--counters", "99", str(vpmu_guest_dir / "hello.elf"))
    o.assert_error(errors.EXIT_USAGE, r"--counters")
    assert json.loads(s.read_text())["source"] == "runner"


def test_a_guest_exit_status_of_106_is_marked_as_the_guests(tmp_path, vpmu_guest_dir):
    """The convention stays (the guest owns the exit status), but the runner's own failures
    always print their line and --status-json / the trace tell the two apart."""
    s, t = tmp_path / "s.json", tmp_path / "t.jsonl"
    o = cli("run", "--status-json", str(s), "--trace", str(t), "--append", "exit=106",
            str(vpmu_guest_dir / "board_exit.elf"))
    assert o.status == 106 and o.err == ""
    got = json.loads(s.read_text())
    assert got == {"status": 106, "source": "guest", "reason": "exit", "error": None, "icount": got["icount"],
                   "trace_error": None}
    last = json.loads(t.read_text().splitlines()[-1])
    assert last["type"] == "exit" and last["status"] == 106


def test_error_record_carries_the_runner_status(tmp_path, vpmu_guest_dir):
    r = vpmu.run(str(vpmu_guest_dir / "hello.elf"), max_insns=100)
    assert r.source == "runner" and r.trace[-1]["type"] == "error" and r.trace[-1]["status"] == 103
