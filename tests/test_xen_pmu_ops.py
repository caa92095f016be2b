"""xenpmu_op: every errno row of xen-pmu.md sections 1 and 2, dom0 and domU, all boot modes."""
from __future__ import annotations

import struct

import pytest
from test_xen_fakes import BAD_VA, HOLE_VA, PMU_PAGE, RAM_BASE, SCRATCH, make

from vpmu.xen import abi as A
from vpmu.xen.xerrno import (EBUSY, EEXIST, EFAULT, EINVAL, ENOENT, EOPNOTSUPP, EPERM)

OPS = range(8)
DOMU = 7
MODES = ["off", "self", "hv", "all"]


# --- 1.1 prologue -------------------------------------------------------------------------------
@pytest.mark.parametrize("domid", [0, DOMU])
@pytest.mark.parametrize("op", list(OPS) + [8, 0xFFFF_FFFF])
def test_vpmu_off_at_boot_every_op_eopnotsupp(domid, op):
    fe, env, g = make(domid=domid, mode="off")
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, BAD_VA) == -EOPNOTSUPP
    assert g.pmu(op) == -EOPNOTSUPP


@pytest.mark.parametrize("op", [0, 1, 2, 3, 8, 1000])
def test_domu_privileged_and_unknown_ops_eperm(op):
    fe, env, g = make(domid=DOMU)
    assert g.pmu(op) == -EPERM
    assert g.pmu(op, maj=5) == -EPERM                     # privilege is checked before the copy
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, BAD_VA) == -EPERM


def test_domu_unprivileged_ops_allowed():
    fe, env, g = make(domid=DOMU)
    assert g.pmu_init() == 0
    assert g.pmu(A.XENPMU_lvtpc_set, arg=0) == 0
    assert g.pmu(A.XENPMU_flush, arg=0) == 0
    assert g.pmu(A.XENPMU_finish) == 0


@pytest.mark.parametrize("domid", [0, DOMU])
@pytest.mark.parametrize("op", [A.XENPMU_init, A.XENPMU_finish])
def test_copy_in_fault_efault(domid, op):
    fe, env, g = make(domid=domid)
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, BAD_VA) == -EFAULT
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, HOLE_VA) == -EFAULT
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, 0) == -EFAULT


@pytest.mark.parametrize("op", [A.XENPMU_mode_set, A.XENPMU_feature_set])
def test_dom0_copy_in_fault_efault(op):
    fe, env, g = make()
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, BAD_VA) == -EFAULT


@pytest.mark.parametrize("domid,ops", [(0, [1, 3, 4, 5]), (DOMU, [4, 5])])
def test_version_major_checked_minor_not(domid, ops):
    for op in ops:
        fe, env, g = make(domid=domid)
        assert g.pmu(op, maj=1) == -EINVAL
        assert g.pmu(op, maj=0xFFFF_FFFF) == -EINVAL
    fe, env, g = make(domid=domid)
    g.params(maj=0, minor=0xDEAD, val=PMU_PAGE >> 12)
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_init, SCRATCH) == 0


def test_ops_that_do_not_read_the_argument():
    fe, env, g = make()
    g.params(maj=9)                                       # a bad version is never looked at
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_mode_get, SCRATCH) == 0
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_feature_get, SCRATCH) == 0
    assert g.pmu_init() == 0
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_lvtpc_set, 0) == 0    # Linux passes NULL
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_flush, BAD_VA) == 0


def test_unknown_op_privileged_einval():
    fe, env, g = make()
    assert g.pmu(8) == -EINVAL
    assert g.hc(A.HYPERVISOR_xenpmu_op, 8, BAD_VA) == -EINVAL
    # op is an unsigned int: the upper half of x0 is ignored
    assert g.hc(A.HYPERVISOR_xenpmu_op, (1 << 32) | A.XENPMU_mode_get, SCRATCH) == 0


# --- 1.2 per-op rules ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode,val", [("self", 1), ("hv", 2), ("all", 4)])
def test_mode_get_fills_whole_struct(mode, val):
    fe, env, g = make(mode=mode)
    env.put(SCRATCH, b"\xAA" * 32)
    assert g.pmu(A.XENPMU_mode_get, arg=SCRATCH) == 0
    assert env.read_phys(SCRATCH, 24) == struct.pack("<IIQII", 0, 1, val, 0, 0)
    assert env.read_phys(SCRATCH + 24, 8) == b"\xAA" * 8


def test_mode_get_write_fault():
    fe, env, g = make()
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_mode_get, HOLE_VA) == -EFAULT
    assert g.hc(A.HYPERVISOR_xenpmu_op, A.XENPMU_feature_get, BAD_VA) == -EFAULT


