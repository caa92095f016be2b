"""Random operation sequences on 2-level event channels against a plain-Python reference."""
from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from test_xen_fakes import SCRATCH, make

from vpmu.xen import abi as A
from vpmu.xen.xerrno import EINVAL

PPI = 31
OPS = st.lists(st.tuples(st.sampled_from(["bind", "close", "send", "mask", "unmask", "ack",
                                          "clear", "eoi"]),
                         st.one_of(st.integers(min_value=1, max_value=3),
                                   st.integers(min_value=1, max_value=3),
                                   st.integers(min_value=0, max_value=70))),
                min_size=4, max_size=60)


class Ref:
    """evtchn_2l semantics written out directly."""

    def __init__(self):
        self.ports, self.pending, self.masked = set(), set(), set()
        self.sel, self.upcall = 0, 0

    def notify(self, p):
        if p in self.pending:
            return
        self.pending.add(p)
        if p not in self.masked and not self.sel >> (p // 64) & 1:
            self.sel |= 1 << (p // 64)
            self.upcall = 1


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_two_level_delivery_matches_reference(ops):
    fe, env, g = make()
    assert g.map_shared_info() == 0
    ref = Ref()
    line = False
    for op, p in [("bind", 0)] * 3 + ops:
        if op == "bind":
            rc = g.evtchn(A.EVTCHNOP_bind_ipi, struct.pack("<II", 0, 0))
            want = min(set(range(1, 64)) - ref.ports)
            assert rc == 0 and env.u32(SCRATCH + 4) == want
            ref.ports.add(want)
        elif op == "close":
            rc = g.port_op(A.EVTCHNOP_close, p)
            assert rc == (0 if p in ref.ports else -EINVAL)
            if p in ref.ports:
                ref.ports.discard(p)
                ref.pending.discard(p)
        elif op == "send":
            rc = g.port_op(A.EVTCHNOP_send, p)
            assert rc == (0 if p in ref.ports else -EINVAL)
            if p in ref.ports:
                ref.notify(p)
        elif op == "mask":
            g.set_mask(p, True)
            ref.masked.add(p)
        elif op == "unmask":
            rc = g.port_op(A.EVTCHNOP_unmask, p)
            assert rc == (0 if p < 64 else -EINVAL)
            if p < 64 and p in ref.masked:
                ref.masked.discard(p)
                if p in ref.pending and not ref.sel >> (p // 64) & 1:
                    ref.sel |= 1 << (p // 64)
                    ref.upcall = 1
        elif op == "ack":
            g.ack_upcall()
            ref.sel, ref.upcall = 0, 0
        elif op == "clear":
            g.clear_pending(p)
            ref.pending.discard(p)
        elif op == "eoi":
            fe.sync_upcall_line()
        assert {q for q in range(71) if g.pending(q)} == ref.pending
        assert g.pending_sel() == ref.sel and g.upcall_pending() == ref.upcall
        if op not in ("mask", "ack", "clear"):   # every entry into Xen re-samples the line
            line = bool(ref.upcall)
        assert env.ppi.get(PPI, False) == line
