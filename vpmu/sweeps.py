"""Sweeps: many guests x many filter policies, each pair one run, on any executor.

:func:`sweep` takes guest images, policies (a name and the ordered ``allow|deny:FIRST[-LAST]``
items a VMM would pass as successive KVM filters) and every :class:`vpmu.options.RunOptions`
keyword, checks all of them before the first run starts (option names and values, each
policy's filters and the KVM rules they meet, the guest images, the trace paths), and then
hands one job per (guest, policy) to an executor:

- ``executor=None``: the runs happen here, one after another;
- any :class:`concurrent.futures.Executor`: a ``ProcessPoolExecutor`` (``vpmu sweep -j N``), a
  ``ThreadPoolExecutor``, or Dask distributed's ``Client.get_executor()`` (``vpmu sweep
  --dask``), which runs the jobs on other machines.

A job carries the loaded guest image and the finished :class:`~vpmu.config.MachineConfig`, so
a worker needs vpmu installed but not the guest files or a ``--vm`` file (``dtb`` and
``initrd`` files are read by the worker, at the same path).  A run is deterministic, so the
rows do not depend on the executor, and they come back in (guest, policy) order whatever
order the jobs finish in.

The result is a :class:`SweepResult`: a list of :class:`SweepRow` (one per run: exit status,
instructions, and each counter the guest used with the event it counted, named from the
catalogue in :mod:`vpmu.pmu.events`), which also gives the long format (one record per
guest, policy, counter, event and value: :meth:`SweepResult.records`, ``to_csv``), a pandas
DataFrame of it when pandas is installed (:meth:`SweepResult.to_dataframe`) and the text table
``vpmu sweep`` prints.  :mod:`vpmu.sweepreport` writes the HTML report.

Runs without ``max_insns`` stop after :data:`DEFAULT_MAX_INSNS` instructions, so one guest
that never ends cannot hold up a sweep.
"""
from __future__ import annotations

import copy
import os
import sys
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TextIO, Union

from .errors import UsageError, VpmuError
from .guestsdk import locate
from .options import RunOptions

DEFAULT_MAX_INSNS = 50_000_000
CYCLE_COUNTER = 31                  # PMCCNTR's index in PMCNTENSET / overflow records


# ---------------------------------------------------------------------------------------------
# What a run gives

@dataclass(frozen=True)
class CounterValue:
    """One counter at the end of a run and the event it counted."""
    counter: str            # "PMEV0" .. "PMEV30", "PMCCNTR"
    index: int              # 0..30, 31 for PMCCNTR
    event: str              # the catalogue's name, or the number in hex when it has none
    event_number: int
    value: int


@dataclass(frozen=True)
class SweepRow:
    """One (guest, policy) run."""
    guest: str              # the image's file name
    image: str              # the path given
    policy: str
    filters: tuple[str, ...]    # the policy's filter items (after the run options' own)
    status: int             # the guest's exit status, or the runner's error status
    reason: str             # "exit", "system_off", ..., or "error"
    error: str              # the runner's one-line error ("" when the guest ended)
    instructions: int
    cycles: int
    counters: tuple[CounterValue, ...]  # the counters the guest enabled or that moved

    def value(self, event: str) -> Optional[int]:
        """The final value of the first counter that counted ``event`` (a name), or None."""
        return next((c.value for c in self.counters if c.event == event), None)


#: The long format: one record per (guest, policy, counter); a run without counters gives
#: one record with the counter fields empty, so every run's status is in the file.
LONG_COLUMNS = ["guest", "policy", "counter", "event", "value", "event_number", "status", "reason",
                "instructions", "cycles", "filters", "error"]


