"""The trace schema (vpmu/trace_schema.json, JSON Schema draft 2020-12) against what the runner
writes: every record type of the schema is produced by some run here and every record of
those runs satisfies the schema, checked through the document itself (its ``allOf`` of
``if type == T then $defs/T``) and through vpmu.trace.validate (which dispatches on the type);
every field the runner writes is declared; the validator (vpmu.schema) implements every keyword
the document uses and rejects a document that asks for more.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import vpmu
from vpmu import schema as S
from vpmu import trace as T

ROOT = Path(__file__).resolve().parents[1]

# (guest, options): together they write every record type
RUNS = [
    ("board_irq", {}),
    ("board_timer", {}),
    ("board_psci", {}),
    ("board_exc", {}),
    ("timer_periodic", {"max_insns": 3_000_000}),                 # the error record
    ("xen_pmu_driver", {"xen": True, "xen_vpmu": "all"}),
    ("xen_evtchn", {"xen": True, "xen_vpmu": "all"}),
    ("demo", {"trace_limit": 30}),                               # the truncated record
    ("virtio_testdev", {"virtio_console": "testdev", "append": "mode=bad"}),   # virtio, exit "testdev"
    ("demo", {"no_pmu": True, "max_insns": 200_000}),
]


@pytest.fixture(scope="module")
def written(vpmu_guest_dir) -> list[dict]:
    recs: list[dict] = []
    for guest, opts in RUNS:
        r = vpmu.run(str(vpmu_guest_dir / f"{guest}.elf"), trace_pmu_regs=True, trace_sample=5000, **opts)
        recs.extend(r.trace)
    return recs


def test_the_document_is_a_draft_2020_12_schema_with_the_packaged_name():
    doc = T.schema_document()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads((ROOT / "vpmu" / T.SCHEMA_FILE).read_text()) == doc
    assert doc["$defs"]["run"]["properties"]["version"] == {"const": T.SCHEMA_VERSION}
    assert doc["properties"]["type"]["enum"] == list(T.SCHEMA)
    assert [b["then"]["$ref"] for b in doc["allOf"]] == [f"#/$defs/{t}" for t in T.SCHEMA]


def test_the_package_ships_the_schema():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*(#.*\n)*\s*vpmu = \["trace_schema\.json"\]', text)


def test_every_record_type_is_written_and_valid(written):
    whole = S.compile_schema(T.schema_document())
    seen = set()
    for rec in written:
        assert whole(rec, "record") is None, (whole(rec, "record"), rec)
        T.validate(rec)
        seen.add(rec["type"])
    assert seen == set(T.SCHEMA)


def test_every_field_written_is_declared(written):
    defs = T.schema_document()["$defs"]
    for rec in written:
        declared = set(defs[rec["type"]]["properties"])
        assert set(rec) <= declared, (rec["type"], set(rec) - declared)
        assert list(rec)[:2] == ["type", "icount"]


def test_the_trace_doc_lists_every_record_type_and_points_to_the_schema():
    doc = (ROOT / "docs" / "trace.md").read_text()
    assert "vpmu/trace_schema.json" in doc
    for t in T.SCHEMA:
        assert f"| `{t}` |" in doc, t


def _keywords(node, out: set) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("properties", "$defs"):
                for sub in v.values():
                    _keywords(sub, out)
            else:
                out.add(k)
                if k in ("items", "if", "then", "additionalProperties"):
                    _keywords(v, out)
                elif k == "allOf":
                    for sub in v:
                        _keywords(sub, out)


def test_the_validator_implements_every_keyword_the_document_uses():
    used: set = set()
    _keywords(T.schema_document(), used)
    assert used <= S.KEYWORDS, used - S.KEYWORDS
    with pytest.raises(S.SchemaError, match="unsupported JSON Schema keyword"):
        S.compile_schema({"type": "string", "pattern": "^a"})
    with pytest.raises(S.SchemaError, match="dangling"):
        S.compile_schema({"$ref": "#/$defs/none"})


@pytest.mark.parametrize("schema, good, bad", [
    ({"type": "integer", "minimum": 0, "maximum": 3}, [0, 3], [-1, 4, True, 1.0, "1", None]),
    ({"type": ["string", "null"]}, ["", None], [0, False, []]),
    ({"enum": ["r", "w"]}, ["r"], ["x", 1]),
    ({"const": 1}, [1], [True, 1.0, 2]),
    ({"type": "array", "items": {"type": "integer"}, "maxItems": 2}, [[], [1, 2]], [[1, 2, 3], ["a"], {}]),
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "boolean"}}, "additionalProperties": False},
     [{"a": True}], [{}, {"a": 1}, {"a": True, "b": 0}]),
    ({"if": {"properties": {"t": {"const": "x"}}}, "then": {"required": ["y"]}}, [{"t": "z"}, {"t": "x", "y": 0}],
     [{"t": "x"}]),
    ({"type": "string", "maxLength": 2}, ["ab"], ["abc"]),
])
def test_validator_semantics(schema, good, bad):
    check = S.compile_schema(schema)
    for v in good:
        assert check(v, "v") is None, v
    for v in bad:
        assert check(v, "v") is not None, v
