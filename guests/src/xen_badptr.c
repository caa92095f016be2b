/* Bad guest pointers through every pointer-taking hypercall of the Xen frontend (run with
 * --xen): each answers -EFAULT (or what Xen answers before it reads the pointer), the guest
 * takes no exception and continues, and the same call with a good pointer still works.
 *
 * One line per call: "bp_<call>=<rc at addr 1>,<rc at addr 2>,...".
 *  - MMU off (bp_): NULL, the UART (MMIO, not RAM), a hole (0x2000_0000), a struct crossing
 *    the end of RAM (128 MiB default), and an address that wraps (2^64 - 8);
 *  - MMU on (bpv_, runtime mmu_enable with a RAM alias at 8 GiB): an unmapped VA (5 GiB), a
 *    TTBR1 VA (EPD1: no walks), a Device mapping of a hole (0x2000_0000); the good calls
 *    then go through the 8 GiB alias;
 *  - MMU on with this guest's own tables (bpro_): a read-only alias of RAM at 8 GiB, for the
 *    calls that write a result.  Copies in work, copies out fail: a bind_virq whose result
 *    cannot be written back returns -EFAULT but stays bound ("cleaning up here would be a
 *    mess", event_channel.c).
 * --append case=mmio: MMU on, every call with the VA of the UART (Device memory, not RAM):
 *    Xen copies only to and from RAM pages, so all are -EFAULT and nothing reaches the UART.
 *    The results are collected first and printed after a newline, so stray bytes a call
 *    might write into the UART cannot split a result line. */
#include "xen_hcall.h"
#include "board_common.h"

#define RAM_BASE 0x40000000UL
#define RAM_END (RAM_BASE + (128UL << 20))
#define ALIAS (8UL << 30)
#define VA(p) (ALIAS + ((u64)(p) - RAM_BASE))

static u8 good[4096] ALIGNED(4096);
static u8 shinfo_page[4096] ALIGNED(4096);

typedef long (*call_fn)(u64 p);

#define EV(cmd) static long ev_##cmd(u64 p) { return HYPERVISOR_event_channel_op(EVTCHNOP_##cmd, p); }
EV(bind_interdomain) EV(bind_virq) EV(bind_pirq) EV(close) EV(send) EV(status) EV(alloc_unbound)
EV(bind_ipi) EV(bind_vcpu) EV(unmask) EV(reset) EV(init_control) EV(expand_array) EV(set_priority)
#define PMU(op) static long pmu_##op(u64 p) { return HYPERVISOR_xenpmu_op(XENPMU_##op, p); }
PMU(mode_get) PMU(mode_set) PMU(feature_get) PMU(feature_set) PMU(init) PMU(finish) PMU(lvtpc_set) PMU(flush)
#define VCPU(cmd) static long vcpu_##cmd(u64 p) { return HYPERVISOR_vcpu_op(VCPUOP_##cmd, 0, p); }
VCPU(register_vcpu_info) VCPU(register_runstate_memory_area) VCPU(get_runstate_info)
VCPU(set_periodic_timer) VCPU(set_singleshot_timer) VCPU(register_runstate_phys_area)
#define VER(cmd) static long ver_##cmd(u64 p) { return HYPERVISOR_xen_version(XENVER_##cmd, p); }
VER(version) VER(extraversion) VER(compile_info) VER(capabilities) VER(changeset) VER(platform_parameters)
VER(get_features) VER(pagesize) VER(guest_handle) VER(commandline) VER(extraversion2)
#define SCHED(cmd) static long sched_##cmd(u64 p) { return HYPERVISOR_sched_op(SCHEDOP_##cmd, p); }
SCHED(shutdown) SCHED(shutdown_code) SCHED(poll) SCHED(remote_shutdown) SCHED(watchdog)
static long sched_pin_override(u64 p) { return HYPERVISOR_sched_op(7, p); }
static long mem_add_to_physmap(u64 p) { return HYPERVISOR_memory_op(XENMEM_add_to_physmap, p); }
static long mem_remove_from_physmap(u64 p) { return HYPERVISOR_memory_op(XENMEM_remove_from_physmap, p); }
static long hvm_set_param(u64 p) { return HYPERVISOR_hvm_op(HVMOP_set_param, p); }
static long hvm_get_param(u64 p) { return HYPERVISOR_hvm_op(HVMOP_get_param, p); }
static long hvm_vm_event(u64 p) { return HYPERVISOR_hvm_op(HVMOP_guest_request_vm_event, p); }
static long gnt_query_size(u64 p) { return HYPERVISOR_grant_table_op(GNTTABOP_query_size, p, 1); }
static long gnt_get_version(u64 p) { return HYPERVISOR_grant_table_op(GNTTABOP_get_version, p, 1); }
static long gnt_set_version(u64 p) { return HYPERVISOR_grant_table_op(GNTTABOP_set_version, p, 1); }
static long console_write(u64 p) { return HYPERVISOR_console_io(CONSOLEIO_write, 8, p); }