@pytest.mark.parametrize("val", [8, 0x10, 1 << 40, 3, 5, 6, 7, 0xFFFF_FFFF_FFFF_FFFF])
def test_mode_set_rejects_bad_values(val):
    fe, env, g = make()
    assert g.pmu(A.XENPMU_mode_set, val=val) == -EINVAL
    assert fe.vpmu_mode == A.XENPMU_MODE_SELF


@pytest.mark.parametrize("val", [0, 1, 2, 4])
def test_mode_set_legal_values_with_no_active_vpmu(val):
    fe, env, g = make()
    assert g.pmu(A.XENPMU_mode_set, val=val) == 0
    assert fe.vpmu_mode == val


def test_mode_set_busy_rules_with_active_domu_vpmu():
    fe, env, g = make()
    fe.add_foreign_vcpu()                                 # created in SELF: counted
    assert fe.active_vpmus == 1
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_HV) == 0       # SELF -> HV
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_SELF) == 0     # HV -> SELF
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_SELF) == 0     # unchanged: no-op
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_OFF) == -EBUSY
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_ALL) == -EBUSY
    assert fe.vpmu_mode == A.XENPMU_MODE_SELF
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_HV) == 0
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_ALL) == -EBUSY


def test_count_drops_only_on_vcpu_destruction():
    fe, env, g = make()
    h1, h2 = fe.add_foreign_vcpu(), fe.add_foreign_vcpu()
    assert fe.active_vpmus == 2
    fe.destroy_foreign_vcpu(h1)
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_OFF) == -EBUSY
    fe.destroy_foreign_vcpu(h2)
    assert fe.active_vpmus == 0
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_OFF) == 0


def test_switching_away_from_off_or_all_always_succeeds():
    fe, env, g = make(mode="all")
    fe.add_foreign_vcpu()                                 # created in ALL: no vPMU, not counted
    assert fe.active_vpmus == 0
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_OFF) == 0
    fe.add_foreign_vcpu()                                 # created in OFF: not counted either
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_HV) == 0
    fe.add_foreign_vcpu()                                 # created in HV: counted
    assert fe.active_vpmus == 1
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_ALL) == -EBUSY


def test_feature_get_writes_only_val():
    fe, env, g = make()
    assert g.pmu(A.XENPMU_feature_set, val=A.XENPMU_FEATURE_IPC_ONLY) == 0
    env.put(SCRATCH, b"\x55" * 24)
    assert g.pmu(A.XENPMU_feature_get, arg=SCRATCH) == 0
    assert env.read_phys(SCRATCH, 8) == b"\x55" * 8
    assert env.u64(SCRATCH + 8) == A.XENPMU_FEATURE_IPC_ONLY
    assert env.read_phys(SCRATCH + 16, 8) == b"\x55" * 8


@pytest.mark.parametrize("val", [8, 0x80, 1 << 63])
def test_feature_set_rejects_unknown_bits(val):
    fe, env, g = make()
    assert g.pmu(A.XENPMU_feature_set, val=val) == -EINVAL


def test_feature_set_combinations_mode_off_and_busy():
    fe, env, g = make()
    assert g.pmu(A.XENPMU_feature_set, val=6) == 0        # IPC_ONLY | ARCH_ONLY is legal
    assert g.pmu(A.XENPMU_mode_set, val=0) == 0
    assert g.pmu(A.XENPMU_feature_set, val=7) == 0        # mode is not consulted
    assert g.pmu(A.XENPMU_mode_set, val=1) == 0
    fe.add_foreign_vcpu()
    assert g.pmu(A.XENPMU_feature_set, val=7) == 0        # unchanged: fine while busy
    assert g.pmu(A.XENPMU_feature_set, val=1) == -EBUSY
    assert fe.domain.vpmu.features == 7


def test_init_rules_in_order():
    fe, env, g = make(nr_vcpus=2)
    assert g.pmu_init(vcpu=2) == -EINVAL                  # vcpu >= max_vcpus
    assert g.pmu_init(vcpu=0xFFFF_FFFF) == -EINVAL
    assert g.pmu(A.XENPMU_init, val=BAD_VA >> 12) == -EINVAL          # not RAM
    assert g.pmu(A.XENPMU_init, val=(1 << 64) - 1) == -EINVAL
    assert g.pmu(A.XENPMU_init, val=(RAM_BASE + (4 << 20)) >> 12) == -EINVAL
    assert g.pmu_init() == 0
    assert g.pmu(A.XENPMU_init, val=BAD_VA >> 12) == -EINVAL          # page check first
    assert g.pmu_init(page=PMU_PAGE + 0x1000) == -EEXIST
    assert g.pmu_init(vcpu=1, page=PMU_PAGE + 0x1000) == 0           # another vCPU of ours


