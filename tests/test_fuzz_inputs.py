"""Property-based fuzzing of vpmu's inputs (hypothesis: generated and shrunk, not fixed-seed
random): ``vpmu run`` option values, ``--vm`` TOML documents, trace files and policy files.
The property is the rule of issue 13: every input ends with a documented status, never 106
and never a traceback (tests/hostile.py's ``assert_no_bug``).

The CLI runs in this process (vpmu.cli.main), each example within a deadline.  CI runs
``VPMU_FUZZ_EXAMPLES`` examples per test (default 30); a longer local run:
``VPMU_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_inputs.py``.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpmu import errors
from vpmu.options import RunOptions
from vpmu.trace import SCHEMA, schema_document

from hostile import RUNNER_STATUSES, cli

EXAMPLES = int(os.environ.get("VPMU_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=30),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
GUEST = Path(__file__).resolve().parents[1] / "guests" / "build" / "hello.elf"
RUN_LIMIT = ["--max-insns", "20000"]              # hello.elf needs 6499; a wild option may loop

# ------------------------------------------------------------------------------ value strategies

BIG = 2**70
integers = st.one_of(st.integers(-300, 300), st.integers(-BIG, BIG),
                     st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64]))
number_text = st.one_of(
    integers.map(str), integers.map(lambda n: hex(n) if n >= 0 else "-" + hex(-n)),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e23", "0x", "-0", " 7 ", "1_000", "\u0663", "9" * 5000,
                     "1G", "0B", "64MiB", "12Q", "0x1b", "none"]),
    st.text(max_size=12))


def spec_text(keys: list[str]) -> st.SearchStrategy[str]:
    """``key=value,...`` texts (--cycles, --cache), mostly with known keys."""
    item = st.tuples(st.one_of(st.sampled_from(keys), st.text(max_size=6)), number_text).map(
        lambda kv: f"{kv[0]}={kv[1]}")
    return st.lists(st.one_of(item, st.text(max_size=8)), max_size=4).map(",".join)


# The run options that take a value, with what to try for each (paths are fuzzed elsewhere).
_VALUE_FLAGS = {f.metadata["cli"].flag_for(f.name): f for f in fields(RunOptions)
                if not isinstance(f.default, bool) and f.name not in ("vm", "trace", "dtb")}
_SPECIAL = {
    "--cycles": spec_text(["base", "load", "store", "branch", "mul", "div", "fp", "system", "l1i-refill",
                           "l1d-refill", "l1d-writeback", "mispredict"]),
    "--cache": spec_text(["line", "l1i-size", "l1i-ways", "l1d-size", "l1d-ways"]),
    "--filter": st.tuples(st.sampled_from(["allow", "deny", "", "x"]), number_text, number_text).map(
        lambda t: f"{t[0]}:{t[1]}-{t[2]}"),
    "--append": st.text(max_size=40),
}
option_values = st.sampled_from(sorted(_VALUE_FLAGS)).flatmap(
    lambda flag: st.tuples(st.just(flag), _SPECIAL.get(flag, number_text)))


def _check(o, allowed: set) -> None:
    o.assert_no_bug()
    assert o.status in allowed, (o.status, o.err)
    if o.status in RUNNER_STATUSES - {0, 1}:
        assert len(o.err.splitlines()) >= 1 and o.err.startswith("vpmu"), o.err


# ------------------------------------------------------------------------------ 1. option values

@FUZZ
@given(st.lists(option_values, min_size=1, max_size=3))
def test_run_option_values(opts):
    args = [a for flag, value in opts for a in (flag, value)]
    o = cli("run", *RUN_LIMIT, *args, str(GUEST))
    _check(o, {0} | RUNNER_STATUSES)


@FUZZ
@given(st.sampled_from(["--memory", "--pmu-irq", "--append"]), number_text, st.booleans())
def test_dtb_option_values(flag, value, dts):
    o = cli("dtb", flag, value, *(["--dts"] if dts else ["-o", os.devnull]))
    _check(o, {0, errors.EXIT_USAGE})


# ------------------------------------------------------------------------------ 2. --vm TOML

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)                   # a TOML basic string is JSON's escaping
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


def to_toml(doc: dict) -> str:
    lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{json.dumps(k)}]")
            lines += [f"{json.dumps(k2)} = {_toml_value(v2)}" for k2, v2 in v.items()]
    return "\n".join(lines) + "\n"


scalars = st.one_of(integers, st.booleans(), st.text(max_size=10), number_text)
toml_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)
TABLES = {"host": ["steal_time", "cpu", "pmu"], "vgic": ["enabled", "nr_spis"],
          "pmu": ["enabled", "version", "set_pmu", "counters", "irq", "filters"],
          "timer": ["vtimer", "ptimer", "hvtimer", "hptimer"], "pvtime": ["ipa", "stolen_ns_per_ms"]}
host_pmu = st.fixed_dictionaries({}, optional={"type": integers, "version": st.sampled_from(["3.0", "3.1", "3.7", "9"]),
                                               "counters": integers, "cpus": st.lists(integers, max_size=4),
                                               "name": st.text(max_size=5)})
tables = st.sampled_from(sorted(TABLES)).flatmap(lambda t: st.tuples(st.just(t), st.dictionaries(
    st.sampled_from(TABLES[t] + ["bogus"]),
    st.lists(host_pmu, max_size=2) if t == "host" else st.one_of(scalars, toml_values), max_size=4)))
vm_docs = st.tuples(st.lists(tables, max_size=4), st.one_of(st.none(), number_text, integers)).map(
    lambda t: {**dict(t[0]), **({} if t[1] is None else {"memory": t[1]})})


def _host_pmu_tables(doc: dict) -> str:
    """[[host.pmu]] arrays of tables (the one place the description uses them)."""
    host = doc.get("host")
    if not isinstance(host, dict) or not isinstance(host.get("pmu"), list):
        return to_toml(doc)
    pmus = host.pop("pmu")
    text = to_toml(doc)
    for p in pmus:
        text += "[[host.pmu]]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in p.items())
    return text


@FUZZ
@given(st.one_of(vm_docs.map(_host_pmu_tables), st.text(max_size=200)))
def test_vm_documents(text):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "vm.toml"
        p.write_text(text, encoding="utf-8", errors="surrogatepass")
        o = cli("run", *RUN_LIMIT, "--vm", str(p), str(GUEST))
    _check(o, {0} | RUNNER_STATUSES)


# ------------------------------------------------------------------------------ 3. trace files

RUN_RECORD = {"type": "run", "icount": 0, "version": 1, "image": "x", "pmu_version": "3.7", "counters": 6,
              "pmu_irq": 23, "filters": False, "xen": False}
json_values = st.recursive(st.one_of(st.none(), st.booleans(), integers, st.text(max_size=8),
                                     st.floats(allow_nan=False, allow_infinity=False)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=10)
PMU_FIELDS = ["n", "pmcr", "pmcntenset", "pmintenset", "pmovsset", "pmselr", "pmuserenr", "pmccntr", "pmccfiltr",
              "evcntr", "evtyper", "pmceid0", "pmceid1"]
field_values = st.one_of(json_values, st.integers(0, 40), st.lists(st.integers(0, 2**64 - 1), max_size=8),
                         st.fixed_dictionaries({k: st.one_of(st.integers(0, 40),
                                                             st.lists(st.integers(0, 99), max_size=8))
                                                for k in PMU_FIELDS}))


@st.composite
def records(draw):
    t = draw(st.one_of(st.sampled_from(sorted(SCHEMA)), st.text(max_size=6)))
    rec = {"type": t, "icount": draw(st.one_of(st.integers(0, 10**6), integers, json_values))}
    for k in SCHEMA.get(t, ("x",)):
        if draw(st.integers(0, 9)):                 # now and then a field is missing
            rec[k] = draw(field_values)
    return rec


trace_texts = st.one_of(
    st.lists(records(), max_size=6).map(lambda rs: "".join(json.dumps(r) + "\n" for r in [RUN_RECORD] + rs).encode()),
    st.binary(max_size=200))


@FUZZ
@given(trace_texts, st.sampled_from(["summary", "diff"]))
def test_trace_files(data, command):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        p.write_bytes(data)
        args = ["trace", "summary", str(p)] if command == "summary" else ["trace", "diff", str(p), str(p)]
        o = cli(*args)
    _check(o, {0, 1, errors.EXIT_USAGE})


def from_schema(node: dict, root: dict) -> st.SearchStrategy:
    """Values that satisfy a schema of the trace document's subset (vpmu.schema)."""
    if "$ref" in node:
        return from_schema(root["$defs"][node["$ref"].rpartition("/")[2]], root)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "then" in node:
        return from_schema(node["then"], root)
    types = node.get("type")
    if isinstance(types, list):
        return st.one_of(*(from_schema({**node, "type": t}, root) for t in types))
    if types == "integer":
        return st.integers(node.get("minimum", -BIG), node.get("maximum", BIG))
    if types == "string":
        return st.text(max_size=min(node.get("maxLength", 20), 20))
    if types == "boolean":
        return st.booleans()
    if types == "null":
        return st.none()
    if types == "array":
        return st.lists(from_schema(node.get("items", {}), root), max_size=min(node.get("maxItems", 8), 8))
    props = node.get("properties", {})
    required = node.get("required", [])
    if types == "object" and not props:
        return st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)
    return st.fixed_dictionaries({k: from_schema(props[k], root) for k in required},
                                 optional={k: from_schema(v, root) for k, v in props.items() if k not in required})


