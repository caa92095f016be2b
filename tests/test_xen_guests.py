"""Guest-level tests of the Xen frontend (issue 5): real AArch64 guests make Xen hypercalls
through HVC #0xEA1 on the board, and the tests assert the exact key=value results they print
and the trace (xen_sample / xen_upcall / hypercall records).

Guests (guests/src, ABI in xen_hcall.h):
- xen_pmu_driver: a Linux-style xenpmu driver on the Arm page (xen-pmu.md section 5);
- xen_evtchn: event channels, vCPU timers and the companion hypercalls;
- xen_badptr: bad pointers through every pointer-taking hypercall.
Each runs as dom0 and as an unprivileged domU where results differ, and in the vPMU boot
modes where they matter.  The emulator bugs these guests found are fixed; their tests stay as
regression tests.
"""
from __future__ import annotations

from collections import Counter

import pytest

from vpmu.testing import assert_kv, assert_overflows, records

DOMID_SELF = 0x7FF0
EFAULT, EINVAL, EPERM, EOPNOTSUPP = -14, -22, -1, -95
FEATURES = {0: 0x66805, 1: 0x56005}         # XENVER_get_features: dom0 (direct-mapped) / domU
MODES = {"self": 1, "hv": 2, "all": 4}


def xen_run(vpmu_run, guest, domid=0, vpmu="self", **options):
    return vpmu_run(guest, xen=True, xen_domid=domid, xen_vpmu=vpmu, **options)


def flush_results(r):
    return Counter(h["result"] for h in records(r, "hypercall", name="xenpmu_op", op_name="flush"))


# ================================================================================ xen_pmu_driver
@pytest.mark.parametrize("domid,vpmu", [(0, "self"), (1, "self"), (0, "hv"), (0, "all")])
def test_pmu_driver_one_upcall_per_overflow(vpmu_run, domid, vpmu):
    r = xen_run(vpmu_run, "xen_pmu_driver", domid, vpmu)
    assert (r.exit_status, r.reason) == (0, "exit")
    # set-up: shared_info, vcpu_info (all pending: one spurious upcall), init, VIRQ_XENPMU
    assert_kv(r, features=FEATURES[domid], map_shared_info=0, register_vcpu_info=0,
              register_vcpu_info_again=-16, vi_upcall_pending=1, vi_pending_sel=(1 << 64) - 1,
              spurious_upcalls=1, mode_get=0 if domid == 0 else EPERM,
              init=0, init_again=-17, init_vcpu1=EINVAL, c_counters=0x50, c_types=0x148,
              nr_counters=6, flags_after_init=0, pmu_port=1)
    kv = r.kv()
    assert kv.get("mode") == (str(MODES[vpmu]) if domid == 0 else None)
    # masked after init: the overflow is dropped and stays in PMOVSSET; lvtpc_set unmasks
    assert_kv(r, masked_upcalls=0, masked_pmovsset=1, lvtpc_set=0)
    # 50 overflows (T / K), one upcall each, 40 sampled at EL1 and 10 at EL0
    assert_kv(r, overflows=50, pmu_upcalls=50, upcalls=51, samples_el1=40, samples_el0=10,
              br_counted=1, other_ports=0, flush_errors=0)
    # every sample: flags, r.pc/pstate/el/sp equal to the upcall's own exception frame, the
    # loop's pc, DOMID_SELF, PMOVSSET = counter 0 only; frozen while cached
    assert_kv(r, bad_flags=0, bad_pc=0, bad_pstate=0, bad_el=0, bad_sp=0, pc_outside_loop=0,
              bad_ids=0, bad_pmovsset=0, bad_ctl=0, not_frozen=0, cached_after_flush=0)
    # an invalid PMSELR: -EIO, still cached and frozen; the repaired page flushes
    assert_kv(r, eio_flush=-5, eio_still_cached=1, eio_still_frozen=1, eio_fixed_flush=0)
    # XENPMU_finish: no page any more, the native PMU PPI 23 fires again (and only then)
    assert_kv(r, finish=0, lvtpc_set_after_finish=EINVAL, flush_after_finish=EINVAL,
              native_irqs=1, native_ovs=1, upcalls_after_finish=0, other_irqs=0, failures=0)

    # --- the trace: one xen_sample per upcall ----------------------------------------------
    samples = records(r, "xen_sample")
    taken = [s for s in samples if s["dropped"] is None]
    assert [s["dropped"] for s in samples if s["dropped"]] == ["masked"]
    assert len(taken) == 50
    assert Counter(s["el"] for s in taken) == {1: 40, 0: 10}
    for s in taken:
        assert (s["vcpu"], s["domain_id"], s["port"]) == (0, DOMID_SELF, 1)
        assert s["flags"] == (3 if s["el"] == 0 else 1)              # PMU_CACHED | SAMPLE_USER
    irq31 = {i["icount"]: i for i in records(r, "irq", intid=31)}
    ovf0 = {o["icount"] for o in records(r, "overflow", counter=0)}
    for s in taken:     # sampled at the overflow; the upcall taken at that very boundary
        assert s["icount"] in ovf0
        assert irq31[s["icount"]]["pc"] == s["pc"]
    assert_overflows(r, counter=0, times=52)                         # masked + 50 + native
    assert {o["counter"] for o in records(r, "overflow")} == {0}
    ups = records(r, "xen_upcall")
    rising = [(u["port"], u["virq"]) for u in ups if u["level"]]
    assert Counter(rising) == {(1, 13): 50, (None, None): 1}         # + register_vcpu_info's
    assert sum(1 for u in ups if not u["level"]) == 51
    assert len(irq31) == 51
    # 50 good flushes, one refused (the rejected field is in the record), two after finish
    assert flush_results(r) == {0: 50, -5: 1, EINVAL: 1}
    eio, = records(r, "hypercall", name="xenpmu_op", op_name="flush", result=-5)
    assert (eio["errno"], eio["detail"]) == ("EIO", {"rejected": "pmselr"})
    finish, = records(r, "hypercall", name="xenpmu_op", op_name="finish")
    ppi23, = records(r, "irq", intid=23)
    assert ppi23["icount"] > finish["icount"]


