"""xen_version (17), the errno table and the struct layouts."""
from __future__ import annotations

import errno as host_errno
import struct

import pytest
from test_xen_fakes import BAD_VA, HOLE_VA, SCRATCH, make

from vpmu.xen import VersionInfo
from vpmu.xen import abi as A
from vpmu.xen import layout as L
from vpmu.xen import xerrno
from vpmu.xen.xerrno import EFAULT, EINVAL, ENOBUFS, ENODATA, ENOSYS, EPERM

DOMU = 4


def xv(g, cmd, arg=SCRATCH):
    return g.hc(A.HYPERVISOR_xen_version, cmd, arg)


def test_errno_values_are_xens_and_match_linux():
    assert (xerrno.EPERM, xerrno.ENOENT, xerrno.ESRCH, xerrno.EIO, xerrno.ENOMEM, xerrno.EFAULT,
            xerrno.EBUSY, xerrno.EEXIST, xerrno.EINVAL, xerrno.ENOSPC, xerrno.ENOSYS,
            xerrno.EOPNOTSUPP) == (1, 2, 3, 5, 12, 14, 16, 17, 22, 28, 38, 95)
    for n, v in xerrno.NAMES.items():
        assert getattr(host_errno, v) == n
    assert -xerrno.EINVAL & (2**64 - 1) == 0xFFFF_FFFF_FFFF_FFEA
    assert -xerrno.ENOSYS & (2**64 - 1) == 0xFFFF_FFFF_FFFF_FFDA
    assert -xerrno.EOPNOTSUPP & (2**64 - 1) == 0xFFFF_FFFF_FFFF_FFA1


def test_version_number():
    fe, env, g = make()
    assert xv(g, A.XENVER_version, BAD_VA) == 0x0004_0013      # argument ignored
    fe, env, g = make(xen_version=(4, 23))
    assert xv(g, A.XENVER_version) == 0x0004_0017


@pytest.mark.parametrize("domid", [0, DOMU])
def test_strings_open_to_every_domain(domid):
    fe, env, g = make(domid=domid)
    env.put(SCRATCH, b"\xFF" * 2048)
    assert xv(g, A.XENVER_extraversion) == 0
    assert env.read_phys(SCRATCH, 17) == b".0" + bytes(14) + b"\xFF"
    assert xv(g, A.XENVER_capabilities) == 0
    assert env.read_phys(SCRATCH, 1024) == b"xen-3.0-aarch64 " + bytes(1008)
    assert xv(g, A.XENVER_changeset) == 0
    assert env.read_phys(SCRATCH, 64) == b"unavailable" + bytes(53)
    assert xv(g, A.XENVER_compile_info) == 0
    raw = env.read_phys(SCRATCH, 144)
    info = L.XEN_COMPILE_INFO.unpack(raw)
    assert info["compile_by"].rstrip(b"\0") == b"vpmu"
    assert info["compiler"][63] == 0 and len(raw) == 144
    assert xv(g, A.XENVER_platform_parameters) == 0 and env.u64(SCRATCH) == 0
    assert xv(g, A.XENVER_guest_handle) == 0 and env.read_phys(SCRATCH, 16) == bytes(16)


def test_string_truncation_keeps_nul():
    fe, env, g = make(version_info=VersionInfo(extraversion="-unstable-and-very-long"))
    assert xv(g, A.XENVER_extraversion) == 0
    assert env.read_phys(SCRATCH, 16) == b"-unstable-and-v\0"


@pytest.mark.parametrize("cmd", [A.XENVER_extraversion, A.XENVER_compile_info,
                                 A.XENVER_capabilities, A.XENVER_changeset,
                                 A.XENVER_platform_parameters, A.XENVER_get_features,
                                 A.XENVER_guest_handle, A.XENVER_commandline])
def test_bad_pointer_efault(cmd):
    fe, env, g = make()
    assert xv(g, cmd, BAD_VA) == -EFAULT
    assert xv(g, cmd, HOLE_VA) == -EFAULT


@pytest.mark.parametrize("domid,expect", [(0, 0x66805), (DOMU, 0x56005)])
def test_get_features_arm_bits(domid, expect):
    fe, env, g = make(domid=domid)
    env.put(SCRATCH, struct.pack("<II", 0, 0xFFFF_FFFF))
    assert xv(g, A.XENVER_get_features) == 0
    assert struct.unpack("<II", env.read_phys(SCRATCH, 8)) == (0, expect)


def test_get_features_submap_index_and_direct_mapped_switch():
    fe, env, g = make()
    env.put(SCRATCH, struct.pack("<II", 1, 0))
    assert xv(g, A.XENVER_get_features) == -EINVAL
    fe, env, g = make(direct_mapped=False)
    env.put(SCRATCH, struct.pack("<II", 0, 0))
    assert xv(g, A.XENVER_get_features) == 0
    bits = env.u32(SCRATCH + 4)
    assert bits & (1 << A.XENFEAT_not_direct_mapped) and not bits & (1 << A.XENFEAT_direct_mapped)
    assert bits & (1 << A.XENFEAT_dom0)


