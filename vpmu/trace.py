"""Trace records: a versioned JSON Lines event stream (docs/trace.md).

Every record is one JSON object on one line with a ``type`` and the retired-instruction
count ``icount`` at which it happened.  Records are written in the order they happen
(icount is non-decreasing), keys are emitted in a fixed order and nothing host-dependent
(time, addresses of host objects) is recorded, so the same guest gives the same trace
byte for byte and traces diff cleanly.
"""
from __future__ import annotations

import json
from typing import IO, Callable, Iterable, Iterator, Optional

SCHEMA_VERSION = 1

# type -> required fields (besides "type" and "icount"), in output order
SCHEMA: dict[str, tuple[str, ...]] = {
    "run": ("version", "image", "pmu_version", "counters", "pmu_irq", "filters", "xen"),
    "exception": ("kind", "esr", "elr", "far", "from_el", "vector"),
    "irq": ("intid", "pc", "from_el"),
    "irq_level": ("intid", "level"),
    "overflow": ("counter", "value", "pc"),
    "pmu_reg": ("reg", "dir", "value", "pc"),
    "swinc": ("mask", "pc"),
    "sample": ("evcntr", "pmccntr", "pmovsset"),
    "timer": ("timer", "level"),
    "hypercall": ("nr", "name", "args", "result", "pc"),
    "xen_sample": ("vcpu", "domain_id", "pc", "flags"),
    "xen_upcall": ("port", "virq"),
    "psci": ("function", "result"),
    "semihost": ("op", "result"),
    "wfi": ("pc", "idle_cycles"),
    "virtio": ("transport", "queue", "note"),
    "exit": ("status", "reason", "cycles", "pmu"),
    "error": ("reason", "pc"),
}


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
    """Collects records in memory and/or streams them to a file."""

    def __init__(self, path: str | None = None, keep: bool = True):
        self.records: list[dict] = []
        self.keep = keep
        try:
            self._f: IO[str] | None = open(path, "w") if path else None
        except OSError as e:
            from .errors import EXIT_USAGE, VpmuError
            raise VpmuError(f"--trace {path}: cannot write ({e.strerror})", EXIT_USAGE) from None

    _earlier: Optional[Callable[[], None]] = None
    _draining = False

    def set_earlier(self, drain: Callable[[], None]) -> None:
        """Records queued elsewhere (the native hooks' ring) happened before anything added
        from now on: ``drain()`` moves them into the trace, and runs before every add."""
        self._earlier = drain

    def add(self, rec: dict) -> None:
        if self._earlier is not None and not self._draining:
            self._draining = True
            try:
                self._earlier()
            finally:
                self._draining = False
        rec = _order(rec)
        if self.keep:
            self.records.append(rec)
        if self._f:
            self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._f:
            self._f.close()
            self._f = None


def validate(rec: dict, lineno: int = 0) -> None:
    where = f"line {lineno}: " if lineno else ""
    if not isinstance(rec, dict):
        raise TraceError(f"{where}record is not an object")
    t = rec.get("type")
    if t not in SCHEMA:
        raise TraceError(f"{where}unknown record type {t!r}")
    if not isinstance(rec.get("icount"), int) or rec["icount"] < 0:
        raise TraceError(f"{where}{t} record without a valid icount")
    for k in SCHEMA[t]:
        if k not in rec:
            raise TraceError(f"{where}{t} record lacks field {k!r}")


def read(path_or_lines: str | Iterable[str], check: bool = True) -> Iterator[dict]:
    """Read (and validate) a trace: records in order, icount non-decreasing."""
    lines = open(path_or_lines) if isinstance(path_or_lines, str) else path_or_lines
    last = -1
    first = True
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraceError(f"line {n}: not JSON ({e.msg})") from None
        if check:
            validate(rec, n)
            if first and rec["type"] != "run":
                raise TraceError(f"line {n}: a trace starts with a run record")
            if first and rec.get("version") != SCHEMA_VERSION:
                raise TraceError(f"line {n}: trace schema version {rec.get('version')} "
                                 f"(this vpmu reads version {SCHEMA_VERSION})")
            if rec["icount"] < last:
                raise TraceError(f"line {n}: icount goes backwards ({rec['icount']} < {last})")
        first = False
        last = rec["icount"]
        yield rec