def test_pmu_driver_sample_includes_the_overflowing_instruction(vpmu_run):
    r = xen_run(vpmu_run, "xen_pmu_driver")
    assert_kv(r, regs_differ_from_page=0, counter0_consistent=1)


@pytest.mark.parametrize("domid,vpmu,init,flush,mode_get", [
    (1, "all", -2, EINVAL, EPERM),            # a domU created in mode ALL has no vPMU: -ENOENT
    (0, "off", EOPNOTSUPP, EOPNOTSUPP, EOPNOTSUPP),   # vpmu off at boot: every op
    (1, "off", EOPNOTSUPP, EOPNOTSUPP, EOPNOTSUPP),
])
def test_pmu_driver_without_vpmu(vpmu_run, domid, vpmu, init, flush, mode_get):
    r = xen_run(vpmu_run, "xen_pmu_driver", domid, vpmu)
    assert_kv(r, features=FEATURES[domid], spurious_upcalls=1, mode_get=mode_get, init=init,
              vpmu="disabled", flush_without_page=flush, bind_virq_xenpmu=1, failures=0)
    assert "pmu_upcalls" not in r.kv()
    assert not records(r, "xen_sample")


# ==================================================================================== xen_evtchn
def evtchn_expected(domid: int, vpmu: str) -> dict:
    dom0 = domid == 0
    p = (lambda n: n) if dom0 else (lambda n: n - 1)   # a domU has no VIRQ_CONSOLE port (2)
    udom = f"0x{0xAAAA0000 | domid:x}"                  # u.dom (u16) over the 0xAA fill
    e = dict(
        map_shared_info=0,
        bind_timer=1, bind_timer_again=-17, bind_virq_24=EINVAL, bind_timer_vcpu1=-2,
        bind_console_vcpu1=EINVAL, bind_console=2 if dom0 else -16, bind_debug=p(3),
        bind_ipi=p(4), alloc_unbound=p(5),
        send_virq_port=EINVAL, send_port0=EINVAL, send_free_port=EINVAL, send_unbound=0,
        send_beyond_bucket=EINVAL, unbound_pending=0,
        status_timer=0, status_timer_fields="4,0,0x0,0xaaaaaaaa",
        status_ipi=0, status_ipi_fields="5,0,0xaaaaaaaa,0xaaaaaaaa",
        status_unbound=0, status_unbound_fields=f"1,0,{udom},0xaaaaaaaa",
        status_port0=0, status_port0_fields="0,0,0xaaaaaaaa,0xaaaaaaaa",
        status_free=0, status_free_fields="0,0,0xaaaaaaaa,0xaaaaaaaa",
        status_beyond_bucket=EINVAL, status_other_domain=-3,
        send_ipi=0, ipi_upcalls=1,
        send_masked=0, masked_pending=1, masked_upcall_flag=0, masked_upcalls=0, unmask=0,
        unmask_upcalls=1, unmask_port_hits=1, after_unmask_pending=0, after_unmask_masked=0,
        close_ipi=0, closed_pending=0, closed_masked=1, close_again=EINVAL, close_port0=EINVAL,
        send_closed=EINVAL, status_closed=0, status_closed_fields="0,0,0xaaaaaaaa,0xaaaaaaaa",
        rebind_ipi=p(4), rebound_masked=1, rebound_masked_hits=0, rebound_unmasked_hits=1,
        unmask_beyond_bucket=EINVAL,
        bind_interdomain=p(7), bind_interdomain_upcalls=1, send_local=0, send_remote=0,
        interdomain_hits="1,1", status_interdomain=0,
        status_interdomain_fields=f"2,0,{udom},0x{p(6):x}", close_local=0,
        status_peer_after_close=0, status_peer_after_close_fields=f"1,0,{udom},0xaaaaaaaa",
        bind_interdomain_to_virq=EINVAL,
        # ports of word 1: bucket 1 exists once port 64 is allocated; selector bit 1 delivers
        allocs_to_port64=58 if dom0 else 59, status_port100_bucket1=0,
        status_port100_bucket1_fields="0,0,0xaaaaaaaa,0xaaaaaaaa", bind_ipi_word1=65,
        send_ipi_word1=0, ipi_word1_hits=1, send_port100=EINVAL, send_port128=EINVAL,
        init_control=EOPNOTSUPP, evtchnop_99=-38,
        # vCPU timers -> VIRQ_TIMER
        singleshot=0, singleshot_fired=1, singleshot_on_time=1, singleshot_past=0,
        singleshot_past_immediate=1, stop_singleshot=0, after_stop_fired_at_second=1,
        singleshot_vcpu1=-2, periodic_too_short=EINVAL, periodic=0, stop_periodic=0,
        periodic_gap_ok=1, periodic_blocked_woken_by_singleshot=1, periodic_after_block_gap_ok=1,
        after_stop_periodic_upcalls=1,
        block=0, block_woken_by_timer=1, block_unmasked_irqs=1, block_slept=1,
        # vcpu_op, vm_assist
        is_up0=1, is_up1=-2, send_nmi=EINVAL, initialise=EINVAL, register_runstate=0,
        runstate_area="0,0,0,0,0,0", get_runstate_info=0, runstate_info="0,0,-,0,0,0",
        runstate_running_is_now=1, unregister_runstate=0, runstate_phys_area=0,
        runstate_phys_misaligned=-6, vcpu_info_offset_4096=EINVAL, vcpu_info_misaligned=-6,
        vcpu_info_crosses_page=-6, vcpu_info_not_ram=EINVAL, vcpu_info_vcpu1=-2,
        vm_assist_enable=0, vm_assist_disable=0, vm_assist_type0=EINVAL, vm_assist_cmd2=-38,
        # xen_version
        xen_version=0x40017, extraversion_rc=0, extraversion="[.0]", extraversion_len=2,
        capabilities_rc=0, capabilities="[xen-3.0-aarch64 ]", changeset_rc=0,
        changeset="[unavailable]", commandline_rc=0,
        commandline="[]" if dom0 else "[<denied>]", build_id=-61 if dom0 else EPERM,
        platform_parameters_rc=0, virt_start=0, get_features_rc=0, features=FEATURES[domid],
        get_features_submap1=EINVAL, pagesize=4096, pagesize_with_arg=EINVAL, xenver_99=-38,
        # hvm_op
        get_callback_irq=0, callback_irq=0x020000000000021F, get_store_pfn=0, store_pfn=0,
        get_param5=EINVAL, get_monitor_ring=EPERM, set_callback_irq=EPERM, set_param5=EINVAL,
        get_param_other_domain=-3, vm_event_null=0, hvmop_99=-38,
        # grant_table_op
        gnttab_query_size=0, gnttab_size="1,64,0", gnttab_query_size_count2=EINVAL,
        gnttab_query_other=0, gnttab_query_other_status=-2, gnttab_get_version=0,
        gnttab_version=1, gnttab_set_version2=-38, gnttab_set_version2_out=1,
        gnttab_set_version1=0, gnttab_set_version0=EINVAL, gnttab_continuation_bits=EINVAL,
        gnttabop_99=-38,
        # memory_op
        map_shared_info_again=-16, map_shared_info_idx1=EINVAL, remove_ram_page=EOPNOTSUPP,
        remove_hole=-2, memop_99=-38,
        # the /hypervisor node: PPI 15 (INTID 31) level/active-low, grant region 0x0F00_0000.
        # Grant frames map only into RAM (documented model limit), not into that region.
        dt_hypervisor_node=1, dt_compatible="[xen,xen-4.23]", dt_interrupts="1,15,0xf08",
        dt_grant_region="0xf000000,0x1000000", map_grant_frame_dt_region=0,
        unmap_grant_frame_dt_region=0, map_grant_frame_ram=0, unmap_grant_frame=0,
        # hypercall numbers and the ABI
        hypercall_0=-38, hypercall_13=-38, hypercall_39=-38, hypercall_41=-38, hypercall_99=-38,
        hypercall_ffff=-38, hypercall_17_hi=-38, sched_yield=0, schedop_99=-38,
        console_write=0 if dom0 else EPERM,
        xenpmu_mode_get=EOPNOTSUPP if vpmu == "off" else (0 if dom0 else EPERM),
        hvc_imm1_exceptions=1, hvc_imm1_esr=0x2000000,          # UNDEFINED, EC 0, IL
        upcalls=19, upcalls_empty=0, failures=0)
    if dom0:
        e.update(status_console=0, status_console_fields="4,0,0x2,0xaaaaaaaa", close_console=0,
                 rebind_console=2)
    return e


