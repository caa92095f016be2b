/* Event channels, vCPU timers and the companion hypercalls of the Xen frontend, with exact
 * results as key=value lines (run with --xen; docs/xen.md, xen-pmu.md sections 3.3 and 4).
 *
 * vCPU 0's vcpu_info is slot 0 of shared_info (no VCPUOP_register_vcpu_info here, so no
 * spurious upcall); the upcall handler is the 2-level scan of xen_hcall.h.  Covered:
 * bind_virq rules and port numbering, send/status/close/unmask, a masked port (no upcall
 * until unmask; close clears pending but not the mask), VIRQ_TIMER from the single-shot and
 * periodic vCPU timers (waiting in WFI, and once in SCHEDOP_block, which unmasks IRQs; the periodic
 * timer only while the vCPU runs, as Xen stops it for a blocked vCPU),
 * vcpu_op (is_up, runstate, vcpu_info argument checks), vm_assist, xen_version, hvm_op params,
 * grant-table queries, memory_op, console_io, unknown hypercall numbers, and HVC from EL0 and
 * with a foreign immediate, and the device tree's /hypervisor node against the hypercalls.  Ends with SCHEDOP_shutdown (poweroff, or crash on a failure).
 *
 * --append case=NAME runs one case alone instead: dt (the /hypervisor node), el0_hvc (HVC #0xEA1 at EL0 must be an
 * Undefined Instruction exception), poll_timeout (SCHEDOP_poll on a quiet port returns after
 * its timeout), poll_masked (SCHEDOP_poll on a masked port returns when the port becomes
 * pending, without an upcall), watchdog (an expired SCHEDOP_watchdog ends the run with reason
 * xen_watchdog, exit status 1). */
#include "xen_hcall.h"
#include "board_common.h"

#define MS 1000000UL

static u8 shinfo_page[4096] ALIGNED(4096);
static u8 scratch_page[4096] ALIGNED(4096);
#define SH ((volatile struct shared_info *)shinfo_page)
#define VI (&SH->vcpu_info[0])

static volatile u32 timer_port;
static volatile u64 upcalls, upcalls_empty, port_hits[128], timer_n, fire_ns[16];

static void handle_port(u32 port)
{
    if (port < 128)
        port_hits[port]++;
    if (port == timer_port) {
        if (timer_n < 16)
            fire_ns[timer_n] = xen_now_ns();
        timer_n++;
    }
}

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)f; (void)vec;
    u32 id = gic_ack();
    if (id == 1023)
        return;
    if (id == XEN_EVTCHN_PPI) {
        upcalls++;
        if (!xen_evtchn_scan(SH, VI, handle_port))
            upcalls_empty++;
    }
    gic_eoi(id);
}

/* UNDEFINED instructions (HVC from EL0, HVC with another immediate) land here */
static volatile u64 sync_count, sync_esr, sync_vec;
static void sync_handler(struct exc_frame *f, int vec)
{
    sync_count++;
    sync_esr = f->esr;
    sync_vec = vec;
    f->elr += 4;
}

/* wait for an interrupt to bump *counter to target: WFI with IRQs masked (WFI still wakes) */
static void wait_for(volatile u64 *counter, u64 target)
{
    irq_disable();
    while (*counter < target) {
        wfi();
        irq_enable();
        isb();
        irq_disable();
    }
    irq_enable();
}

/* the same with IRQs on and without WFI: a vCPU blocked in WFI is descheduled, and Xen stops
 * its periodic timer then (sched/core.c sched_context_switch) */
static void spin_for(volatile u64 *counter, u64 target)
{
    irq_enable();
    while (*counter < target)
        barrier();
}

static int pending(u32 port) { return (SH->evtchn_pending[port / 64] >> (port % 64)) & 1; }
static int masked(u32 port) { return (SH->evtchn_mask[port / 64] >> (port % 64)) & 1; }
static void mask(u32 port) { __atomic_fetch_or(&SH->evtchn_mask[port / 64], 1UL << (port % 64), __ATOMIC_SEQ_CST); }

static long bind_ipi(void)
{
    struct evtchn_bind_ipi b = { 0, ~0u };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &b);
    return rc ? rc : (long)b.port;
}