class SweepResult(list):
    """The rows of a sweep (a list of :class:`SweepRow`, in (guest, policy) order)."""

    def records(self) -> list[dict]:
        """The long format (:data:`LONG_COLUMNS`) as dicts."""
        out = []
        for r in self:
            run = {"status": r.status, "reason": r.reason, "instructions": r.instructions, "cycles": r.cycles,
                   "filters": " ".join(r.filters), "error": r.error}
            for c in r.counters or (None,):
                out.append({"guest": r.guest, "policy": r.policy,
                            "counter": c.counter if c else None, "event": c.event if c else None,
                            "value": c.value if c else None, "event_number": c.event_number if c else None,
                            **run})
        return out

    def to_dataframe(self) -> Any:
        """The long format as a pandas DataFrame (ImportError when pandas is not installed)."""
        try:
            import pandas as pd  # type: ignore[import-untyped]
        except ImportError:
            raise ImportError("SweepResult.to_dataframe() needs pandas (pip install pandas); "
                              "records() gives the same table as dicts") from None
        return pd.DataFrame(self.records(), columns=LONG_COLUMNS)

    def to_csv(self, out: Union[str, os.PathLike, TextIO]) -> None:
        """Write the long format as CSV (a header line, one line per record)."""
        from .report import records_to_sv
        text = records_to_sv(self.records(), ",", LONG_COLUMNS)
        if isinstance(out, (str, os.PathLike)):
            with open(out, "w", newline="") as f:
                f.write(text)
        else:
            out.write(text)

    def to_json_data(self) -> list[dict]:
        """The rows as plain dicts (what ``vpmu sweep --json`` writes)."""
        return [asdict(r) for r in self]

    def columns(self) -> list[tuple[int, str]]:
        """The (counter index, event) pairs any row has, counter by counter."""
        return sorted({(c.index, c.event) for r in self for c in r.counters})

    def events(self) -> list[str]:
        """The events any row counted, in the order of the first counter that counted each."""
        return list(dict.fromkeys(e for _, e in self.columns()))

    def errors(self) -> list[SweepRow]:
        return [r for r in self if r.error]

    def table(self) -> str:
        """The text table: a row per run, a column per event counted.  A run that counted
        one event on several counters shows one value when they agree, else each counter's
        value joined by "/" in counter order (the CSV names the counters)."""
        events = self.events()
        head = ["guest", "policy", "status", "instructions"] + events
        body = []
        for r in self:
            cells = [r.guest, r.policy, str(r.status), str(r.instructions)]
            for e in events:
                vals = [c.value for c in r.counters if c.event == e]
                cells.append("/".join(map(str, vals[:1] if len(set(vals)) == 1 else vals)))
            body.append(cells)
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*b) for b in body]
        lines = [line.rstrip() for line in lines]
        errs = [f"  {r.guest} / {r.policy}: {r.error}" for r in self.errors()]
        return "\n".join(lines + (["errors:"] + errs if errs else [])) + "\n"


def _counter_name(index: int) -> str:
    return "PMCCNTR" if index == CYCLE_COUNTER else f"PMEV{index}"


def counters_of(pmu: dict) -> tuple[CounterValue, ...]:
    """The counters of a run's final PMU state (:attr:`vpmu.api.RunResult.pmu`) worth a
    column: enabled in PMCNTENSET, or not zero."""
    from .pmu.events import BY_NUMBER
    out = []
    if not pmu:
        return ()
    for i in range(pmu.get("n", 0)):
        if (pmu["pmcntenset"] >> i) & 1 or pmu["evcntr"][i]:
            number = pmu["evtyper"][i] & 0xFFFF
            ev = BY_NUMBER.get(number)
            out.append(CounterValue(_counter_name(i), i, ev.name if ev else f"{number:#x}", number, pmu["evcntr"][i]))
    if (pmu["pmcntenset"] >> CYCLE_COUNTER) & 1 or pmu.get("pmccntr"):
        out.append(CounterValue("PMCCNTR", CYCLE_COUNTER, "CPU_CYCLES", 0x11, pmu["pmccntr"]))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Policies and jobs

@dataclass(frozen=True)
class Policy:
    name: str
    filters: tuple[str, ...]