@pytest.mark.parametrize("domid,vpmu", [(0, "self"), (1, "self"), (0, "off")])
def test_evtchn_and_companion_hypercalls(vpmu_run, domid, vpmu):
    r = xen_run(vpmu_run, "xen_evtchn", domid, vpmu)
    assert (r.exit_status, r.reason) == (0, "system_off")       # SCHEDOP_shutdown(poweroff)
    expected = evtchn_expected(domid, vpmu)
    assert_kv(r, **expected)
    kv = r.kv()
    assert set(kv) - set(expected) == {"dt_version_matches_xenver"}   # (its own test below)
    assert ("console_io hello\n" in r.output) == (domid == 0)
    # trace: twelve VIRQ_TIMER upcalls, three on the IPI port, three on the interdomain pair, one
    # on port 65; the line is lowered once after each
    ipi, local = int(kv["rebind_ipi"]), int(kv["bind_interdomain"])
    remote = int(kv["status_interdomain_fields"].split(",")[3], 16)      # the peer's port
    rising = Counter((u["port"], u["virq"]) for u in records(r, "xen_upcall", level=True))
    assert rising == {(1, 0): 12, (ipi, None): 3, (local, None): 2, (remote, None): 1, (65, None): 1}
    assert len(records(r, "xen_upcall", level=False)) == 19 == len(records(r, "irq", intid=31))
    unknown = records(r, "hypercall", name=None)
    assert sorted(h["nr"] for h in unknown) == [0, 13, 39, 41, 99, 0xFFFF, (1 << 32) | 17]
    assert {(h["result"], h["errno"]) for h in unknown} == {(-38, "ENOSYS")}
    undef, = records(r, "exception", kind="undef")
    assert (undef["esr"], undef["from_el"]) == (0x2000000, 1)
    last = records(r, "hypercall")[-1]
    assert (last["name"], last["op_name"], last["detail"]) == ("sched_op", "shutdown", {"shutdown": 0})


