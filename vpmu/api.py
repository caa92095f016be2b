"""Python API: ``vpmu.run(elf, **options) -> RunResult`` and ``run_config(image, config)``.

The options are ``vpmu run``'s, spelled as keyword arguments (``pmu_version="3.5"``,
``counters=8``, ``filters=["deny:BR_MIS_PRED"]``, ``memory="1G"``, ``max_insns=10**6``,
``xen=True`` ...): :class:`vpmu.options.RunOptions`, which also turns them into the machine
configuration.  :func:`run_config` runs a prepared :class:`~vpmu.config.MachineConfig` (from
RunOptions, from :mod:`vpmu.kvm`'s ``Vcpu.run()`` or :mod:`vpmu.vmdesc`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .errors import VpmuError
from .options import RunOptions


@dataclass
class RunResult:
    exit_status: int                 # guest exit status (semihosting / PSCI), or the runner's error status
    output: str                      # everything the guest wrote to the UART / semihosting console
    reason: str                      # "exit", "system_off", "reset", or an error reason
    icount: int                      # instructions retired
    cycles: int                      # CPU cycles (cycle model)
    pmu: dict = field(default_factory=dict)     # final PMU registers: pmcr, pmcntenset, pmintenset,
                                                # pmovsset, pmselr, pmuserenr, pmccntr, pmccfiltr,
                                                # evcntr[list], evtyper[list], n
    trace: list = field(default_factory=list)   # trace records (dicts), as in --trace
    error: Optional[str] = None                 # one-line error for runner-side failures
    stats: dict = field(default_factory=dict)   # how the run was counted: blocks counted deferred,
                                                # deferred flushes (not part of the trace)
    observed: list = field(default_factory=list)  # config.observe's counters (vpmu stat), in order
    guest_ns: int = 0                           # guest time at the end: cycles + WFI idle, 1 GHz clock

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
    """Run a guest image (path or loader.Image) with a prepared MachineConfig.

    A runner-side failure (bad image, instruction limit, ...) is returned as a RunResult with
    ``error`` set and ``exit_status`` the runner's status, unless ``raise_errors``."""
    # Imported here, not at the top: the board loads Unicorn, numba and the compiled kernels,
    # which ``import vpmu`` (and ``vpmu --help``, ``vpmu policy``...) should not pay for.
    from .board.loader import open_image
    from .board.machine import Machine
    from .pmu import layout as L
    from .trace import TraceWriter

    out: list[bytes] = []
    sink = out.append if capture else None
    m = None
    try:
        img = open_image(image) if isinstance(image, str) else image
        trace = TraceWriter(config.trace_path, keep=keep_trace)
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
    return RunResult(exit_status=status, output=b"".join(out).decode("utf-8", "replace"), reason=reason,
                     icount=int(m.A[L.ICOUNT]) if m else 0, cycles=int(m.A[L.CYCLES]) if m else 0,
                     pmu=m.pmu_state() if m else {}, trace=m.trace.records if m else [], error=error,
                     stats=m.stats() if m else {}, observed=m.observed() if m else [],
                     guest_ns=m.now_ns() if m else 0)


def run(elf: str, **options) -> RunResult:
    """Run a guest with ``vpmu run``'s options as keyword arguments (``vpmu run --help``,
    :class:`vpmu.options.RunOptions`).  A misspelt option name raises TypeError naming the
    nearest one; a bad value raises :class:`vpmu.errors.UsageError`, a VM KVM would refuse
    :class:`vpmu.kvm.KvmAttrError`.  Runner-side failures of the run itself are returned as
    a RunResult with ``error`` set."""
    cfg = RunOptions.from_keywords(**options).to_machine_config()
    return run_config(elf, cfg)
