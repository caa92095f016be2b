"""Python API: ``vpmu.run(elf, **options) -> RunResult`` and ``run_config(image, config)``.

The options are ``vpmu run``'s, spelled as keyword arguments (``pmu_version="3.5"``,
``counters=8``, ``filters=["deny:BR_MIS_PRED"]``, ``memory="1G"``, ``max_insns=10**6``,
``xen=True`` ...): :class:`vpmu.options.RunOptions`, which also turns them into the machine
configuration.  :func:`run_config` runs a prepared :class:`~vpmu.config.MachineConfig` (from
RunOptions, from :mod:`vpmu.kvm`'s ``Vcpu.run()`` or :mod:`vpmu.vmdesc`).
"""
from __future__ import annotations

import os
from typing import Optional, Union

from .errors import VpmuError
from .options import RunOptions

SOURCE_GUEST, SOURCE_RUNNER = "guest", "runner"     # who chose a run's exit status


CAPTURE_MAX = 16 << 20              # RunResult.output keeps this many bytes of the guest's output


class RunResult:
    """The outcome of one run.

    - ``exit_status``: the guest's exit status (semihosting / PSCI) when ``source`` is
      ``"guest"``, the runner's documented status (vpmu.errors) when it is ``"runner"``;
    - ``output``: everything the guest wrote to the UART / semihosting console, as text
      (kept as bytes, ``output_bytes``, and decoded as UTF-8 with replacement on first use);
    - ``reason``: "exit", "system_off", "reset", ... or "error"; ``error``: the one-line
      reason of a runner-side failure, else None;
    - ``icount``, ``cycles``: instructions retired, CPU cycles (cycle model);
    - ``pmu``: the final PMU registers (pmcr, pmcntenset, pmintenset, pmovsset, pmselr,
      pmuserenr, pmccntr, pmccfiltr, evcntr[list], evtyper[list], n, pmceid0/1);
    - ``trace``: the trace records (dicts), as in ``--trace`` (up to its ``trace_limit``);
      ``trace_error``: a write error of the ``--trace`` file (the run itself completed);
    - ``output_dropped``: bytes of output beyond CAPTURE_MAX, not in ``output`` (whose text
      then ends with a "[vpmu: output truncated ...]" line);
    - ``stats``: how the run was counted (blocks counted deferred, flushes; not in the trace);
    - ``observed``: the observer counters of ``config.observe`` (vpmu stat), in order;
    - ``guest_ns``: guest time at the end (cycles + WFI idle, 1 GHz clock).
    """

    def __init__(self, exit_status: int, output: Union[bytes, bytearray, str] = b"", reason: str = "",
                 icount: int = 0, cycles: int = 0, pmu: Optional[dict] = None, trace: Optional[list] = None,
                 error: Optional[str] = None, stats: Optional[dict] = None, source: Optional[str] = None,
                 trace_error: Optional[str] = None, observed: Optional[list] = None, guest_ns: int = 0,
                 output_dropped: int = 0):
        self.exit_status = exit_status
        self._text: Optional[str] = output if isinstance(output, str) else None
        self.output_bytes = output.encode("utf-8", "surrogateescape") if isinstance(output, str) else bytes(output)
        self.reason, self.icount, self.cycles = reason, icount, cycles
        self.pmu = {} if pmu is None else pmu
        self.trace = [] if trace is None else trace
        self.error, self.trace_error = error, trace_error
        self.stats = {} if stats is None else stats
        self.source = source or (SOURCE_RUNNER if error is not None else SOURCE_GUEST)
        self.observed = [] if observed is None else observed
        self.guest_ns = guest_ns
        self.output_dropped = output_dropped

    @property
    def output(self) -> str:
        if self._text is None:
            self._text = self.output_bytes.decode("utf-8", "replace")
            if self.output_dropped:
                self._text += (f"\n[vpmu: output truncated after {len(self.output_bytes)} bytes; "
                               f"{self.output_dropped} more not captured]\n")
        return self._text

    def __repr__(self) -> str:
        return (f"RunResult(exit_status={self.exit_status}, source={self.source!r}, reason={self.reason!r}, "
                f"icount={self.icount}, output={len(self.output_bytes)} bytes, trace={len(self.trace)} records"
                + (f", error={self.error!r}" if self.error else "") + ")")

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    def kv(self) -> dict:
        """The guest's ``key=value`` result lines as a dict (values as str)."""
        out = {}
        for line in self.output.splitlines():
            if "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                if k and " " not in k.strip():
                    out[k.strip()] = v.strip()
        return out