def test_evtchn_watchdog_shuts_the_domain_down(vpmu_run):
    r = xen_run(vpmu_run, "xen_evtchn", append="case=watchdog")
    assert_kv(r, map_shared_info=0, watchdog_new=1, watchdog_disarm=0, watchdog_again=1)
    assert (r.exit_status, r.reason, r.error) == (1, "xen_watchdog", None)
    last = records(r, "hypercall")[-1]                     # the timer shut it down, not a call
    assert (last["name"], last["op_name"], last["result"], last.get("detail")) == ("sched_op", "watchdog", 1, None)


def test_device_tree_names_the_version_xen_version_reports(vpmu_run):
    r = xen_run(vpmu_run, "xen_evtchn", append="case=dt")
    assert_kv(r, dt_hypervisor_node=1, dt_version_matches_xenver=1)


def test_hvc_from_el0_is_undefined(vpmu_run):
    r = xen_run(vpmu_run, "xen_evtchn", append="case=el0_hvc")
    assert_kv(r, el0_hvc_exceptions=1, el0_hvc_esr=0x2000000, el0_hvc_vector=8, el0_hvc_x0=0)
    assert not records(r, "hypercall", name="xen_version")


@pytest.mark.parametrize("case,expected", [
    ("poll_timeout", dict(poll_timeout=0, poll_slept=1)),
    ("poll_masked", dict(poll_masked=0, poll_masked_pending=1, poll_masked_slept=1, poll_masked_upcalls=0)),
])
def test_sched_poll_wakes_without_an_interrupt(vpmu_run, case, expected):
    r = xen_run(vpmu_run, "xen_evtchn", append=f"case={case}", expect_error=True)
    assert r.error is None
    assert_kv(r, **expected)