def test_pagesize_requires_null():
    fe, env, g = make()
    assert xv(g, A.XENVER_pagesize, 0) == 4096
    assert xv(g, A.XENVER_pagesize, SCRATCH) == -EINVAL


def test_commandline_privileged_or_denied():
    fe, env, g = make(version_info=VersionInfo(commandline="dom0_mem=1G vpmu"))
    assert xv(g, A.XENVER_commandline) == 0
    assert env.read_phys(SCRATCH, 1024) == b"dom0_mem=1G vpmu" + bytes(1008)
    fe, env, g = make(domid=DOMU)
    env.put(SCRATCH, b"\xFF" * 16)
    assert xv(g, A.XENVER_commandline) == 0
    assert env.read_phys(SCRATCH, 10) == b"<denied>\0\xFF"


def test_varbuf_ops():
    fe, env, g = make()
    assert xv(g, A.XENVER_extraversion2, 0) == 2               # NULL: length query
    env.put(SCRATCH, struct.pack("<I", 1) + b"\xFF" * 8)
    assert xv(g, A.XENVER_extraversion2) == -ENOBUFS
    env.put(SCRATCH, struct.pack("<I", 64) + b"\xFF" * 64)
    assert xv(g, A.XENVER_capabilities2) == 16
    assert env.read_phys(SCRATCH + 4, 17) == b"xen-3.0-aarch64 " + b"\xFF"   # no NUL copied
    assert xv(g, A.XENVER_changeset2, 0) == len("unavailable")
    assert xv(g, A.XENVER_commandline2, 0) == 0
    assert xv(g, A.XENVER_extraversion2, BAD_VA) == -EFAULT
    assert xv(g, A.XENVER_build_id, 0) == -ENODATA


def test_varbuf_privilege():
    fe, env, g = make(domid=DOMU)
    assert xv(g, A.XENVER_extraversion2, 0) == 2
    assert xv(g, A.XENVER_capabilities2, 0) == 16
    assert xv(g, A.XENVER_commandline2, 0) == -EPERM
    assert xv(g, A.XENVER_build_id, 0) == -EPERM


@pytest.mark.parametrize("cmd", [15, 100, 0x7FFF_FFFF, 0xFFFF_FFFF])
def test_unknown_subop_enosys(cmd):
    fe, env, g = make()
    assert xv(g, cmd) == -ENOSYS


# --- layouts --------------------------------------------------------------------------------------
def test_pmu_page_layout_matches_section5():
    D = L.XEN_PMU_DATA
    expect = {"vcpu_id": 0x000, "pcpu_id": 0x004, "domain_id": 0x008, "r.pc": 0x010,
              "r.sp": 0x018, "r.pstate": 0x020, "r.el": 0x02C, "pmu_flags": 0x050,
              "l.irq_ctrl": 0x058, "c.counters": 0x060, "c.types": 0x064,
              "c.nr_counters": 0x068, "c.pmcr": 0x070, "c.pmcntenset": 0x078,
              "c.pmintenset": 0x080, "c.pmovsset": 0x088, "c.pmselr": 0x090,
              "c.pmuserenr": 0x098, "c.pmccntr": 0x0A0, "c.pmccfiltr": 0x0A8,
              "c.pmevcntr": 0x0B0, "c.pmevtyper": 0x1A8}
    assert {k: D.off(k) for k in expect} == expect
    assert D.size == 0x2A0 and D.fields["c.pmevtyper"].end == 0x2A0
    assert D.fields["c.pmevcntr"].count == 31
    assert L.PMU_C_OFFSET + L.PMU_COUNTERS_REL == D.off("c.pmevcntr")
    assert L.PMU_C_OFFSET + L.PMU_TYPES_REL == D.off("c.pmevtyper")
    assert D.size - 0x10 == 656                                 # xen_pmu_arch


def test_abi_struct_sizes():
    assert L.XEN_PMU_PARAMS.size == 24 and L.VCPU_INFO.size == 48
    assert L.SHARED_INFO.size == 1088 and L.SHARED_INFO.off("evtchn_mask") == 560
    assert L.SHARED_INFO.off("wc_sec_hi") == 1084 and L.VCPU_RUNSTATE_INFO.size == 48
    assert L.EVTCHN_STATUS.size == 24 and L.XEN_ADD_TO_PHYSMAP.size == 24
    assert L.XEN_HVM_PARAM.size == 16 and L.XEN_COMPILE_INFO.size == 144


def test_struct_table_rejects_overlap():
    with pytest.raises(ValueError):
        L.Struct("bad", 8, ((0, 4, "a"), (2, 4, "b")))
    with pytest.raises(ValueError):
        L.Struct("bad", 8, ((0, 4, "a[3]"),))