static void status(const char *name, u16 dom, u32 port)
{
    struct evtchn_status s;
    memset(&s, 0xAA, sizeof s);
    s.dom = dom;
    s.port = port;
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_status, &s);
    printf("status_%s=%ld\n", name, rc);
    if (rc == 0)
        printf("status_%s_fields=%u,%u,0x%x,0x%x\n", name, s.status, s.vcpu, s.u.virq, s.u.interdomain.port);
}

static long singleshot(u64 deadline)
{
    struct vcpu_set_singleshot_timer t = { deadline, 0, 0 };
    return HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, 0, &t);
}

static long periodic(u64 period)
{
    struct vcpu_set_periodic_timer t = { period };
    return HYPERVISOR_vcpu_op(VCPUOP_set_periodic_timer, 0, &t);
}

/* ---------------------------------------------------------------------------------------- */
static void ports_and_status(void)
{
    long t = xen_bind_virq(VIRQ_TIMER, 0);
    kv_rc("bind_timer", t);
    timer_port = (u32)t;
    kv_rc("bind_timer_again", xen_bind_virq(VIRQ_TIMER, 0));
    kv_rc("bind_virq_24", xen_bind_virq(NR_VIRQS, 0));
    kv_rc("bind_timer_vcpu1", xen_bind_virq(VIRQ_TIMER, 1));
    kv_rc("bind_console_vcpu1", xen_bind_virq(VIRQ_CONSOLE, 1));
    long con = xen_bind_virq(VIRQ_CONSOLE, 0);         /* global: the hardware domain's */
    kv_rc("bind_console", con);
    kv_rc("bind_debug", xen_bind_virq(VIRQ_DEBUG, 0));
    long ipi = bind_ipi();
    kv_rc("bind_ipi", ipi);
    struct evtchn_alloc_unbound au = { DOMID_SELF, DOMID_SELF, ~0u };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &au);
    kv_rc("alloc_unbound", rc ? rc : (long)au.port);

    kv_rc("send_virq_port", xen_evtchn_port_op(EVTCHNOP_send, timer_port));
    kv_rc("send_port0", xen_evtchn_port_op(EVTCHNOP_send, 0));
    kv_rc("send_free_port", xen_evtchn_port_op(EVTCHNOP_send, 50));
    kv_rc("send_unbound", xen_evtchn_port_op(EVTCHNOP_send, au.port));
    kv_rc("send_beyond_bucket", xen_evtchn_port_op(EVTCHNOP_send, 100));
    kv_u64("unbound_pending", pending(au.port));

    status("timer", DOMID_SELF, timer_port);
    if (con > 0)
        status("console", DOMID_SELF, (u32)con);
    status("ipi", DOMID_SELF, (u32)ipi);
    status("unbound", DOMID_SELF, au.port);
    status("port0", DOMID_SELF, 0);
    status("free", DOMID_SELF, 50);
    status("beyond_bucket", DOMID_SELF, 100);
    status("other_domain", 7, timer_port);

    /* IPI to ourselves: one upcall on that port */
    u64 before = port_hits[ipi];
    kv_rc("send_ipi", xen_evtchn_port_op(EVTCHNOP_send, (u32)ipi));
    kv_u64("ipi_upcalls", port_hits[ipi] - before);

    /* masked port: pending without upcall until EVTCHNOP_unmask */
    mask((u32)ipi);
    u64 up0 = upcalls;
    before = port_hits[ipi];
    kv_rc("send_masked", xen_evtchn_port_op(EVTCHNOP_send, (u32)ipi));
    kv_u64("masked_pending", pending(ipi));
    kv_u64("masked_upcall_flag", VI->evtchn_upcall_pending);
    kv_u64("masked_upcalls", upcalls - up0);
    kv_rc("unmask", xen_evtchn_port_op(EVTCHNOP_unmask, (u32)ipi));
    kv_u64("unmask_upcalls", upcalls - up0);
    kv_u64("unmask_port_hits", port_hits[ipi] - before);
    kv_u64("after_unmask_pending", pending(ipi));
    kv_u64("after_unmask_masked", masked(ipi));

    /* close: clears the pending bit, not the mask; the port is free (lowest first) again */
    mask((u32)ipi);
    xen_evtchn_port_op(EVTCHNOP_send, (u32)ipi);
    kv_rc("close_ipi", xen_evtchn_port_op(EVTCHNOP_close, (u32)ipi));
    kv_u64("closed_pending", pending(ipi));
    kv_u64("closed_masked", masked(ipi));
    kv_rc("close_again", xen_evtchn_port_op(EVTCHNOP_close, (u32)ipi));
    kv_rc("close_port0", xen_evtchn_port_op(EVTCHNOP_close, 0));
    kv_rc("send_closed", xen_evtchn_port_op(EVTCHNOP_send, (u32)ipi));
    status("closed", DOMID_SELF, (u32)ipi);
    long ipi2 = bind_ipi();
    kv_rc("rebind_ipi", ipi2);
    kv_u64("rebound_masked", masked(ipi2));
    before = port_hits[ipi2];
    xen_evtchn_port_op(EVTCHNOP_send, (u32)ipi2);
    kv_u64("rebound_masked_hits", port_hits[ipi2] - before);
    xen_evtchn_port_op(EVTCHNOP_unmask, (u32)ipi2);
    kv_u64("rebound_unmasked_hits", port_hits[ipi2] - before);
    kv_rc("unmask_beyond_bucket", xen_evtchn_port_op(EVTCHNOP_unmask, 100));

    /* a VIRQ port closed and bound again gets the same (lowest free) port */
    if (con > 0) {
        kv_rc("close_console", xen_evtchn_port_op(EVTCHNOP_close, (u32)con));
        kv_rc("rebind_console", xen_bind_virq(VIRQ_CONSOLE, 0));
    }
    /* loopback interdomain channel: binding notifies the new port at once; each end's send
     * reaches the other; closing one end leaves the other unbound */
    struct evtchn_alloc_unbound au2 = { DOMID_SELF, DOMID_SELF, ~0u };
    HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &au2);
    struct evtchn_bind_interdomain bi = { DOMID_SELF, au2.port, ~0u };
    up0 = upcalls;
    rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &bi);
    kv_rc("bind_interdomain", rc ? rc : (long)bi.local_port);
    kv_u64("bind_interdomain_upcalls", upcalls - up0);
    u64 a0 = port_hits[au2.port], l0 = port_hits[bi.local_port];
    kv_rc("send_local", xen_evtchn_port_op(EVTCHNOP_send, bi.local_port));
    kv_rc("send_remote", xen_evtchn_port_op(EVTCHNOP_send, au2.port));
    printf("interdomain_hits=%lu,%lu\n", port_hits[au2.port] - a0, port_hits[bi.local_port] - l0);
    status("interdomain", DOMID_SELF, bi.local_port);
    kv_rc("close_local", xen_evtchn_port_op(EVTCHNOP_close, bi.local_port));
    status("peer_after_close", DOMID_SELF, au2.port);
    bi.remote_port = timer_port;
    kv_rc("bind_interdomain_to_virq", HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &bi));

    /* past the first 64 ports: bucket 1 appears when port 64 is allocated, and an event on a
     * port of word 1 goes through selector bit 1 */
    u64 allocs = 0;
    for (;;) {
        struct evtchn_alloc_unbound a = { DOMID_SELF, DOMID_SELF, ~0u };
        if (HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &a) || a.port >= 64)
            break;
        allocs++;
    }
    kv_u64("allocs_to_port64", allocs + 1);
    status("port100_bucket1", DOMID_SELF, 100);
    long hi = bind_ipi();
    kv_rc("bind_ipi_word1", hi);
    before = port_hits[hi];
    kv_rc("send_ipi_word1", xen_evtchn_port_op(EVTCHNOP_send, (u32)hi));
    kv_u64("ipi_word1_hits", port_hits[hi] - before);
    kv_rc("send_port100", xen_evtchn_port_op(EVTCHNOP_send, 100));
    kv_rc("send_port128", xen_evtchn_port_op(EVTCHNOP_send, 128));

    /* FIFO ABI not built: Linux falls back to 2-level */
    u8 ic[24] = { 0 };
    kv_rc("init_control", HYPERVISOR_event_channel_op(EVTCHNOP_init_control, ic));
    kv_rc("evtchnop_99", HYPERVISOR_event_channel_op(99, ic));
}

