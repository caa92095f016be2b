"""Sweeps (vpmu.sweep, vpmu sweep): executors (Dask included), checks before any run, the long
CSV, progress output, the HTML report."""
import csv
import html.parser
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import pytest

import vpmu
from vpmu import sweeps as S
from vpmu.cli import main
from vpmu.errors import UsageError
from vpmu.kvm import KvmAttrError

ROOT = Path(__file__).resolve().parent.parent
GUESTS = ("pmu_smoke", "hello", "ev_branches", "pmu_filter")
POLICIES = {"none": [], "nobr": ["deny:BR_RETIRED"], "inst": ["allow:INST_RETIRED"]}


@pytest.fixture(scope="module")
def guests(vpmu_guest_dir):
    return [str(vpmu_guest_dir / f"{g}.elf") for g in GUESTS]


@pytest.fixture(scope="module")
def local_rows(guests):
    return vpmu.sweep(guests, POLICIES)


def _row(rows, guest, policy):
    return next(r for r in rows if r.guest == f"{guest}.elf" and r.policy == policy)


def test_local_rows_are_the_runs_counts(local_rows):
    """4 guests x 3 policies, in (guest, policy) order, with each counter named by its event."""
    assert [(r.guest, r.policy) for r in local_rows] == [(f"{g}.elf", p) for g in GUESTS for p in POLICIES]
    smoke = _row(local_rows, "pmu_smoke", "none")
    # pmu_smoke: 42 instructions (msr pmcr ... 20 x (subs; b.gt) ...), 20 branches, cycles = instructions
    assert [(c.counter, c.event, c.value) for c in smoke.counters] == [
        ("PMEV0", "INST_RETIRED", 42), ("PMEV1", "CPU_CYCLES", 42), ("PMEV2", "BR_RETIRED", 20),
        ("PMCCNTR", "CPU_CYCLES", 42)]
    assert smoke.value("BR_RETIRED") == 20 and _row(local_rows, "pmu_smoke", "nobr").value("BR_RETIRED") == 0
    only_inst = _row(local_rows, "pmu_smoke", "inst")          # allow-list: everything else denied
    assert only_inst.value("INST_RETIRED") == 42 and only_inst.value("CPU_CYCLES") == 0
    assert _row(local_rows, "hello", "none").counters == ()    # a guest that never enables a counter
    assert all(r.status == 0 and not r.error for r in local_rows)


def test_a_sweep_of_4_guests_x_3_policies_on_a_dask_local_cluster_gives_the_local_rows(guests, local_rows):
    distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install "
                                                            "'vpmu[dask]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c, \
            distributed.Client(c) as client, distributed.get_task_stream(client) as stream:
        rows = vpmu.sweep(guests, POLICIES, executor=client.get_executor(pure=False))
    assert rows == local_rows
    assert len(stream.data) == 12                       # every run was a task on the cluster