PoliciesArg = Union[Mapping[str, Sequence[str]], Iterable[Union[Policy, tuple[str, Sequence[str]]]]]


def policies_from(policies: PoliciesArg) -> list[Policy]:
    """A mapping name -> filter items, or (name, items) pairs, or :class:`Policy` values."""
    items = policies.items() if isinstance(policies, Mapping) else policies
    out: list[Policy] = []
    for p in items:
        if isinstance(p, Policy):
            out.append(p)
            continue
        try:
            name, filters = p
        except (TypeError, ValueError):
            raise UsageError(f"a policy is a (name, [filter items]) pair, not {p!r}") from None
        if isinstance(filters, str):
            raise UsageError(f"policy {name!r}: the filters are a list of 'allow|deny:FIRST[-LAST]' items, "
                             f"not the string {filters!r}")
        out.append(Policy(str(name), tuple(filters)))
    if not out:
        raise UsageError("no policies to sweep")
    names = [p.name for p in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"policy names must differ (each names a row): {', '.join(map(repr, dup))} "
                         f"given more than once")
    return out


@dataclass(frozen=True)
class Job:
    """One run, ready for any worker: picklable, and everything it needs is inside."""
    image: Any                  # vpmu.board.loader.Image (the file's bytes, parsed)
    path: str
    policy: Policy
    config: Any                 # vpmu.config.MachineConfig


def run_job(job: Job) -> SweepRow:
    """Run one job (in whichever process or machine the executor chose)."""
    from .api import run_config
    # The machine records load addresses in the image (device tree, initrd) and may adjust
    # its configuration: each run gets its own copies, also when an executor shares memory.
    res = run_config(copy.deepcopy(job.image), copy.deepcopy(job.config), keep_trace=False)
    return SweepRow(guest=Path(job.path).name, image=job.path, policy=job.policy.name, filters=job.policy.filters,
                    status=res.exit_status, reason=res.reason, error=res.error or "", instructions=res.icount,
                    cycles=res.cycles, counters=counters_of(res.pmu))


def guest_path(g: str, guest_dir: Union[str, os.PathLike, None] = None) -> str:
    """A guest by path, or by name in the guest directory (vpmu.guestsdk.locate: --guest-dir,
    VPMU_GUESTS); checked before the first run."""
    p = locate.find_guest(g, locate.guest_dir(guest_dir), hint=f"--guest-dir DIR or {locate.ENV_VAR}=DIR")
    if not Path(p).is_file():
        raise locate.GuestNotFound(f"guest {g}: no such file")
    return p


def plan(guests: Sequence[Union[str, os.PathLike]], policies: PoliciesArg, **run_options: Any) -> list[Job]:
    """Check everything and make the jobs (no run starts here).  Raises UsageError (a bad
    option, policy or trace pattern), ImageError (a guest that cannot be loaded) or KVM's
    errors for a policy KVM would refuse, before any job exists."""
    from .board.loader import open_image
    opts = RunOptions.from_keywords(**run_options)
    if opts.max_insns is None:
        opts = replace(opts, max_insns=DEFAULT_MAX_INSNS)
    pols = policies_from(policies)
    paths = [os.fspath(g) for g in guests]
    if not paths:
        raise UsageError("no guests to sweep")
    opts.to_machine_config()            # the options' own errors, before any policy's
    configs = {}
    for p in pols:
        try:
            configs[p.name] = replace(opts, filters=opts.filters + p.filters).to_machine_config()
        except VpmuError as e:
            e.args = (f"policy {p.name!r}: {e}",)
            raise
    images = {path: open_image(path) for path in dict.fromkeys(paths)}
    jobs = [Job(images[path], path, p, configs[p.name]) for path in paths for p in pols]
    if opts.trace is not None:
        jobs = _with_traces(jobs, opts.trace)
    return jobs