static void timers(void)
{
    /* single-shot 1 ms ahead: one upcall on the VIRQ_TIMER port, not before the deadline */
    u64 n0 = timer_n;
    u64 deadline = xen_now_ns() + MS;
    kv_rc("singleshot", singleshot(deadline));
    wait_for(&timer_n, n0 + 1);
    kv_u64("singleshot_fired", timer_n - n0);
    kv_u64("singleshot_on_time", fire_ns[n0] >= deadline && fire_ns[n0] < deadline + 20000);

    /* a deadline in the past fires at once: the upcall comes right after the HVC */
    n0 = timer_n;
    long rc = singleshot(1);
    u64 n1 = timer_n;
    kv_rc("singleshot_past", rc);
    kv_u64("singleshot_past_immediate", n1 - n0);

    /* a stopped single-shot never fires; the next one does */
    n0 = timer_n;
    singleshot(xen_now_ns() + MS);
    kv_rc("stop_singleshot", HYPERVISOR_vcpu_op(VCPUOP_stop_singleshot_timer, 0, 0));
    deadline = xen_now_ns() + 3 * MS;
    singleshot(deadline);
    wait_for(&timer_n, n0 + 1);
    kv_u64("after_stop_fired_at_second", fire_ns[n0] >= deadline);
    kv_rc("singleshot_vcpu1", HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, 1, scratch_page));

    /* periodic 1 ms: five upcalls one period apart (while the vCPU runs) */
    kv_rc("periodic_too_short", periodic(MS - 1));
    n0 = timer_n;
    kv_rc("periodic", periodic(MS));
    spin_for(&timer_n, n0 + 5);
    u64 lo = ~0UL, hi = 0;
    for (u64 i = n0 + 1; i < n0 + 5; i++) {
        u64 g = fire_ns[i] - fire_ns[i - 1];
        if (g < lo) lo = g;
        if (g > hi) hi = g;
    }
    kv_u64("periodic_gap_ok", lo >= MS - 16 && hi <= MS + 16);
    /* blocked in WFI the periodic timer stops: a 3.5 ms single-shot is the first upcall
     * (not the next periodic tick); on resume a period has passed, so VIRQ_TIMER (already
     * pending: the same upcall) and the phase restarts then: the next tick 1 ms after it */
    n0 = timer_n;
    u64 t0 = xen_now_ns();
    singleshot(t0 + 3 * MS + MS / 2);
    wait_for(&timer_n, n0 + 1);
    kv_u64("periodic_blocked_woken_by_singleshot", fire_ns[n0] >= t0 + 3 * MS + MS / 2);
    spin_for(&timer_n, n0 + 2);
    u64 gap = fire_ns[n0 + 1] - fire_ns[n0];
    kv_u64("periodic_after_block_gap_ok", gap >= MS - 16 && gap <= MS + 2000);
    kv_rc("stop_periodic", HYPERVISOR_vcpu_op(VCPUOP_stop_periodic_timer, 0, 0));
    /* stopped: a 3 ms single-shot is the only upcall that follows */
    n0 = timer_n;
    singleshot(xen_now_ns() + 3 * MS);
    wait_for(&timer_n, n0 + 1);
    kv_u64("after_stop_periodic_upcalls", timer_n - n0);

    /* SCHEDOP_block with IRQs masked: Xen/Arm unmasks them, the vCPU sleeps until the timer */
    irq_disable();
    n0 = timer_n;
    deadline = xen_now_ns() + MS;
    singleshot(deadline);
    rc = HYPERVISOR_sched_op(SCHEDOP_block, 0);
    n1 = timer_n;
    u64 daif = read_sysreg(daif);
    irq_enable();
    kv_rc("block", rc);
    kv_u64("block_woken_by_timer", n1 - n0);
    kv_u64("block_unmasked_irqs", !(daif & (1 << 7)));
    kv_u64("block_slept", fire_ns[n0] >= deadline);
}

