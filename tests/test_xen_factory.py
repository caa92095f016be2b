"""make_frontend(machine): configuration from MachineConfig and trace records the schema accepts."""
from __future__ import annotations

import numpy as np
import pytest
from test_xen_fakes import PMU_PAGE, FakeEnv, Guest, ctx

from vpmu import trace as T
from vpmu.config import MachineConfig, PmuConfig
from vpmu.pmu import layout as PL
from vpmu.xen import abi as A
from vpmu.xen import make_frontend
from vpmu.xen.factory import page_rules_for


class FakeMachine:
    """What make_frontend needs of vpmu.board.machine.Machine: the GuestEnv methods,
    ``cfg``, the arena ``A`` (icount), ``trace`` (a TraceWriter), ``out`` and ``_hc_pc``."""

    def __init__(self, cfg: MachineConfig):
        self.env = FakeEnv()
        self.cfg = cfg
        self.A = np.zeros(PL.ARENA_WORDS, dtype=np.uint64)
        self.trace = T.TraceWriter()
        self.output: list[bytes] = []
        self.out = self.output.append
        self._hc_pc = 0x4008_0000

    def __getattr__(self, name):
        return getattr(self.env, name)


def build(**cfg):
    m = FakeMachine(MachineConfig(xen=True, **cfg))
    fe = make_frontend(m)
    return m, fe, Guest(fe, m.env)


def test_config_is_honoured():
    m, fe, g = build(xen_domid=5, xen_vpmu="hv")
    assert fe.domain.domain_id == 5 and not fe.domain.is_privileged and fe.vpmu_mode == A.XENPMU_MODE_HV
    assert fe.active_vpmus == 1 and fe.domain.evtchn_ppi == 31


@pytest.mark.parametrize("version,bits,rw,typer", [("3.0", 32, 0x7F, 0xF80003FF),
                                                   ("3.4", 32, 0x7F, 0xF800FFFF),
                                                   ("3.5", 64, 0xFF, 0xF800FFFF),
                                                   ("3.7", 64, 0xFF, 0xF800FFFF)])
def test_page_rules_follow_the_pmu_version(version, bits, rw, typer):
    r = page_rules_for(PmuConfig(version=version).pmuver)
    assert (r.event_counter_bits, r.pmcr_rw_mask, r.pmevtyper_mask) == (bits, rw, typer)
    m, fe, g = build(pmu=PmuConfig(version=version))
    assert fe.domain.vpmu.rules == r


def test_trace_records_validate_against_the_schema():
    m, fe, g = build()
    m.A[PL.ICOUNT] = 1234
    assert g.map_shared_info() == 0
    rc, port = g.bind_virq(A.VIRQ_XENPMU)
    assert rc == 0 and g.pmu_init() == 0
    g.set_irq_ctrl(masked=False)
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert fe.on_pmu_overflow(ctx()) and fe.on_pmu_overflow(ctx())       # one sample, one drop
    g.ack_upcall()
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    recs = m.trace.records
    for r in recs:
        T.validate(r)
    types = [r["type"] for r in recs]
    assert {"hypercall", "xen_sample", "xen_upcall"} <= set(types)
    hc = [r for r in recs if r["type"] == "hypercall"]
    assert all(r["pc"] == 0x4008_0000 and r["icount"] == 1234 for r in hc)


def test_console_goes_to_machine_output():
    m, fe, g = build()
    m.env.put(PMU_PAGE, b"hi\n")
    assert g.hc(A.HYPERVISOR_console_io, A.CONSOLEIO_write, 3, PMU_PAGE) == 0
    assert m.output == [b"hi\n"]