def run_config(image, config, *, capture: bool = True, keep_trace: bool = True, xen_factory=None,
               raise_errors: bool = False) -> RunResult:
    """Run a guest image (a path: str or os.PathLike, or a loader.Image) with a prepared
    MachineConfig.

    A runner-side failure (bad image, instruction limit, ...) is returned as a RunResult with
    ``error`` set and ``exit_status`` the runner's status, unless ``raise_errors``.  A write
    error of the trace file does not stop the run: it is the result's ``trace_error``."""
    # Imported here, not at the top: the board loads Unicorn, numba and the compiled kernels,
    # which ``import vpmu`` (and ``vpmu --help``, ``vpmu policy``...) should not pay for.
    from .board.loader import open_image
    from .board.machine import Machine
    from .pmu import layout as L
    from .trace import TraceWriter

    out = _Capture(CAPTURE_MAX)                 # the first CAPTURE_MAX bytes, and a count of the rest
    sink = out if capture else None
    m = None
    trace = None
    try:
        img = open_image(os.fspath(image), config.memory) if isinstance(image, (str, os.PathLike)) else image
        trace = TraceWriter(config.trace_path, keep=keep_trace, limit=config.trace_limit)
        if config.xen and xen_factory is None:
            from .xen import make_frontend as xen_factory    # the Xen package builds on the board
        m = Machine(config, img, out=sink, err=sink, trace=trace, xen_factory=xen_factory)
        status = m.run()
        reason, error = m.exit_reason, None
    except VpmuError as e:
        if raise_errors:
            raise
        status, reason, error = e.status, "error", str(e)
    finally:
        if m is not None:
            m.close()
        if trace is not None:
            trace.close()                # a no-op after the machine's final record
    return RunResult(exit_status=status, output=out.buf, output_dropped=out.dropped, reason=reason,
                     icount=int(m.A[L.ICOUNT]) if m else 0, cycles=int(m.A[L.CYCLES]) if m else 0,
                     pmu=m.pmu_state() if m else {}, trace=m.trace.records if m else [], error=error,
                     stats=m.stats() if m else {}, trace_error=trace.write_error if trace else None,
                     observed=m.observed() if m else [], guest_ns=m.now_ns() if m else 0)


class _Capture:
    """The guest's output in memory: the first ``limit`` bytes, and a count of the rest (the
    run's own budget, ``--max-output``, may be far larger)."""

    def __init__(self, limit: int):
        self.buf = bytearray()
        self.limit = limit
        self.dropped = 0

    def __call__(self, data: bytes) -> None:
        room = self.limit - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.dropped += max(len(data) - max(room, 0), 0)


def run(elf: Union[str, "os.PathLike[str]"], **options) -> RunResult:
    """Run a guest (a path: str or os.PathLike) with ``vpmu run``'s options as keyword arguments
    (``vpmu run --help``, :class:`vpmu.options.RunOptions`).  A misspelt option name raises
    TypeError naming the nearest one, so does a guest that is not a path; a bad value raises
    :class:`vpmu.errors.UsageError`, a VM KVM would refuse :class:`vpmu.kvm.KvmAttrError`.
    Runner-side failures of the run itself are returned as a RunResult with ``error`` set."""
    if not isinstance(elf, (str, os.PathLike)):
        raise TypeError(f"the guest must be a path (str or os.PathLike), not {type(elf).__name__}")
    cfg = RunOptions.from_keywords(**options).to_machine_config()
    return run_config(elf, cfg)