static void vcpu_ops(void)
{
    kv_rc("is_up0", HYPERVISOR_vcpu_op(VCPUOP_is_up, 0, 0));
    kv_rc("is_up1", HYPERVISOR_vcpu_op(VCPUOP_is_up, 1, 0));
    kv_rc("send_nmi", HYPERVISOR_vcpu_op(VCPUOP_send_nmi, 0, 0));
    kv_rc("initialise", HYPERVISOR_vcpu_op(VCPUOP_initialise, 0, scratch_page));

    /* register_runstate_memory_area writes the stored runstate at once */
    volatile struct vcpu_runstate_info *area = (void *)(scratch_page + 256);
    memset((void *)area, 0xFF, sizeof *area);
    u64 addr = (u64)area;
    kv_rc("register_runstate", HYPERVISOR_vcpu_op(VCPUOP_register_runstate_memory_area, 0, &addr));
    printf("runstate_area=%d,%lu,%lu,%lu,%lu,%lu\n", area->state, area->state_entry_time,
           area->time[0], area->time[1], area->time[2], area->time[3]);
    /* get_runstate_info (extension): running since time 0, all of it in time[0] */
    struct vcpu_runstate_info ri;
    memset(&ri, 0xFF, sizeof ri);
    u64 t0 = xen_now_ns();
    kv_rc("get_runstate_info", HYPERVISOR_vcpu_op(VCPUOP_get_runstate_info, 0, &ri));
    u64 t1 = xen_now_ns();
    printf("runstate_info=%d,%lu,-,%lu,%lu,%lu\n", ri.state, ri.state_entry_time, ri.time[1], ri.time[2], ri.time[3]);
    kv_u64("runstate_running_is_now", ri.time[0] >= t0 && ri.time[0] <= t1 + 16);
    addr = 0;
    kv_rc("unregister_runstate", HYPERVISOR_vcpu_op(VCPUOP_register_runstate_memory_area, 0, &addr));
    u64 pa = (u64)(scratch_page + 512);
    kv_rc("runstate_phys_area", HYPERVISOR_vcpu_op(VCPUOP_register_runstate_phys_area, 0, &pa));
    pa = (u64)(scratch_page + 4);
    kv_rc("runstate_phys_misaligned", HYPERVISOR_vcpu_op(VCPUOP_register_runstate_phys_area, 0, &pa));

    /* register_vcpu_info argument checks (a successful one is in xen_pmu_driver) */
    struct vcpu_register_vcpu_info r = { (u64)scratch_page >> 12, 4096, 0 };
    kv_rc("vcpu_info_offset_4096", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &r));
    r.offset = 4;
    kv_rc("vcpu_info_misaligned", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &r));
    r.offset = 4096 - 32;
    kv_rc("vcpu_info_crosses_page", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &r));
    r.mfn = 0x1000;                                       /* IPA 0x100_0000: not RAM */
    r.offset = 0;
    kv_rc("vcpu_info_not_ram", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &r));
    kv_rc("vcpu_info_vcpu1", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 1, &r));

    kv_rc("vm_assist_enable", HYPERVISOR_vm_assist(VMASST_CMD_enable, VMASST_TYPE_runstate_update_flag));
    kv_rc("vm_assist_disable", HYPERVISOR_vm_assist(VMASST_CMD_disable, VMASST_TYPE_runstate_update_flag));
    kv_rc("vm_assist_type0", HYPERVISOR_vm_assist(VMASST_CMD_enable, 0));
    kv_rc("vm_assist_cmd2", HYPERVISOR_vm_assist(2, VMASST_TYPE_runstate_update_flag));
}