def test_init_writes_read_only_offsets():
    fe, env, g = make()
    env.put(PMU_PAGE, b"\xEE" * 4096)
    assert g.pmu_init() == 0
    assert env.u32(PMU_PAGE + 0x60) == 0x50
    assert env.u32(PMU_PAGE + 0x64) == 0x148
    assert env.u32(PMU_PAGE + 0x68) == 6
    assert env.read_phys(PMU_PAGE, 0x60) == b"\xEE" * 0x60          # nothing else
    assert env.read_phys(PMU_PAGE + 0x6C, 8) == b"\xEE" * 8


def test_domu_created_in_all_mode_has_no_vpmu():
    fe, env, g = make(domid=DOMU, mode="all", nr_vcpus=2)
    assert g.pmu_init(vcpu=5) == -EINVAL                  # range before availability
    assert g.pmu(A.XENPMU_init, val=BAD_VA >> 12) == -ENOENT         # availability before gfn
    assert g.pmu_init() == -ENOENT and g.pmu_init(vcpu=1) == -ENOENT
    assert not fe.pmu_available()


def test_init_while_mode_off_registers_page_without_vpmu():
    fe, env, g = make()
    assert g.pmu(A.XENPMU_mode_set, val=0) == 0
    assert g.pmu_init() == 0
    assert env.u32(PMU_PAGE + 0x60) == 0                  # arch init skipped
    assert fe.pmu_irq_owned() and not fe.domain.vcpus[0].pmu.initialised
    assert g.pmu_init() == -EEXIST
    assert g.pmu(A.XENPMU_mode_set, val=1) == 0
    assert g.pmu(A.XENPMU_finish) == 0 and g.pmu_init() == 0
    assert fe.domain.vcpus[0].pmu.initialised and env.u32(PMU_PAGE + 0x60) == 0x50


def test_finish_semantics():
    fe, env, g = make(domid=DOMU, nr_vcpus=2)
    assert fe.active_vpmus == 2
    assert g.pmu(A.XENPMU_finish, vcpu=9) == 0            # out of range: silently 0
    assert g.pmu_init() == 0
    env.put(PMU_PAGE + 0x100, b"keep")
    assert g.pmu(A.XENPMU_finish) == 0
    assert not fe.pmu_irq_owned()
    assert env.read_phys(PMU_PAGE + 0x100, 4) == b"keep"  # page left as it was
    assert fe.active_vpmus == 2                           # availability / count unchanged
    assert g.pmu_init() == 0                              # init may be called again
    assert g.pmu(A.XENPMU_finish, vcpu=1) == 0            # another vCPU, nothing registered


@pytest.mark.parametrize("op", [A.XENPMU_lvtpc_set, A.XENPMU_flush])
def test_lvtpc_set_and_flush_need_a_page(op):
    fe, env, g = make(nr_vcpus=2)
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, 0) == -EINVAL
    assert g.pmu_init(vcpu=1) == 0                        # acts on the calling vCPU only
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, 0) == -EINVAL
    assert g.pmu_init(vcpu=0) == 0
    assert g.hc(A.HYPERVISOR_xenpmu_op, op, 0) == 0


# --- 2: modes x domains -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("domid", [0, DOMU])
def test_boot_mode_matrix(mode, domid):
    fe, env, g = make(domid=domid, mode=mode, nr_vcpus=3)
    rc_get = g.pmu(A.XENPMU_mode_get, arg=SCRATCH)
    got = env.u64(SCRATCH + 8)
    rc_init = g.pmu_init()
    if mode == "off":
        assert rc_get == rc_init == -EOPNOTSUPP
        assert not fe.pmu_available() and fe.active_vpmus == 0
        return
    assert rc_get == (0 if domid == 0 else -EPERM)
    if domid == 0:
        assert got == A.MODE_BY_NAME[mode]
        assert rc_init == 0 and fe.active_vpmus == 0      # dom0 is never counted
    elif mode in ("self", "hv"):
        assert rc_init == 0 and fe.active_vpmus == 3
    else:
        assert rc_init == -ENOENT and fe.active_vpmus == 0


def test_dom0_mode_change_after_domu_creation_does_not_grant_vpmu():
    # A domU vCPU created while the mode was ALL stays without vPMU after the mode changes.
    fe, env, g = make(mode="all")
    h = fe.add_foreign_vcpu()
    assert g.pmu(A.XENPMU_mode_set, val=A.XENPMU_MODE_SELF) == 0
    assert fe.active_vpmus == 0
    fe.destroy_foreign_vcpu(h)
    assert fe.active_vpmus == 0


def test_trace_records_for_xenpmu_op():
    fe, env, g = make()
    g.pmu(A.XENPMU_mode_set, val=9)
    rec = env.of_type("hypercall")[-1]
    assert rec["nr"] == 40 and rec["name"] == "xenpmu_op"
    assert rec["op"] == 1 and rec["op_name"] == "mode_set"
    assert rec["args"][:2] == [1, SCRATCH] and len(rec["args"]) == 5
    assert rec["result"] == -EINVAL and rec["errno"] == "EINVAL"