# ==================================================================================== xen_badptr
BADPTR_CALLS = [
    "pmu_mode_get", "pmu_mode_set", "pmu_feature_get", "pmu_feature_set", "pmu_init", "pmu_finish",
    "pmu_lvtpc_set", "pmu_flush",
    "ev_bind_interdomain", "ev_bind_virq", "ev_bind_pirq", "ev_close", "ev_send", "ev_status",
    "ev_alloc_unbound", "ev_bind_ipi", "ev_bind_vcpu", "ev_unmask", "ev_reset", "ev_init_control",
    "ev_expand_array", "ev_set_priority",
    "vcpu_register_vcpu_info", "vcpu_register_runstate_memory_area", "vcpu_get_runstate_info",
    "vcpu_set_periodic_timer", "vcpu_set_singleshot_timer", "vcpu_register_runstate_phys_area",
    "ver_version", "ver_extraversion", "ver_compile_info", "ver_capabilities", "ver_changeset",
    "ver_platform_parameters", "ver_get_features", "ver_pagesize", "ver_guest_handle",
    "ver_commandline", "ver_extraversion2",
    "sched_shutdown", "sched_shutdown_code", "sched_poll", "sched_remote_shutdown", "sched_watchdog",
    "sched_pin_override",
    "mem_add_to_physmap", "mem_remove_from_physmap",
    "hvm_set_param", "hvm_get_param", "hvm_vm_event",
    "gnt_query_size", "gnt_get_version", "gnt_set_version",
    "console_write",
]
BADPTR_RO_CALLS = [
    "pmu_mode_get", "pmu_feature_get", "ev_status", "ev_alloc_unbound", "ev_bind_ipi",
    "vcpu_get_runstate_info", "ver_extraversion", "ver_compile_info", "ver_capabilities",
    "ver_changeset", "ver_platform_parameters", "ver_get_features", "ver_guest_handle",
    "ver_commandline", "hvm_get_param", "gnt_query_size", "gnt_get_version", "gnt_set_version",
]