static void version(void)
{
    char *buf = (char *)scratch_page;
    kv_hex("xen_version", HYPERVISOR_xen_version(XENVER_version, 0));
    memset(buf, 0x55, 64);
    kv_rc("extraversion_rc", HYPERVISOR_xen_version(XENVER_extraversion, buf));
    printf("extraversion=[%s]\n", buf);
    kv_rc("extraversion_len", HYPERVISOR_xen_version(XENVER_extraversion2, 0));
    kv_rc("capabilities_rc", HYPERVISOR_xen_version(XENVER_capabilities, buf));
    printf("capabilities=[%s]\n", buf);
    kv_rc("changeset_rc", HYPERVISOR_xen_version(XENVER_changeset, buf));
    printf("changeset=[%s]\n", buf);
    memset(buf, 0x55, 1024);
    kv_rc("commandline_rc", HYPERVISOR_xen_version(XENVER_commandline, buf));
    printf("commandline=[%s]\n", buf);
    kv_rc("build_id", HYPERVISOR_xen_version(XENVER_build_id, 0));
    memset(buf, 0x55, 16);
    kv_rc("platform_parameters_rc", HYPERVISOR_xen_version(XENVER_platform_parameters, buf));
    kv_hex("virt_start", *(u64 *)buf);
    struct xen_feature_info fi = { 0, 0xdead };
    kv_rc("get_features_rc", HYPERVISOR_xen_version(XENVER_get_features, &fi));
    kv_hex("features", fi.submap);
    fi.submap_idx = 1;
    kv_rc("get_features_submap1", HYPERVISOR_xen_version(XENVER_get_features, &fi));
    kv_rc("pagesize", HYPERVISOR_xen_version(XENVER_pagesize, 0));
    kv_rc("pagesize_with_arg", HYPERVISOR_xen_version(XENVER_pagesize, buf));
    kv_rc("xenver_99", HYPERVISOR_xen_version(99, buf));
}

