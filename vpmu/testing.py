"""Assertions over runs and traces, for users' test suites (and ours).

    from vpmu.testing import assert_overflows, assert_irq_follows_overflows, assert_traces_agree

    def test_sampling(vpmu_run):                         # fixture from the pytest plugin
        r = vpmu_run("pmu_overflow_irq", pmu_version="3.5")
        assert_overflows(r.trace, counter=0, times=1)
        assert_irq_follows_overflows(r.trace, intid=23, within=1)

Every failure is an :class:`AssertionError` whose message shows the first offending (or
differing) record with its neighbours, so a failing CI log says what happened.
"""
from __future__ import annotations

import json
from typing import Iterable, Optional, Sequence


def _fmt(rec: dict) -> str:
    return json.dumps(rec, separators=(",", ":"))


def context(records: Sequence[dict], index: int, radius: int = 2, mark: str = ">>") -> str:
    """The record at `index` with `radius` neighbours on each side, the record itself marked."""
    lo, hi = max(0, index - radius), min(len(records), index + radius + 1)
    lines = []
    for i in range(lo, hi):
        lines.append(f"  {mark if i == index else '  '} [{i}] {_fmt(records[i])}")
    return "\n".join(lines)


def records(trace, type: Optional[str] = None, **match) -> list[dict]:
    """Records of a trace (list, RunResult or path) of one type whose fields equal `match`."""
    recs = _records(trace)
    return [r for r in recs if (type is None or r.get("type") == type)
            and all(r.get(k) == v for k, v in match.items())]


def _records(trace) -> list[dict]:
    if hasattr(trace, "trace"):
        return list(trace.trace)
    if isinstance(trace, str):
        from .trace import read
        return list(read(trace))
    return list(trace)


def overflows(trace, counter: Optional[int] = None) -> list[dict]:
    return records(trace, "overflow", **({} if counter is None else {"counter": counter}))


def assert_overflows(trace, counter: int, times: int) -> None:
    """Counter `counter` (31 = PMCCNTR) overflowed exactly `times` times."""
    recs = _records(trace)
    got = [i for i, r in enumerate(recs) if r.get("type") == "overflow" and r.get("counter") == counter]
    if len(got) != times:
        msg = [f"counter {counter} overflowed {len(got)} time(s), expected {times}"]
        for i in got[:5]:
            msg.append(context(recs, i, 1))
        if not got:
            ovf = [i for i, r in enumerate(recs) if r.get("type") == "overflow"]
            msg.append(f"  (overflow records of other counters: {[recs[i]['counter'] for i in ovf][:10]})")
        raise AssertionError("\n".join(msg))


def assert_irq_follows_overflows(trace, intid: int = 23, within: int = 1,
                                 counters: Optional[Iterable[int]] = None) -> None:
    """Every overflow (of `counters`, default all) is followed by an interrupt on `intid`
    taken within `within` retired instructions (0 = at the same instruction boundary)."""
    recs = _records(trace)
    want = None if counters is None else set(counters)
    for i, r in enumerate(recs):
        if r.get("type") != "overflow" or (want is not None and r.get("counter") not in want):
            continue
        for j in range(i + 1, len(recs)):
            q = recs[j]
            if q["icount"] > r["icount"] + within:
                break
            if q.get("type") == "irq" and q.get("intid") == intid:
                break
            if q.get("type") == "xen_sample":
                break
        else:
            j = len(recs)
        ok = (j < len(recs) and recs[j].get("type") in ("irq", "xen_sample")
              and recs[j]["icount"] <= r["icount"] + within)
        if not ok:
            raise AssertionError(f"overflow of counter {r['counter']} at icount {r['icount']} was not followed by an "
                                 f"interrupt on INTID {intid} within {within} instruction(s):\n{context(recs, i, 3)}")


def first_difference(a: Sequence[dict], b: Sequence[dict], upto: Optional[int] = None,
                     ignore: Iterable[str] = ("image",), skip: Iterable[str] = ("run",)) -> Optional[int]:
    """Index of the first record where traces a and b differ (records with icount <= upto,
    without records of the types in `skip` - by default the `run` header, which describes the
    configuration; fields in `ignore` are not compared), or None if they agree.  The index
    counts the compared records."""
    ign, sk = set(ignore), set(skip)

    def cut(t):
        return [r for r in t if (upto is None or r["icount"] <= upto) and r.get("type") not in sk]

    a, b = cut(a), cut(b)
    for i in range(max(len(a), len(b))):
        if i >= len(a) or i >= len(b):
            return i
        ra = {k: v for k, v in a[i].items() if k not in ign}
        rb = {k: v for k, v in b[i].items() if k not in ign}
        if ra != rb:
            return i
    return None


def assert_traces_agree(a, b, upto: Optional[int] = None, ignore: Iterable[str] = ("image",),
                        skip: Iterable[str] = ("run",)) -> None:
    """Traces agree record by record up to icount `upto` (inclusive; None = all), ignoring
    the `run` header records (the configurations may differ) unless `skip` says otherwise."""
    ra, rb = _records(a), _records(b)
    i = first_difference(ra, rb, upto, ignore, skip)
    if i is None:
        return
    sk = set(skip)
    ca = [r for r in ra if (upto is None or r["icount"] <= upto) and r.get("type") not in sk]
    cb = [r for r in rb if (upto is None or r["icount"] <= upto) and r.get("type") not in sk]
    left = context(ca, i) if i < len(ca) else f"  (trace A ends after {len(ca)} records)"
    right = context(cb, i) if i < len(cb) else f"  (trace B ends after {len(cb)} records)"
    raise AssertionError(f"traces differ at record {i}"
                         + (f" (compared up to icount {upto})" if upto is not None else "")
                         + f":\n trace A:\n{left}\n trace B:\n{right}")


def assert_kv(result, **expected) -> None:
    """The guest printed key=value for every expected item (values compared as int when both are)."""
    kv = result.kv()
    bad = []
    for k, v in expected.items():
        got = kv.get(k)
        if got is None:
            bad.append(f"{k}: missing (expected {v!r})")
            continue
        try:
            same = int(got, 0) == int(v) if not isinstance(v, str) else got == v
        except (TypeError, ValueError):
            same = got == str(v)
        if not same:
            bad.append(f"{k}: got {got}, expected {v!r}")
    if bad:
        tail = "\n".join(result.output.splitlines()[-15:])
        raise AssertionError("guest results differ:\n  " + "\n  ".join(bad) + f"\n--- guest output (tail) ---\n{tail}")


def assert_runs_identical(a, b) -> None:
    """Two RunResults describe the same run: output, exit status, reason, error, instruction
    and cycle counts, final PMU state and every trace record, the run header included (for
    runs of one configuration counted two ways, e.g. deferred and ``eager=True``)."""
    for name in ("output", "exit_status", "reason", "error", "icount", "cycles", "pmu"):
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            show = (lambda v: repr(v)[-300:]) if name == "output" else repr
            raise AssertionError(f"runs differ in {name}: {show(va)} != {show(vb)}")
    i = first_difference(a.trace, b.trace, ignore=(), skip=())
    if i is not None:
        left = context(a.trace, i) if i < len(a.trace) else f"  (trace A ends after {len(a.trace)} records)"
        right = context(b.trace, i) if i < len(b.trace) else f"  (trace B ends after {len(b.trace)} records)"
        raise AssertionError(f"traces differ at record {i}:\n trace A:\n{left}\n trace B:\n{right}")