def badptr_rc(call: str, null: bool, domid: int, vpmu: str) -> int:
    """What Xen answers for `call` with a pointer that is not guest RAM (NULL if `null`)."""
    if call.startswith("pmu_"):
        if vpmu == "off":
            return EOPNOTSUPP                                  # before anything else
        if call in ("pmu_mode_get", "pmu_mode_set", "pmu_feature_get", "pmu_feature_set") and domid:
            return EPERM                                       # privilege before the copy
        if call in ("pmu_lvtpc_set", "pmu_flush"):
            return EINVAL                                      # argument not read; no page
    if call in ("sched_pin_override", "console_write") and domid:
        return EPERM
    if call == "ver_version":
        return 0x40017                                         # argument ignored
    if call == "ver_pagesize":
        return 4096 if null else EINVAL                        # non-NULL is -EINVAL, not read
    if call == "ver_extraversion2" and null:
        return 2                                               # NULL: length query
    if call == "hvm_vm_event":
        return 0 if null else EINVAL
    return EFAULT


def badptr_expected(domid: int, vpmu: str) -> dict:
    e = {}
    for call in BADPTR_CALLS:
        # MMU off: NULL, UART, hole, crossing the end of RAM, wrapping; MMU on: three VAs
        e[f"bp_{call}"] = ",".join(str(badptr_rc(call, j == 0, domid, vpmu)) for j in range(5))
        e[f"bpv_{call}"] = ",".join(str(badptr_rc(call, False, domid, vpmu)) for _ in range(3))
    for call in BADPTR_RO_CALLS:
        e[f"bpro_{call}"] = badptr_rc(call, False, domid, vpmu)
    mode_get = {"off": f"{EOPNOTSUPP},99"}.get(vpmu, "0,1" if domid == 0 else f"{EPERM},99")
    for prefix in ("good_", "goodv_", "goodro_"):
        e.update({f"{prefix}get_features": f"0,0x{FEATURES[domid]:x}", f"{prefix}status": "0,0",
                  f"{prefix}query_size": "0,64", f"{prefix}mode_get": mode_get})
    e.update(map_shared_info=0, ro_bind_virq=EFAULT, ro_bind_virq_port_field=0xEEEE,
             ro_bind_virq_again=-17, ro_status_copy_in_only=EFAULT, rw_status=0,
             rw_status_fields="4,0,0", ro_kept_port2="0,1", ro_kept_port3="0,5",
             sync_exceptions=0, failures=0)
    return e


@pytest.mark.parametrize("domid,vpmu", [(0, "self"), (1, "self"), (0, "off")])
def test_bad_pointers_fault_and_the_guest_continues(vpmu_run, domid, vpmu):
    r = xen_run(vpmu_run, "xen_badptr", domid, vpmu)
    assert (r.exit_status, r.reason) == (0, "exit")
    expected = badptr_expected(domid, vpmu)
    assert_kv(r, **expected)
    assert set(r.kv()) == set(expected)
    assert not records(r, "exception")                    # -EFAULT, never a guest exception
    # every -EFAULT the guest printed is one hypercall record with errno EFAULT
    printed = sum(str(v).split(",").count(str(EFAULT)) for k, v in expected.items()
                  if k.startswith("bp"))
    printed += 2                                          # ro_bind_virq, ro_status_copy_in_only
    assert len(records(r, "hypercall", errno="EFAULT")) == printed


def test_bad_pointer_to_mmio_with_mmu_on(vpmu_run):
    r = xen_run(vpmu_run, "xen_badptr", append="case=mmio")
    assert_kv(r, **{f"bpm_{c}": badptr_rc(c, False, 0, "self") for c in BADPTR_CALLS})
    assert "\0" not in r.output