static const struct { const char *name; call_fn fn; } CALLS[] = {
#define C(f) { #f, f }
    C(pmu_mode_get), C(pmu_mode_set), C(pmu_feature_get), C(pmu_feature_set), C(pmu_init), C(pmu_finish),
    C(pmu_lvtpc_set), C(pmu_flush),
    C(ev_bind_interdomain), C(ev_bind_virq), C(ev_bind_pirq), C(ev_close), C(ev_send), C(ev_status),
    C(ev_alloc_unbound), C(ev_bind_ipi), C(ev_bind_vcpu), C(ev_unmask), C(ev_reset), C(ev_init_control),
    C(ev_expand_array), C(ev_set_priority),
    C(vcpu_register_vcpu_info), C(vcpu_register_runstate_memory_area), C(vcpu_get_runstate_info),
    C(vcpu_set_periodic_timer), C(vcpu_set_singleshot_timer), C(vcpu_register_runstate_phys_area),
    C(ver_version), C(ver_extraversion), C(ver_compile_info), C(ver_capabilities), C(ver_changeset),
    C(ver_platform_parameters), C(ver_get_features), C(ver_pagesize), C(ver_guest_handle),
    C(ver_commandline), C(ver_extraversion2),
    C(sched_shutdown), C(sched_shutdown_code), C(sched_poll), C(sched_remote_shutdown), C(sched_watchdog),
    C(sched_pin_override),
    C(mem_add_to_physmap), C(mem_remove_from_physmap),
    C(hvm_set_param), C(hvm_get_param), C(hvm_vm_event),
    C(gnt_query_size), C(gnt_get_version), C(gnt_set_version),
    C(console_write),
#undef C
};
#define NCALLS (sizeof CALLS / sizeof CALLS[0])

static volatile u64 sync_exceptions;
static void sync_handler(struct exc_frame *f, int vec)
{
    printf("unexpected exception: vector=%d esr=0x%lx elr=0x%lx far=0x%lx\n", vec, f->esr, f->elr, f->far);
    sync_exceptions++;
    f->elr += 4;
}

static long results[NCALLS];

static void sweep(const char *prefix, const u64 *addrs, int n)
{
    for (unsigned i = 0; i < NCALLS; i++) {
        printf("%s%s=", prefix, CALLS[i].name);
        for (int j = 0; j < n; j++)
            printf(j ? ",%ld" : "%ld", CALLS[i].fn(addrs[j]));
        putc('\n');
    }
}

/* calls that copy a result out; the struct is zeros, with a leading u16 domain id
 * DOMID_SELF where the call takes one */
static const struct { const char *name; int self; } RO_CALLS[] = {
    { "pmu_mode_get", 0 }, { "pmu_feature_get", 0 }, { "ev_status", 1 }, { "ev_alloc_unbound", 1 },
    { "ev_bind_ipi", 0 }, { "vcpu_get_runstate_info", 0 }, { "ver_extraversion", 0 },
    { "ver_compile_info", 0 }, { "ver_capabilities", 0 }, { "ver_changeset", 0 },
    { "ver_platform_parameters", 0 }, { "ver_get_features", 0 }, { "ver_guest_handle", 0 },
    { "ver_commandline", 0 }, { "hvm_get_param", 1 }, { "gnt_query_size", 1 }, { "gnt_get_version", 1 },
    { "gnt_set_version", 0 },
};

static call_fn find(const char *name)
{
    for (unsigned i = 0; i < NCALLS; i++)
        if (!strcmp(CALLS[i].name, name))
            return CALLS[i].fn;
    return 0;
}

/* good calls (struct at `base`, which may be a VA alias of `good`) */
static void good_calls(const char *prefix, u64 base)
{
    struct xen_feature_info *fi = (void *)good;
    fi->submap_idx = 0;
    fi->submap = 0;
    printf("%sget_features=%ld,0x%x\n", prefix, HYPERVISOR_xen_version(XENVER_get_features, base), fi->submap);
    struct evtchn_status *st = (void *)good;
    memset(st, 0, sizeof *st);
    st->dom = DOMID_SELF;
    st->port = 0;
    st->status = 99;
    printf("%sstatus=%ld,%u\n", prefix, HYPERVISOR_event_channel_op(EVTCHNOP_status, base), st->status);
    struct gnttab_query_size *q = (void *)good;
    memset(q, 0, sizeof *q);
    q->dom = DOMID_SELF;
    printf("%squery_size=%ld,%u\n", prefix, HYPERVISOR_grant_table_op(GNTTABOP_query_size, base, 1), q->max_nr_frames);
    struct xen_pmu_params *pp = (void *)good;
    memset(pp, 0, sizeof *pp);
    pp->val = 99;
    printf("%smode_get=%ld,%lu\n", prefix, HYPERVISOR_xenpmu_op(XENPMU_mode_get, base), pp->val);
}

