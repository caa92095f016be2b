"""Trace records: a versioned JSON Lines event stream (docs/trace.md).

Every record is one JSON object on one line with a ``type`` and the retired-instruction
count ``icount`` at which it happened.  Records are written in the order they happen
(icount is non-decreasing), keys are emitted in a fixed order and nothing host-dependent
(time, addresses of host objects) is recorded, so the same guest gives the same trace
byte for byte and traces diff cleanly.

The record schema is a JSON Schema document shipped in the package,
``vpmu/trace_schema.json`` (draft 2020-12; :func:`schema_document`): every record type, its
required fields in output order, and the type and range of every field the runner writes.
:func:`validate` checks a record against it (with :mod:`vpmu.schema`) and :func:`read` checks
a whole file: JSON, UTF-8, line length, schema, the ``run`` record first, icount order.

A :class:`TraceWriter` stops recording at the run's ``--trace-limit`` (a ``truncated``
record says so; the final ``exit`` or ``error`` record is still written) and keeps a write
error (a full disk, ``/dev/full``) instead of raising it in the middle of the run: the run
ends normally and the caller reports :attr:`TraceWriter.write_error`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import IO, Callable, Iterable, Iterator, Optional

from .config import TraceLimit
from .schema import Check, compile_schema

SCHEMA_VERSION = 1
SCHEMA_FILE = "trace_schema.json"
# The longest record the runner writes is well under 4 KiB (an exit record with 31 counters);
# a longer line is not a trace record, and reading it whole would cost unbounded memory.
MAX_LINE = 1 << 20
FINAL_TYPES = ("exit", "error")         # always written, also after the trace limit


@lru_cache(maxsize=1)
def schema_document() -> dict:
    """The JSON Schema of one trace record (``vpmu/trace_schema.json``)."""
    return json.loads(resources.files("vpmu").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def _required_fields() -> dict[str, tuple[str, ...]]:
    defs = schema_document()["$defs"]
    types = schema_document()["properties"]["type"]["enum"]
    return {t: tuple(k for k in defs[t]["required"] if k not in ("type", "icount")) for t in types}


# type -> required fields (besides "type" and "icount"), in output order: from the schema
SCHEMA: dict[str, tuple[str, ...]] = _required_fields()


@lru_cache(maxsize=1)
def _checks() -> tuple[Check, dict[str, Check]]:
    """The whole schema's common part, and one compiled check per record type (the schema's
    ``allOf`` of ``if type == T then $defs/T``, dispatched on the type directly)."""
    doc = schema_document()
    common = compile_schema({k: v for k, v in doc.items() if k != "allOf"}, doc)
    return common, {t: compile_schema({"$ref": f"#/$defs/{t}"}, doc) for t in SCHEMA}


class TraceError(ValueError):
    pass


def _order(rec: dict) -> dict:
    t = rec["type"]
    out = {"type": t, "icount": rec["icount"]}
    for k in SCHEMA.get(t, ()):
        if k in rec:
            out[k] = rec[k]
    for k in sorted(k for k in rec if k not in out):   # extra fields: sorted, after the schema ones
        out[k] = rec[k]
    return out


class TraceWriter:
    """Collects records in memory and/or streams them to a file, up to ``limit``."""

    def __init__(self, path: str | None = None, keep: bool = True, limit: Optional[TraceLimit] = None):
        self.records: list[dict] = []
        self.keep = keep
        self.path = path
        self.limit = limit if limit is not None else TraceLimit()
        self.count = 0                  # records recorded (kept and/or written)
        self.size = 0                   # bytes of JSON Lines they take
        self.truncated = False
        self.write_error: Optional[str] = None     # the first write error, as one line
        try:
            self._f: IO[str] | None = open(path, "w", encoding="utf-8") if path else None
        except (OSError, ValueError) as e:
            from .errors import EXIT_USAGE, VpmuError
            raise VpmuError(f"--trace {path}: cannot write ({getattr(e, 'strerror', None) or e})",
                            EXIT_USAGE) from None

    _earlier: Optional[Callable[[], None]] = None
    _draining = False

    def set_earlier(self, drain: Callable[[], None]) -> None:
        """Records queued elsewhere (the native hooks' ring) happened before anything added
        from now on: ``drain()`` moves them into the trace, and runs before every add."""
        self._earlier = drain

    @property
    def recording(self) -> bool:
        """Whether a record added now goes anywhere: kept in memory or written to the file.
        A run without ``--trace`` and without ``keep`` records nothing, and the producers may
        skip building records (``PmuDevice.drain_ring`` discards the native ring unread)."""
        return self.keep or self._f is not None

    def add(self, rec: dict) -> None:
        if not self.recording:
            return                      # nobody keeps it: the queued records are discarded unread too
        if self._earlier is not None and not self._draining:
            self._draining = True
            try:
                self._earlier()
            finally:
                self._draining = False
        final = rec.get("type") in FINAL_TYPES
        if self.truncated and not final:
            return
        rec = _order(rec)
        line = self._line(rec)
        lim = self.limit
        if not final and ((lim.records and self.count + 1 > lim.records)
                          or (lim.size and self.size + len(line) > lim.size)):
            self.truncated = True
            note = _order({"type": "truncated", "icount": rec["icount"], "records": self.count,
                           "bytes": self.size, "limit": str(lim)})
            self._put(note, self._line(note))
            return
        self._put(rec, line)

    def _line(self, rec: dict) -> str:
        # the JSON text is needed for the file and for a size limit; a kept-only trace skips it
        return json.dumps(rec, separators=(",", ":")) + "\n" if self._f or self.limit.size else ""

    def _put(self, rec: dict, line: str) -> None:
        self.count += 1
        self.size += len(line)
        if self.keep:
            self.records.append(rec)
        if self._f:
            try:
                self._f.write(line)
            except (OSError, ValueError) as e:
                self._fail(e)

    def _fail(self, e: Exception) -> None:
        if self.write_error is None:
            self.write_error = (f"--trace {self.path}: write failed ({getattr(e, 'strerror', None) or e}); "
                                "the trace file is incomplete")
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        if self._f:
            try:
                self._f.close()
            except (OSError, ValueError) as e:
                self._f = None
                self._fail(e)
            self._f = None


def validate(rec: object, lineno: int = 0) -> None:
    """Check one record against the schema; TraceError names the field (and the line)."""
    where = f"line {lineno}: " if lineno else ""
    if not isinstance(rec, dict):
        raise TraceError(f"{where}record is not an object")
    common, by_type = _checks()
    t = rec.get("type")
    if not isinstance(t, str) or t not in by_type:
        raise TraceError(f"{where}unknown record type {t!r}" if isinstance(t, str) or t is None
                         else f"{where}record type must be a string, not {str(t)[:40]}")
    err = common(rec, "record") or by_type[t](rec, t)
    if err:
        raise TraceError(f"{where}{err}")


def _lines(f: IO[bytes]) -> Iterator[tuple[int, str]]:
    n = 0
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        n += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            raise TraceError(f"line {n}: longer than {MAX_LINE} bytes (not a trace record)")
        try:
            yield n, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise TraceError(f"line {n}: not UTF-8 text (byte {e.start + 1})") from None


def _parse(n: int, line: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise TraceError(f"line {n}: not JSON ({e.msg})") from None
    except RecursionError:
        raise TraceError(f"line {n}: JSON nested too deeply") from None
    except ValueError as e:             # an integer of more than 4300 digits
        raise TraceError(f"line {n}: not a trace record ({str(e).split(';')[0]})") from None


def read(path_or_lines: str | Iterable[str], check: bool = True) -> Iterator[dict]:
    """Read (and validate) a trace: records in order, icount non-decreasing.  The first
    problem raises TraceError naming its line; an empty file is an error too (a trace
    starts with a run record)."""
    if isinstance(path_or_lines, str):
        with open(path_or_lines, "rb") as f:
            yield from _records(_lines(f), check)
    else:
        yield from _records(enumerate(path_or_lines, 1), check)


def _records(lines: Iterable[tuple[int, str]], check: bool) -> Iterator[dict]:
    last = -1
    first = True
    for n, line in lines:
        line = line.strip()
        if not line:
            continue
        rec = _parse(n, line)
        if check:
            if first and isinstance(rec, dict) and rec.get("type") == "run" and rec.get("version") != SCHEMA_VERSION:
                raise TraceError(f"line {n}: trace schema version {str(rec.get('version'))[:20]} "
                                 f"(this vpmu reads version {SCHEMA_VERSION})")
            validate(rec, n)
            assert isinstance(rec, dict)
            if first and rec["type"] != "run":
                raise TraceError(f"line {n}: a trace starts with a run record")
            if rec["icount"] < last:
                raise TraceError(f"line {n}: icount goes backwards ({rec['icount']} < {last})")
        first = False
        if isinstance(rec, dict):
            last = rec.get("icount", last)
        yield rec  # type: ignore[misc]
    if first and check:
        raise TraceError("empty: no records (a trace starts with a run record)")