def _with_traces(jobs: list[Job], pattern: str) -> list[Job]:
    """``trace`` in a sweep is a pattern: ``{guest}`` (the file name without its suffix) and
    ``{policy}`` are replaced, and every run must get its own file."""
    out, seen = [], set()
    for j in jobs:
        try:
            path = pattern.format(guest=Path(j.path).stem, policy=j.policy.name)
        except (KeyError, IndexError, ValueError) as e:
            raise UsageError(f"--trace {pattern!r}: only {{guest}} and {{policy}} can be replaced ({e})") from None
        if path in seen:
            raise UsageError(f"--trace {pattern!r}: two runs would write {path}; with several guests or "
                             "policies use {guest} and {policy} in the name, e.g. traces/{guest}-{policy}.jsonl")
        seen.add(path)
        out.append(replace(j, config=replace(j.config, trace_path=path)))
    return out


# ---------------------------------------------------------------------------------------------
# Running

class Progress:
    """A tqdm bar on standard error when it is a terminal (nothing otherwise; none at all
    without ``bar``), and with ``verbose`` one line per finished run (above the bar, or alone)."""

    def __init__(self, total: int, verbose: bool = False, bar: bool = True, file: Optional[TextIO] = None):
        from tqdm import tqdm  # type: ignore[import-untyped]
        self.file = file or sys.stderr
        self.verbose = verbose
        self.bar = tqdm(total=total, unit="run", file=self.file, disable=not (bar and _isatty(self.file)),
                        dynamic_ncols=True, leave=False)

    def __call__(self, row: SweepRow, done: int, total: int) -> None:
        if self.verbose:
            line = (f"[{done}/{total}] {row.guest} / {row.policy}: "
                    + (f"error: {row.error}" if row.error else f"status {row.status}, {row.instructions} instructions"))
            if self.bar.disable:
                print(line, file=self.file, flush=True)
            else:
                self.bar.write(line, file=self.file)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _isatty(f: TextIO) -> bool:
    try:
        return f.isatty()
    except (AttributeError, ValueError):
        return False


ProgressArg = Union[bool, Callable[[SweepRow, int, int], None]]


def sweep(guests: Sequence[Union[str, os.PathLike]], policies: PoliciesArg, *, executor: Optional[Executor] = None,
          progress: ProgressArg = False, **run_options: Any) -> SweepResult:
    """Run every guest under every policy; return a :class:`SweepResult` (rows in (guest,
    policy) order).

    ``policies``: ``{"none": [], "nobr": ["deny:BR_MIS_PRED"]}`` or (name, items) pairs; the
    items are applied after ``filters`` from the run options.  ``run_options``: every
    ``vpmu.run()`` keyword (:class:`vpmu.options.RunOptions`); ``trace`` is a pattern with
    ``{guest}`` and ``{policy}``.  Everything is checked before the first job is submitted
    (:func:`plan`).  ``executor``: where the jobs run (None: here, one after another).
    ``progress``: True for a bar on a terminal, or a callable ``(row, done, total)``.
    """
    return run_jobs(plan(guests, policies, **run_options), executor=executor, progress=progress)


def run_jobs(jobs: Sequence[Job], *, executor: Optional[Executor] = None, progress: ProgressArg = False) -> SweepResult:
    """Run planned jobs (:func:`plan`) on ``executor`` (None: here, one after another); the
    rows come back in the jobs' order."""
    report = Progress(len(jobs)) if progress is True else (progress or None)
    rows: list[Optional[SweepRow]] = [None] * len(jobs)
    try:
        if executor is None:
            for k, job in enumerate(jobs):
                row = rows[k] = run_job(job)
                if report:
                    report(row, k + 1, len(jobs))
        else:
            futures = {executor.submit(run_job, job): k for k, job in enumerate(jobs)}
            try:
                for done, fut in enumerate(as_completed(futures), 1):
                    row = rows[futures[fut]] = fut.result()
                    if report:
                        report(row, done, len(jobs))
            finally:
                for fut in futures:
                    fut.cancel()
    finally:
        if isinstance(report, Progress) and progress is True:
            report.close()
    return SweepResult(rows)