DOC = schema_document()
valid_records = st.sampled_from([t for t in SCHEMA if t != "run"]).flatmap(
    lambda t: from_schema(DOC["$defs"][t], DOC))


@FUZZ
@given(from_schema(DOC["$defs"]["run"], DOC), st.lists(valid_records, max_size=8))
def test_valid_traces_are_summarised(run, recs):
    """Records that satisfy the schema, in icount order, however odd together (a PMU with n
    larger than its lists, an exit before an overflow...): summary and diff succeed."""
    recs.sort(key=lambda r: r["icount"])
    run["icount"] = 0
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in [run] + recs))
        summary = cli("trace", "summary", str(p))
        diff = cli("trace", "diff", str(p), str(p))
    _check(summary, {0})
    _check(diff, {0})


# ------------------------------------------------------------------------------ 4. policy files

policy_items = st.tuples(st.sampled_from(["allow", "deny", "ALLOW", "x", ""]),
                         st.one_of(number_text, st.sampled_from(["CPU_CYCLES", "none", "none@0x10", "BR_MIS_PRED",
                                                                 "0x8-0x11", "0-0xFFFF"]))).map(
    lambda t: f"{t[0]}:{t[1]}")
policy_files = st.one_of(
    st.lists(st.one_of(policy_items, st.text(max_size=10)), max_size=8).map(lambda xs: "\n".join(xs).encode()),
    st.binary(max_size=64),
    st.lists(st.binary(min_size=8, max_size=8), max_size=8).map(b"".join),
    st.binary(max_size=64).map(lambda b: b.hex().encode()))


@FUZZ
@given(policy_files, st.sampled_from(["lint", "explain", "export", "import", "diff"]),
       st.sampled_from(["3.0", "3.7"]))
def test_policy_files(data, command, version):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "policy"
        p.write_bytes(data)
        args = {"import": ["policy", "import", str(p)],
                "diff": ["policy", "diff", "--policy", str(p), "--new-filter", "deny:0x11"]}.get(
            command, ["policy", command, "--policy", str(p)])
        o = cli(*args, "--pmu-version", version)
    _check(o, {0, 1, errors.EXIT_USAGE})