static void hvm_grant_memory(void)
{
    struct xen_hvm_param hp = { DOMID_SELF, 0, HVM_PARAM_CALLBACK_IRQ, 0 };
    kv_rc("get_callback_irq", HYPERVISOR_hvm_op(HVMOP_get_param, &hp));
    kv_hex("callback_irq", hp.value);
    hp.index = HVM_PARAM_STORE_PFN;
    hp.value = 77;
    kv_rc("get_store_pfn", HYPERVISOR_hvm_op(HVMOP_get_param, &hp));
    kv_u64("store_pfn", hp.value);
    hp.index = 5;
    kv_rc("get_param5", HYPERVISOR_hvm_op(HVMOP_get_param, &hp));
    hp.index = HVM_PARAM_MONITOR_RING_PFN;
    kv_rc("get_monitor_ring", HYPERVISOR_hvm_op(HVMOP_get_param, &hp));
    hp.index = HVM_PARAM_CALLBACK_IRQ;
    kv_rc("set_callback_irq", HYPERVISOR_hvm_op(HVMOP_set_param, &hp));
    hp.index = 5;
    kv_rc("set_param5", HYPERVISOR_hvm_op(HVMOP_set_param, &hp));
    hp.domid = 7;
    hp.index = HVM_PARAM_CALLBACK_IRQ;
    kv_rc("get_param_other_domain", HYPERVISOR_hvm_op(HVMOP_get_param, &hp));
    kv_rc("vm_event_null", HYPERVISOR_hvm_op(HVMOP_guest_request_vm_event, 0));
    kv_rc("hvmop_99", HYPERVISOR_hvm_op(99, &hp));

    struct gnttab_query_size qs = { DOMID_SELF, 0, 0, 99 };
    kv_rc("gnttab_query_size", HYPERVISOR_grant_table_op(GNTTABOP_query_size, &qs, 1));
    printf("gnttab_size=%u,%u,%d\n", qs.nr_frames, qs.max_nr_frames, qs.status);
    kv_rc("gnttab_query_size_count2", HYPERVISOR_grant_table_op(GNTTABOP_query_size, &qs, 2));
    qs.dom = 7;
    qs.status = 99;
    kv_rc("gnttab_query_other", HYPERVISOR_grant_table_op(GNTTABOP_query_size, &qs, 1));
    kv_rc("gnttab_query_other_status", qs.status);
    struct gnttab_get_version gv = { DOMID_SELF, 0, 0 };
    kv_rc("gnttab_get_version", HYPERVISOR_grant_table_op(GNTTABOP_get_version, &gv, 1));
    kv_u64("gnttab_version", gv.version);
    u32 sv = 2;
    kv_rc("gnttab_set_version2", HYPERVISOR_grant_table_op(GNTTABOP_set_version, &sv, 1));
    kv_u64("gnttab_set_version2_out", sv);
    sv = 1;
    kv_rc("gnttab_set_version1", HYPERVISOR_grant_table_op(GNTTABOP_set_version, &sv, 1));
    sv = 0;
    kv_rc("gnttab_set_version0", HYPERVISOR_grant_table_op(GNTTABOP_set_version, &sv, 1));
    kv_rc("gnttab_continuation_bits", HYPERVISOR_grant_table_op(GNTTABOP_query_size | 0x1000, &qs, 1));
    kv_rc("gnttabop_99", HYPERVISOR_grant_table_op(99, &qs, 1));

    kv_rc("map_shared_info_again", xen_map_shared_info(scratch_page));
    struct xen_add_to_physmap x = { DOMID_SELF, 0, XENMAPSPACE_shared_info, 1, (u64)scratch_page >> 12 };
    kv_rc("map_shared_info_idx1", HYPERVISOR_memory_op(XENMEM_add_to_physmap, &x));
    struct xen_remove_from_physmap rm = { DOMID_SELF, (u64)scratch_page >> 12 };
    kv_rc("remove_ram_page", HYPERVISOR_memory_op(XENMEM_remove_from_physmap, &rm));
    rm.gpfn = 0x1000;
    kv_rc("remove_hole", HYPERVISOR_memory_op(XENMEM_remove_from_physmap, &rm));
    kv_rc("memop_99", HYPERVISOR_memory_op(99, &rm));
}

