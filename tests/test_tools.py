"""`vpmu trace`, `vpmu qemu-diff`, `vpmu bench`, tools/ and the pytest plugin, on real runs (sweeps:
test_sweep.py; trace plots: test_trace_plot.py)."""
import json
import shutil
import struct
import sys

import pytest

from vpmu.cli import main


@pytest.fixture(scope="module")
def traces(tmp_path_factory, vpmu_guest_dir):
    d = tmp_path_factory.mktemp("traces")
    g = str(vpmu_guest_dir / "pmu_overflow_irq.elf")
    a, b = d / "a.jsonl", d / "b.jsonl"
    assert main(["run", "--trace", str(a), "--trace-sample", "20", g]) == 0
    assert main(["run", "--trace", str(b), "--pmu-version", "3.0", g]) == 0
    return a, b


def test_trace_summary(traces, capsys):
    capsys.readouterr()
    assert main(["trace", "summary", str(traces[0])]) == 0
    out = capsys.readouterr().out
    assert "exit: exit status 0" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("PMEV0"))
    assert "INST_RETIRED (0x8)" in line and line.split()[-1] == "1"      # one overflow
    assert "interrupts on the PMU INTID 23: 1" in out


def test_trace_diff(traces, capsys):
    capsys.readouterr()
    assert main(["trace", "diff", str(traces[0]), str(traces[0])]) == 0
    assert "traces agree" in capsys.readouterr().out
    assert main(["trace", "diff", str(traces[0]), str(traces[1])]) == 1
    out = capsys.readouterr().out
    # the run headers differ (reported first); the behaviour first differs at the overflow:
    # a 64-bit counter (3.7) reads 2**32 after it, a 32-bit one (3.0) wraps to 0
    assert "configurations differ: pmu_version 3.7 vs 3.0" in out
    assert "first divergence at record 0" in out and '"type":"overflow"' in out


def test_trace_plot_is_a_png_of_the_requested_size(traces, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "t.png"
    assert main(["trace", "plot", str(traces[0]), "-o", str(png), "--width", "640", "--height", "480"]) == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (640, 480)


def test_trace_sample_records(traces):
    from vpmu.trace import read
    recs = list(read(str(traces[0])))
    samples = [r for r in recs if r["type"] == "sample"]
    assert samples and all(r["icount"] >= 20 * (k + 1) for k, r in enumerate(samples))
    assert all(len(r["evcntr"]) == 6 for r in samples)


@pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None,
                    reason="qemu-system-aarch64 is not installed: the QEMU differential check needs it")
def test_qemu_diff(capsys, vpmu_guest_dir):
    assert main(["qemu-diff", str(vpmu_guest_dir / "exceptions.elf")]) == 0
    assert "identical" in capsys.readouterr().out
    # QEMU's TCG PMU has no BR_RETIRED and reports IDCODE/IMP in PMCR (docs/qemu-compat.md)
    assert main(["qemu-diff", str(vpmu_guest_dir / "pmu_smoke.elf")]) == 1
    out = capsys.readouterr().out
    assert "-br=20" in out and "+br=0" in out
    assert main(["qemu-diff", str(vpmu_guest_dir / "pmu_smoke.elf"), "--ignore", "br", "--ignore", "pmcr"]) == 0


def test_plugin_failure_message_shows_the_differing_record(pytester, vpmu_guest_dir):
    pytester.makepyfile(f"""
        from vpmu.testing import assert_overflows, assert_traces_agree

        def test_overflow_count(vpmu_run):
            r = vpmu_run({str(vpmu_guest_dir / 'pmu_overflow_irq.elf')!r})
            assert_overflows(r, counter=0, times=3)

        def test_agree(vpmu_run):
            a = vpmu_run({str(vpmu_guest_dir / 'pmu_overflow_irq.elf')!r})
            b = vpmu_run({str(vpmu_guest_dir / 'pmu_overflow_irq.elf')!r}, pmu_version="3.4")
            assert_traces_agree(a, b)
    """)
    res = pytester.runpytest_subprocess("-q", "-p", "vpmu")
    res.assert_outcomes(failed=2)
    out = res.stdout.str()
    assert "counter 0 overflowed 1 time(s), expected 3" in out
    assert '>> [1] {"type":"overflow"' in out          # the record the count disagrees with, marked
    # the run headers (configurations) are not compared: the overflow's value differs first
    # (64-bit counters on 3.7, 32-bit on 3.4)
    assert "traces differ at record 0" in out
    assert '>> [0] {"type":"overflow","icount":6297,"counter":0,"value":4294967296' in out
    assert '>> [0] {"type":"overflow","icount":6297,"counter":0,"value":0,' in out


def test_bench_reports_mips_ratio_and_exact_counts(capsys, vpmu_guest_dir):
    """`vpmu bench loop10` on a short loop: the report's shape and the loop's counts (10
    instructions, 1 branch, 2 loads, 2 stores, 4 accesses per iteration; the timing itself is
    not tested)."""
    rc = main(["bench", "loop10", "--rounds", "2", "--iterations", "20000", "--no-qemu",
               "--guest-dir", str(vpmu_guest_dir)])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("loop10:") == 1 and "2 rounds" in out and "MIPS" in out and "median of 2 rounds" in out
    ratio = float(out.split("ratio:")[1].split()[0])
    assert ratio > 0
    assert "inst=200007 cpu_cycles=200007 br=20002 ld=40000 st=40000 mem=80000 cycles=200007" in out
    assert "    200007 instructions" in out and "    200003 instructions" in out
    assert "machine set-up" in out and "qemu : skipped: --no-qemu" in out
    assert "workload " not in out                   # one workload: no summary table