def test_the_dask_command_line_on_a_local_cluster_of_processes(tmp_path, vpmu_guest_dir):
    """``vpmu sweep --dask local``: the jobs cross a process boundary (pickled) and give the
    same long CSV as the local run."""
    pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'vpmu[dask]')")
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    args = [sys.executable, "-m", "vpmu", "sweep", g, "--filters", "nobr=deny:BR_RETIRED", "-q", "-j", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    local = subprocess.run(args + ["--csv", str(tmp_path / "local.csv")], capture_output=True, text=True,
                           env=env, timeout=300)
    dask = subprocess.run(args + ["--dask", "local", "--csv", str(tmp_path / "dask.csv")], capture_output=True,
                          text=True, env=env, timeout=300)
    assert local.returncode == 0 and dask.returncode == 0, (local.stderr, dask.stderr)
    assert local.stdout == dask.stdout
    assert (tmp_path / "dask.csv").read_text() == (tmp_path / "local.csv").read_text()


def test_threads_and_pickled_jobs_give_the_same_rows(guests, local_rows):
    jobs = S.plan(guests, POLICIES)
    assert pickle.loads(pickle.dumps(jobs)) == jobs
    with ThreadPoolExecutor(max_workers=3) as ex:
        assert S.run_jobs(jobs, executor=ex) == local_rows


class _Refusing(Executor):
    def submit(self, fn, /, *args, **kwargs):
        raise AssertionError("a job was submitted before the options were checked")


@pytest.mark.parametrize("kw, policies, error, message", [
    ({"pmu_version": "9.9"}, POLICIES, UsageError, "--pmu-version: unknown version '9.9'"),
    ({"pmu_versoin": "3.5"}, POLICIES, TypeError, "did you mean 'pmu_version'?"),
    ({"counters": 40}, POLICIES, UsageError, "--counters must be in 0..31"),
    ({"memory": "3K"}, POLICIES, UsageError, "--memory"),
    ({}, {"none": [], "bad": ["deny:NO_SUCH_EVENT"]}, UsageError, "NO_SUCH_EVENT"),
    ({"pmu_version": "3.0"}, {"big": ["deny:0x4000"]}, KvmAttrError, "policy 'big': command line: "
                                                                    "KVM_ARM_VCPU_PMU_V3_FILTER"),
    ({"no_pmu": True}, {"none": [], "f": ["deny:0x10"]}, KvmAttrError, "ENODEV"),
    ({}, {"a": "deny:0x10"}, UsageError, "not the string"),
    ({}, [("a", []), ("a", ["deny:0x10"])], UsageError, "'a' given more than once"),
    ({"trace": "t.jsonl"}, POLICIES, UsageError, "use {guest} and {policy}"),
    ({"trace": "{nope}.jsonl"}, POLICIES, UsageError, "only {guest} and {policy}"),
])
def test_everything_is_checked_before_any_job_starts(guests, kw, policies, error, message):
    with pytest.raises(error, match=None) as e:
        vpmu.sweep(guests, policies, executor=_Refusing(), **kw)
    assert message in str(e.value)


def test_a_guest_that_cannot_be_loaded_fails_before_any_job(guests, tmp_path):
    bad = tmp_path / "empty.elf"
    bad.write_bytes(b"")
    with pytest.raises(vpmu.errors.ImageError, match="empty file"):
        vpmu.sweep(guests + [str(bad)], POLICIES, executor=_Refusing())


def test_every_run_option_applies_to_every_run(vpmu_guest_dir, tmp_path):
    """Options beyond the old three: a cycle model, fewer counters, the run options' own filter
    (applied before the policy's), and a trace per run from a pattern."""
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    rows = vpmu.sweep([g], {"none": [], "nobr": ["deny:BR_RETIRED"]}, cycles="base=3", counters=3,
                      filters=["deny:CPU_CYCLES"], trace=str(tmp_path / "{guest}-{policy}.jsonl"))
    for r in rows:
        assert r.value("INST_RETIRED") == 42
        assert r.value("CPU_CYCLES") == 0                     # the run options' filter, in both
        assert r.cycles == 3 * r.instructions                 # base=3 cycles per instruction
        assert {c.counter for c in rows[0].counters} <= {"PMEV0", "PMEV1", "PMEV2", "PMCCNTR"}
    assert rows[0].filters == () and rows[1].filters == ("deny:BR_RETIRED",)
    assert rows[0].value("BR_RETIRED") == 20 and rows[1].value("BR_RETIRED") == 0
    from vpmu.trace import read
    for p in ("none", "nobr"):
        recs = list(read(str(tmp_path / f"pmu_smoke-{p}.jsonl")))
        assert recs[0]["counters"] == 3 and recs[-1]["type"] == "exit"


def test_the_long_csv_and_the_dataframe(local_rows, tmp_path):
    out = tmp_path / "s.csv"
    local_rows.to_csv(str(out))
    lines = list(csv.reader(out.open()))
    assert lines[0] == S.LONG_COLUMNS
    assert lines[0][:5] == ["guest", "policy", "counter", "event", "value"]
    recs = list(csv.DictReader(out.open()))
    assert len(recs) == sum(max(len(r.counters), 1) for r in local_rows)
    smoke = [r for r in recs if r["guest"] == "pmu_smoke.elf" and r["policy"] == "nobr"]
    assert [(r["counter"], r["event"], r["value"], r["event_number"]) for r in smoke] == [
        ("PMEV0", "INST_RETIRED", "42", "8"), ("PMEV1", "CPU_CYCLES", "42", "17"),
        ("PMEV2", "BR_RETIRED", "0", "33"), ("PMCCNTR", "CPU_CYCLES", "42", "17")]
    assert {r["filters"] for r in smoke} == {"deny:BR_RETIRED"} and {r["status"] for r in smoke} == {"0"}
    hello = [r for r in recs if r["guest"] == "hello.elf" and r["policy"] == "none"]
    assert len(hello) == 1 and hello[0]["counter"] == "" and hello[0]["status"] == "0"   # still a line
    pd = pytest.importorskip("pandas")
    df = local_rows.to_dataframe()
    assert list(df.columns) == S.LONG_COLUMNS and len(df) == len(recs)
    sel = df[(df.guest == "pmu_filter.elf") & (df.event == "BR_RETIRED")].set_index("policy")["value"]
    assert sel.to_dict() == {"none": 10, "nobr": 0, "inst": 0}
    assert pd.isna(df[df.guest == "hello.elf"]["counter"]).all()


def test_to_dataframe_without_pandas_says_what_to_install(local_rows, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        local_rows.to_dataframe()


def test_cli_table_csv_json_on_local_processes(tmp_path, capsys, vpmu_guest_dir):
    out_csv, out_json = tmp_path / "s.csv", tmp_path / "s.json"
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    rc = main(["sweep", g, g, "--filters", "noinst=deny:INST_RETIRED", "-j", "2",
               "--csv", str(out_csv), "--json", str(out_json)])
    assert rc == 0
    cap = capsys.readouterr()
    assert cap.err == ""                                   # no progress bar: stderr is not a terminal
    lines = cap.out.splitlines()
    assert lines[0].split() == ["guest", "policy", "status", "instructions", "INST_RETIRED", "CPU_CYCLES",
                                "BR_RETIRED"]
    assert [ln.split()[:2] + ln.split()[4:] for ln in lines[2:]] == [
        ["pmu_smoke.elf", "none", "42", "42", "20"], ["pmu_smoke.elf", "noinst", "0", "42", "20"]] * 2
    recs = list(csv.DictReader(out_csv.open()))
    assert {(r["policy"], r["value"]) for r in recs if r["event"] == "INST_RETIRED"} == {("none", "42"),
                                                                                        ("noinst", "0")}
    data = json.loads(out_json.read_text())
    assert len(data) == 4 and data[1]["counters"][0] == {"counter": "PMEV0", "index": 0, "event": "INST_RETIRED",
                                                         "event_number": 8, "value": 0}


def test_cli_checks_before_running(tmp_path, capsys, vpmu_guest_dir, monkeypatch):
    monkeypatch.setattr(S, "run_job", lambda job: pytest.fail("a run started"))
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    for args, message in [(["--pmu-version", "9.9"], "invalid choice: '9.9'"),
                          (["--filters", "x=deny:NO_SUCH_EVENT"], "NO_SUCH_EVENT"),
                          (["--csv", str(tmp_path / "no" / "s.csv")], "--csv"),
                          (["--report", str(tmp_path)], "cannot write (Is a directory)"),
                          (["--jobs", "-1"], "--jobs must be in 0..1024"),
                          (["--trace", str(tmp_path / "t.jsonl"), "--filters", "deny:0x10"], "{guest} and {policy}")]:
        try:
            rc = main(["sweep", g, *args])
        except SystemExit as e:                             # argparse's own errors
            rc = e.code
        assert rc == 2, args
        assert message in capsys.readouterr().err, args


def test_a_failed_run_is_a_row_and_exit_status_1(capsys, vpmu_guest_dir):
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    assert main(["sweep", g, "--max-insns", "100", "-q"]) == 1
    out = capsys.readouterr().out
    assert "errors:" in out and "pmu_smoke.elf / none:" in out and "instruction limit" in out


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_quiet_otherwise(local_rows):
    row = local_rows[0]
    tty, log = _Tty(), io.StringIO()
    for f in (tty, log):
        p = S.Progress(3, file=f)
        for k in range(3):
            p(row, k + 1, 3)
        p.bar.refresh()                     # (tqdm redraws at most every 0.1 s)
        p.close()
    assert "3/3" in tty.getvalue() and "\r" in tty.getvalue()
    assert log.getvalue() == ""                                 # not a terminal: nothing at all
    verbose = io.StringIO()
    p = S.Progress(2, verbose=True, file=verbose)
    p(row, 1, 2)
    p(local_rows[1], 2, 2)
    p.close()
    assert verbose.getvalue().splitlines() == ["[1/2] pmu_smoke.elf / none: status 0, 6886 instructions",
                                               "[2/2] pmu_smoke.elf / nobr: status 0, 6869 instructions"]


def test_cli_verbose_without_a_terminal_prints_a_line_per_run(capsys, vpmu_guest_dir):
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    assert main(["sweep", g, "--filters", "deny:0x10", "-j", "1", "-v"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["[1/2] pmu_smoke.elf / none: status 0, 6886 instructions",
                                "[2/2] pmu_smoke.elf / deny:0x10: status 0, 6886 instructions"]


# ---------------------------------------------------------------------------------------------
# The HTML report

class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "xlink:href") and v and not v.startswith("#")]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def test_the_html_report_is_one_self_contained_page(local_rows, tmp_path):
    pytest.importorskip("matplotlib")
    from vpmu.sweepreport import report_html
    text = report_html(local_rows, options={"max_insns": 1000000})
    assert text == report_html(local_rows, options={"max_insns": 1000000})      # deterministic
    page = _Page()
    page.feed(text)
    assert page.urls == [] and "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert "http://" not in text.replace("http://www.w3.org/", "") and "https://" not in text
    assert page.tags.count("svg") == len(GUESTS) and "style" in page.tags
    # the policy table, then a table per guest: policies down, counters (with events) across
    assert page.tables[0][1:] == [["none", "(no filter)"], ["nobr", "deny:BR_RETIRED"],
                                  ["inst", "allow:INST_RETIRED"]]
    smoke = page.tables[1]
    assert smoke[0] == ["policy", "status", "instructions", "PMEV0INST_RETIRED", "PMEV1CPU_CYCLES",
                        "PMEV2BR_RETIRED", "PMCCNTRCPU_CYCLES"]
    assert smoke[1] == ["none", "0", "6,886", "42", "42", "20", "42"]
    assert smoke[2] == ["nobr", "0", "6,869", "42", "42", "0", "42"]
    assert 'class="num changed" title="none: 20">0</td>' in text           # differs from the baseline
    # the plots label the counters by event (text, not glyph paths)
    assert "INST_RETIRED (PMEV0)" in text and "BR_RETIRED (PMEV2)" in text


def test_cli_report(tmp_path, capsys, vpmu_guest_dir):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.html"
    g = str(vpmu_guest_dir / "pmu_smoke.elf")
    assert main(["sweep", g, "--filters", "nobr=deny:BR_RETIRED", "-j", "1", "--counters", "4",
                 "--report", str(out)]) == 0
    text = out.read_text()
    assert "<code>counters=4</code>" in text and text.count("<svg") == 1


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no headless Chromium installed (Debian: apt-get install chromium); "
                           "tools/check_report.py renders the report with it")
def test_the_report_renders_in_a_headless_browser(tmp_path, vpmu_guest_dir):
    pytest.importorskip("matplotlib")
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "check_report.py"), "--guests", str(vpmu_guest_dir),
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "report renders:" in p.stdout
    assert (tmp_path / "sweep-report.png").stat().st_size > 10_000