/* The device tree's /hypervisor node (docs/misc/arm/device-tree/guest.txt) against what the
 * hypercalls say: the version in "xen,xen-<maj>.<min>", the event-channel PPI, and the
 * grant-table region reg[0], where Linux maps the grant frames. */
static void device_tree(void)
{
    u64 dtb = boot_regs[0] ? boot_regs[0] : 0x40000000UL;
    int node = fdt_find_compatible(dtb, "xen,xen");
    kv_u64("dt_hypervisor_node", node >= 0);
    if (node < 0)
        return;
    u32 len;
    const char *compat = fdt_getprop(dtb, node, "compatible", &len);
    printf("dt_compatible=[%s]\n", compat);
    u64 maj = 0, min = 0;
    const char *v = compat + 8;                              /* after "xen,xen-" */
    while (*v >= '0' && *v <= '9') maj = maj * 10 + (*v++ - '0');
    if (*v == '.')
        v++;
    while (*v >= '0' && *v <= '9') min = min * 10 + (*v++ - '0');
    kv_u64("dt_version_matches_xenver", ((maj << 16) | min) == (u64)HYPERVISOR_xen_version(XENVER_version, 0));
    const u8 *irq = fdt_getprop(dtb, node, "interrupts", &len);
    printf("dt_interrupts=%u,%u,0x%x\n", be32(irq), be32(irq + 4), be32(irq + 8));
    const u8 *reg = fdt_getprop(dtb, node, "reg", &len);
    u64 base = be64(reg), size = be64(reg + 8);
    printf("dt_grant_region=0x%lx,0x%lx\n", base, size);
    struct xen_add_to_physmap x = { DOMID_SELF, 0, XENMAPSPACE_grant_table, 0, base >> 12 };
    kv_rc("map_grant_frame_dt_region", HYPERVISOR_memory_op(XENMEM_add_to_physmap, &x));
    struct xen_remove_from_physmap rm = { DOMID_SELF, base >> 12 };
    kv_rc("unmap_grant_frame_dt_region", HYPERVISOR_memory_op(XENMEM_remove_from_physmap, &rm));
    x.gpfn = (u64)scratch_page >> 12;                      /* a RAM page works too */
    kv_rc("map_grant_frame_ram", HYPERVISOR_memory_op(XENMEM_add_to_physmap, &x));
    rm.gpfn = (u64)scratch_page >> 12;
    kv_rc("unmap_grant_frame", HYPERVISOR_memory_op(XENMEM_remove_from_physmap, &rm));
}

/* HVC #0xEA1 executed at EL0 (HVC is UNDEFINED there) */
u64 el0_hvc(u64 arg);
__asm__(".text\n.global el0_hvc\nel0_hvc:\n mov x16, #17\n mov x0, #0\n hvc #0xea1\n ret\n");

static void abi(void)
{
    kv_rc("hypercall_0", xen_hypercall(0, 0, 0, 0, 0, 0));
    kv_rc("hypercall_13", xen_hypercall(__HYPERVISOR_multicall, 0, 0, 0, 0, 0));
    kv_rc("hypercall_39", xen_hypercall(39, 0, 0, 0, 0, 0));
    kv_rc("hypercall_41", xen_hypercall(41, 0, 0, 0, 0, 0));
    kv_rc("hypercall_99", xen_hypercall(99, 0, 0, 0, 0, 0));
    kv_rc("hypercall_ffff", xen_hypercall(0xFFFF, 0, 0, 0, 0, 0));
    kv_rc("hypercall_17_hi", xen_hypercall((1UL << 32) | __HYPERVISOR_xen_version, 0, 0, 0, 0, 0));
    kv_rc("sched_yield", HYPERVISOR_sched_op(SCHEDOP_yield, 0));
    kv_rc("schedop_99", HYPERVISOR_sched_op(99, 0));
    static const char msg[] = "console_io hello\n";
    kv_rc("console_write", HYPERVISOR_console_io(CONSOLEIO_write, sizeof msg - 1, msg));
    struct xen_pmu_params pp = { 0, 1, 0, 0, 0 };
    kv_rc("xenpmu_mode_get", HYPERVISOR_xenpmu_op(XENPMU_mode_get, &pp));

    set_sync_handler(sync_handler);
    u64 s0 = sync_count;
    __asm__ volatile("mov x16, #17\n hvc #0x1" ::: "x0", "x16", "memory");
    kv_u64("hvc_imm1_exceptions", sync_count - s0);
    kv_hex("hvc_imm1_esr", s0 != sync_count ? sync_esr : 0);
    set_sync_handler(0);
}