def test_bench_runs_named_workloads_with_arguments_and_writes_json(capsys, vpmu_guest_dir, tmp_path):
    """Several workloads, one with guest arguments: a report each, the summary table, and the
    JSON file with the same figures; --iterations sizes only the loops."""
    js = tmp_path / "bench.json"
    rc = main(["bench", "loop6", "exceptions:n=40,k=40", "--rounds", "1", "--iterations", "3000", "--no-qemu",
               "--guest-dir", str(vpmu_guest_dir), "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "loop6:" in out and "exceptions:" in out and "plain: skipped: needs the board" in out
    table = out[out.index("workload "):].splitlines()
    assert [r.split()[0] for r in table] == ["workload", "loop6", "exceptions"]
    assert table[1].split()[1] == str(6 * 3000 + 7)
    doc = json.loads(js.read_text())
    assert doc["rounds"] == 1 and doc["qemu"] is None and doc["qemu_skipped"] == "--no-qemu"
    loop6, exc = doc["workloads"]
    assert loop6["args"] == {"k": 6, "n": 3000} and loop6["counts"]["inst"] == 18007 and loop6["plain_ratio"] > 0
    assert exc["args"] == {"n": 40, "k": 40} and exc["plain_ratio"] is None and "VBAR_EL1" in exc["plain_skipped"]
    assert len(exc["vpmu_setup"]) == 1 and exc["setup_time"] < exc["startup_time"]


def test_bench_json_to_stdout_only(capsys, vpmu_guest_dir):
    assert main(["bench", "loop4:n=1000", "--rounds", "1", "--no-qemu", "--guest-dir", str(vpmu_guest_dir),
                 "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [w["workload"] for w in doc["workloads"]] == ["loop4"] and doc["workloads"][0]["counts"]["st"] == 0


def test_bench_says_why_qemu_is_skipped(capsys, vpmu_guest_dir, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert main(["bench", "loop4:n=1000", "--rounds", "1", "--guest-dir", str(vpmu_guest_dir)]) == 0
    assert "qemu : skipped: qemu-system-aarch64 not found on PATH" in capsys.readouterr().out


@pytest.mark.qemu
def test_bench_compares_with_qemu(capsys, vpmu_guest_dir):
    if shutil.which("qemu-system-aarch64") is None:
        pytest.skip("qemu-system-aarch64 not installed")
    assert main(["bench", "loop6:n=3000", "--rounds", "1", "--guest-dir", str(vpmu_guest_dir)]) == 0
    out = capsys.readouterr().out
    assert "TCG -icount shift=0" in out and "ratio to QEMU:" in out


def test_bench_list(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("loop10", "loop6", "loop4", "mmu", "icache", "timer_syscalls", "exceptions"):
        assert f"\n{name}: " in "\n" + out
    assert "mb=128 (1..1024)" in out and "plain Unicorn: no (needs the board" in out


@pytest.mark.parametrize("args, message", [
    (["--rounds", "0"], "--rounds must be 1..100"),
    (["--rounds", "101"], "--rounds must be 1..100"),
    (["--iterations", "0"], "n=0 is outside 1..1000000000"),
    (["--iterations", "10000000000"], "n=10000000000 is outside"),
    (["--scale", "0"], "--scale must be a number in"),
    (["--scale", "nan"], "--scale must be a number in"),
    (["--scale", "1e9"], "--scale must be a number in"),
    (["nope"], "unknown workload 'nope'"),
    (["mmu:mb=2048"], "mb=2048 is outside 1..1024"),
    (["mmu:size=1"], "no argument 'size'"),
    (["loop6:n=abc"], "expected NAME:KEY=NUMBER"),
    (["mmu", "--iterations", "5"], "--iterations sizes the loop workloads"),
    (["--qemu", "/nonexistent/qemu"], "--qemu /nonexistent/qemu: not found"),
    (["--json", ""], "--json needs a file name"),
    (["--json", "/nonexistent/dir/x.json"], "--json /nonexistent/dir/x.json:"),
])
def test_bench_rejects_bad_options(capsys, vpmu_guest_dir, args, message):
    """Every bad value: one line, exit 2, before any round runs."""
    assert main(["bench", "--guest-dir", str(vpmu_guest_dir), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_bench_missing_guests(capsys, tmp_path):
    assert main(["bench", "loop6", "--guest-dir", str(tmp_path), "--no-qemu"]) == 101
    assert "bench_loops.elf: not found" in capsys.readouterr().err


def test_tools_startup_breakdown(vpmu_guest_dir):
    import subprocess
    root = vpmu_guest_dir.parent.parent
    p = subprocess.run([sys.executable, str(root / "tools" / "startup.py"), str(vpmu_guest_dir / "hello.elf"),
                        "--repeat", "1"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "native hooks (cached)" in p.stdout and "fastest of each phase" in p.stdout


def test_tools_profile_hooks_demangles_numba_names():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "tools" / "profile_hooks.py"
    spec = importlib.util.spec_from_file_location("profile_hooks", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.demangle("_ZN4vpmu3pmu5hooks5_fastB2v7B36c8tJTIeFIjxB2IKSgI4CrvQCltYEAA_3d_3dE") == "hooks._fast"
    assert mod.demangle("cfunc._ZN4vpmu3pmu5hooks10block_hookB2v9B3xyz") == "cfunc.hooks.block_hook"
    assert mod.demangle("store_helper") == "store_helper"
