"""Building the frontend for the board: ``make_frontend(machine)``.

``vpmu.board.machine.Machine`` implements the GuestEnv methods (``vpmu.board.env``) except ``trace``
(its ``trace`` attribute is the TraceWriter), so the frontend talks to it through
:class:`MachineEnv`, which forwards everything and turns ``trace(record)`` into
``TraceWriter.add`` with the ``icount`` (and, for hypercall records, the ``pc`` of the
HVC) the trace schema requires.
"""
from __future__ import annotations

from ..config import XEN_EVTCHN_PPI, has_64bit_event_counters
from .frontend import XenFrontend
from .pmu import PageRules


class MachineEnv:
    """GuestEnv over a Machine: every attribute is the machine's, except ``trace``."""

    def __init__(self, machine):
        self._m = machine

    def __getattr__(self, name):
        return getattr(self._m, name)

    def trace(self, record: dict) -> None:
        m = self._m
        rec = dict(record)
        rec.setdefault("icount", int(m.A[_icount_index()]))
        if rec.get("type") == "hypercall":
            rec.setdefault("pc", getattr(m, "_hc_pc", None))
        m.trace.add(rec)


def _icount_index() -> int:
    from ..pmu import layout as PL
    return PL.ICOUNT


def page_rules_for(pmuver: int) -> PageRules:
    """XENPMU_flush validation for the PMU the board models (xen-pmu.md section 5)."""
    v3p5 = has_64bit_event_counters(pmuver)
    return PageRules(pmcr_rw_mask=0xFF if v3p5 else 0x7F,          # PMCR.LP from PMUv3p5
                     pmevtyper_mask=0xF80003FF if pmuver == 1 else 0xF800FFFF,
                     event_counter_bits=64 if v3p5 else 32)


def make_frontend(machine) -> XenFrontend:
    cfg = machine.cfg
    from ..dtb import XEN_VERSION       # the version the device tree's /hypervisor node names
    return XenFrontend(MachineEnv(machine), domid=cfg.xen_domid, vpmu_mode=cfg.xen_vpmu,
                       nr_vcpus=1, xen_version=XEN_VERSION, evtchn_ppi=XEN_EVTCHN_PPI,
                       page_rules=page_rules_for(cfg.pmu.pmuver),
                       on_console=getattr(machine, "out", None))