/* HVC is UNDEFINED at EL0: an EL0 process must get an Undefined Instruction exception
 * (EC 0) at EL1, never a hypercall */
static void el0_hvc_case(void)
{
    set_sync_handler(sync_handler);
    u64 r = el0_call(el0_hvc, 0, (u64)__el0_stack_top);
    kv_u64("el0_hvc_exceptions", sync_count);
    kv_hex("el0_hvc_esr", sync_esr);
    kv_u64("el0_hvc_vector", sync_vec);
    kv_hex("el0_hvc_x0", r);
    set_sync_handler(0);
}

/* SCHEDOP_poll with a timeout on a quiet port: back after the timeout with 0 */
static void poll_timeout(void)
{
    long ipi = bind_ipi();
    u32 port = (u32)ipi;
    u64 t0 = xen_now_ns();
    struct sched_poll p = { (u64)&port, 1, 0, t0 + MS };
    long rc = HYPERVISOR_sched_op(SCHEDOP_poll, &p);
    kv_rc("poll_timeout", rc);
    kv_u64("poll_slept", xen_now_ns() >= t0 + MS);
}

/* SCHEDOP_watchdog: an expired watchdog shuts the domain down (reason watchdog) */
static void watchdog(void)
{
    u32 w[2] = { 0, 1 };                                   /* id 0 = new, timeout 1 s */
    kv_rc("watchdog_new", HYPERVISOR_sched_op(SCHEDOP_watchdog, w));
    w[0] = 1;
    w[1] = 0;
    kv_rc("watchdog_disarm", HYPERVISOR_sched_op(SCHEDOP_watchdog, w));
    w[0] = 0;
    w[1] = 1;
    kv_rc("watchdog_again", HYPERVISOR_sched_op(SCHEDOP_watchdog, w));
    for (;;)
        wfi();
}

/* SCHEDOP_poll (no timeout) on a masked port: the event wakes the vCPU without an upcall */
static void poll_masked(void)
{
    timer_port = (u32)xen_bind_virq(VIRQ_TIMER, 0);
    u32 port = timer_port;
    mask(port);
    u64 deadline = xen_now_ns() + MS;
    singleshot(deadline);
    struct sched_poll p = { (u64)&port, 1, 0, 0 };
    long rc = HYPERVISOR_sched_op(SCHEDOP_poll, &p);
    kv_rc("poll_masked", rc);
    kv_u64("poll_masked_pending", pending(port));
    kv_u64("poll_masked_slept", xen_now_ns() >= deadline);
    kv_u64("poll_masked_upcalls", upcalls);
}

int main(void)
{
    set_irq_handler(irq_handler);
    gic_init();
    kv_rc("map_shared_info", xen_map_shared_info(shinfo_page));
    gic_enable_irq(XEN_EVTCHN_PPI, 0x80);
    irq_enable();
    if (board_arg_is("case", "poll_timeout")) {
        poll_timeout();
    } else if (board_arg_is("case", "poll_masked")) {
        poll_masked();
    } else if (board_arg_is("case", "dt")) {
        device_tree();
    } else if (board_arg_is("case", "watchdog")) {
        watchdog();
    } else if (board_arg_is("case", "el0_hvc")) {
        el0_hvc_case();
    } else {
        ports_and_status();
        timers();
        vcpu_ops();
        version();
        hvm_grant_memory();
        device_tree();
        abi();
        kv_u64("upcalls", upcalls);
        kv_u64("upcalls_empty", upcalls_empty);
    }
    struct sched_shutdown sd = { report() ? SHUTDOWN_crash : SHUTDOWN_poweroff };
    HYPERVISOR_sched_op(SCHEDOP_shutdown, &sd);
    puts("not reached\n");
    return 1;
}