/* ---- this guest's own tables: identity map + a read-only RAM alias at 8 GiB ---------------- */
static u64 ro_l1[512] ALIGNED(4096);
static u64 ro_l2[512] ALIGNED(4096);

static void mmu_enable_ro_alias(void)
{
    write_sysreg(mair_el1, 0xff00UL);                         /* attr0 Device-nGnRnE, attr1 Normal WB */
    ro_l1[0] = 0x0UL | (0 << 2) | (1 << 10) | 1;
    for (u64 g = 1; g < 4; g++)
        ro_l1[g] = (g << 30) | (1 << 2) | (3 << 8) | (1 << 10) | 1;
    for (u64 i = 0; i < 512; i++)                             /* 2 MiB blocks, AP = 0b10: EL1 read-only */
        ro_l2[i] = (RAM_BASE + (i << 21)) | (1 << 2) | (2 << 6) | (3 << 8) | (1 << 10) | 1;
    ro_l1[ALIAS >> 30] = (u64)ro_l2 | 3;                      /* table descriptor */
    dsb();
    write_sysreg(tcr_el1, 25UL | (1UL << 8) | (1UL << 10) | (3UL << 12) | (1UL << 23) | (2UL << 32));
    write_sysreg(ttbr0_el1, (u64)ro_l1);
    isb();
    __asm__ volatile("tlbi vmalle1\n dsb sy\n isb" ::: "memory");
    write_sysreg(sctlr_el1, read_sysreg(sctlr_el1) | 1 | (1 << 2) | (1 << 12));
    isb();
}

static void mmio_case(void)
{
    mmu_enable(ALIAS);
    for (unsigned i = 0; i < NCALLS; i++)
        results[i] = CALLS[i].fn(0x09000000UL);
    mmu_disable();
    putc('\n');
    for (unsigned i = 0; i < NCALLS; i++)
        printf("bpm_%s=%ld\n", CALLS[i].name, results[i]);
}

int main(void)
{
    set_sync_handler(sync_handler);
    kv_rc("map_shared_info", xen_map_shared_info(shinfo_page));
    if (board_arg_is("case", "mmio")) {
        mmio_case();
        return report();
    }

    /* MMU off: addresses that are not guest RAM */
    u64 phys_bad[] = { 0, 0x09000000UL, 0x20000000UL, RAM_END - 1, (u64)-8 };
    sweep("bp_", phys_bad, 5);
    good_calls("good_", (u64)good);

    /* MMU on: virtual addresses that do not translate, or translate to no RAM */
    mmu_enable(ALIAS);
    u64 virt_bad[] = { 5UL << 30, 0xFFFF000000000000UL, 0x20000000UL };
    sweep("bpv_", virt_bad, 3);
    good_calls("goodv_", VA(good));
    mmu_disable();

    /* MMU on, RAM also visible read-only at 8 GiB: reads work, writes back fault */
    mmu_enable_ro_alias();
    struct evtchn_bind_virq *b = (void *)good;
    b->virq = VIRQ_TIMER;
    b->vcpu = 0;
    b->port = 0xEEEE;
    kv_rc("ro_bind_virq", HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, VA(b)));
    kv_hex("ro_bind_virq_port_field", b->port);
    kv_rc("ro_bind_virq_again", xen_bind_virq(VIRQ_TIMER, 0));    /* -EEXIST: it was bound */
    struct evtchn_status *st = (void *)(good + 64);
    memset(st, 0, sizeof *st);
    st->dom = DOMID_SELF;
    st->port = 1;
    kv_rc("ro_status_copy_in_only", HYPERVISOR_event_channel_op(EVTCHNOP_status, VA(st)));
    kv_rc("rw_status", HYPERVISOR_event_channel_op(EVTCHNOP_status, st));
    printf("rw_status_fields=%u,%u,%u\n", st->status, st->vcpu, st->u.virq);
    *(u16 *)(good + 1024) = DOMID_SELF;
    for (unsigned i = 0; i < sizeof RO_CALLS / sizeof RO_CALLS[0]; i++)
        printf("bpro_%s=%ld\n", RO_CALLS[i].name, find(RO_CALLS[i].name)(VA(good + (RO_CALLS[i].self ? 1024 : 2048))));
    for (u32 port = 2; port <= 3; port++) {      /* alloc_unbound and bind_ipi above kept theirs */
        memset(st, 0, sizeof *st);
        st->dom = DOMID_SELF;
        st->port = port;
        long rc = HYPERVISOR_event_channel_op(EVTCHNOP_status, st);
        printf("ro_kept_port%u=%ld,%u\n", port, rc, st->status);
    }
    good_calls("goodro_", (u64)good);
    mmu_disable();

    kv_u64("sync_exceptions", sync_exceptions);
    return report();
}
