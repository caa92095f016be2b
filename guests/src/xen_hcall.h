/* Xen guest ABI for the vpmu Xen frontend (--xen): the arm64 hypercall sequence, the struct
 * layouts the xen_* guests use, Xen's errno values, and the 2-level event-channel upcall scan.
 *
 * Hypercall (xen-pmu.md 4.1): HVC #0xEA1 with the number in x16 and arguments in x0..x4; the
 * result comes back in x0 (0 or -errno).  Real Xen may clobber x16 and the argument registers
 * (debug builds poison them), so they are in/out operands here.
 * Layouts: public/xen.h, event_channel.h, vcpu.h, version.h, memory.h, hvm/params.h,
 * grant_table.h, sched.h; the PMU page is the Arm PMUv3 page of xen-pmu.md section 5
 * (docs/xen.md "The Arm PMU page"). */
#ifndef XEN_HCALL_H
#define XEN_HCALL_H
#include "vpmu.h"

#define offsetof(t, m) __builtin_offsetof(t, m)

/* ---- hypercall numbers and the call ---------------------------------------------------- */
#define __HYPERVISOR_memory_op 12
#define __HYPERVISOR_multicall 13
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_vm_assist 21
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_hvm_op 34
#define __HYPERVISOR_xenpmu_op 40

static inline long xen_hypercall(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4)
{
    register u64 x16 __asm__("x16") = nr;
    register u64 x0 __asm__("x0") = a0;
    register u64 x1 __asm__("x1") = a1;
    register u64 x2 __asm__("x2") = a2;
    register u64 x3 __asm__("x3") = a3;
    register u64 x4 __asm__("x4") = a4;
    __asm__ volatile("hvc #0xea1"
                     : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x16)
                     :: "memory");
    return (long)x0;
}

#define HYPERVISOR_xenpmu_op(op, p) xen_hypercall(__HYPERVISOR_xenpmu_op, (op), (u64)(p), 0, 0, 0)
#define HYPERVISOR_event_channel_op(cmd, p) xen_hypercall(__HYPERVISOR_event_channel_op, (cmd), (u64)(p), 0, 0, 0)
#define HYPERVISOR_vcpu_op(cmd, vcpu, p) xen_hypercall(__HYPERVISOR_vcpu_op, (cmd), (vcpu), (u64)(p), 0, 0)
#define HYPERVISOR_xen_version(cmd, p) xen_hypercall(__HYPERVISOR_xen_version, (cmd), (u64)(p), 0, 0, 0)
#define HYPERVISOR_memory_op(cmd, p) xen_hypercall(__HYPERVISOR_memory_op, (cmd), (u64)(p), 0, 0, 0)
#define HYPERVISOR_hvm_op(op, p) xen_hypercall(__HYPERVISOR_hvm_op, (op), (u64)(p), 0, 0, 0)
#define HYPERVISOR_grant_table_op(cmd, p, n) xen_hypercall(__HYPERVISOR_grant_table_op, (cmd), (u64)(p), (n), 0, 0)
#define HYPERVISOR_sched_op(cmd, p) xen_hypercall(__HYPERVISOR_sched_op, (cmd), (u64)(p), 0, 0, 0)
#define HYPERVISOR_console_io(cmd, n, p) xen_hypercall(__HYPERVISOR_console_io, (cmd), (n), (u64)(p), 0, 0)
#define HYPERVISOR_vm_assist(cmd, type) xen_hypercall(__HYPERVISOR_vm_assist, (cmd), (type), 0, 0, 0)

/* ---- errno (public/errno.h; returned negated) ------------------------------------------- */
#define XEN_EPERM 1
#define XEN_ENOENT 2
#define XEN_ESRCH 3
#define XEN_EIO 5
#define XEN_ENXIO 6
#define XEN_EFAULT 14
#define XEN_EBUSY 16
#define XEN_EEXIST 17
#define XEN_EINVAL 22
#define XEN_ENOSPC 28
#define XEN_ENOSYS 38
#define XEN_ENODATA 61
#define XEN_EOPNOTSUPP 95
#define XEN_ENOBUFS 105

/* ---- domains, VIRQs ---------------------------------------------------------------------- */
#define DOMID_SELF 0x7FF0
#define VIRQ_TIMER 0
#define VIRQ_DEBUG 1
#define VIRQ_CONSOLE 2
#define VIRQ_XENPMU 13
#define NR_VIRQS 24
#define XEN_EVTCHN_PPI 31                      /* the "xen,xen" node's interrupt (INTID 31) */
#define PMU_PPI 23

/* ---- xenpmu_op (public/pmu.h) and the Arm PMU page (xen-pmu.md 5) ------------------------ */
#define XENPMU_VER_MAJ 0
#define XENPMU_VER_MIN 1
#define XENPMU_mode_get 0
#define XENPMU_mode_set 1
#define XENPMU_feature_get 2
#define XENPMU_feature_set 3
#define XENPMU_init 4
#define XENPMU_finish 5
#define XENPMU_lvtpc_set 6
#define XENPMU_flush 7
#define XENPMU_MODE_OFF 0
#define XENPMU_MODE_SELF 1
#define XENPMU_MODE_HV 2
#define XENPMU_MODE_ALL 4
#define PMU_CACHED (1UL << 0)
#define PMU_SAMPLE_USER (1UL << 1)
#define PMU_IRQ_MASKED (1u << 16)              /* l.irq_ctrl: the x86 APIC_LVT_MASKED bit */

struct xen_pmu_params {
    u32 maj, min;
    u64 val;
    u32 vcpu, pad;
};

struct xen_pmu_regs_arm {                      /* r: 64 bytes */
    u64 pc, sp, pstate;
    u32 reserved;
    u8 el;
    u8 pad[35];
};

struct xen_pmu_arm_ctxt {                      /* c */
    u32 counters, types, nr_counters, pad;     /* bank offsets from &c (read-only) */
    u64 pmcr, pmcntenset, pmintenset, pmovsset, pmselr, pmuserenr, pmccntr, pmccfiltr;
    u64 pmevcntr[31];
    u64 pmevtyper[31];
};

struct xen_pmu_data {
    u32 vcpu_id, pcpu_id;
    u16 domain_id;
    u8 pad[6];
    struct xen_pmu_regs_arm r;
    u64 pmu_flags;
    struct { u32 irq_ctrl, pad; } l;
    struct xen_pmu_arm_ctxt c;
};
_Static_assert(offsetof(struct xen_pmu_data, r.el) == 0x2C, "r.el");
_Static_assert(offsetof(struct xen_pmu_data, pmu_flags) == 0x50, "pmu_flags");
_Static_assert(offsetof(struct xen_pmu_data, l.irq_ctrl) == 0x58, "l.irq_ctrl");
_Static_assert(offsetof(struct xen_pmu_data, c.pmcr) == 0x70, "c.pmcr");
_Static_assert(offsetof(struct xen_pmu_data, c.pmevcntr) == 0xB0, "c.pmevcntr");
_Static_assert(offsetof(struct xen_pmu_data, c.pmevtyper) == 0x1A8, "c.pmevtyper");
_Static_assert(sizeof(struct xen_pmu_data) == 0x2A0, "xen_pmu_data");

/* ---- shared_info / vcpu_info (arm64) ------------------------------------------------------ */
struct vcpu_info {
    u8 evtchn_upcall_pending;
    u8 pad0;
    u64 evtchn_pending_sel;
    u8 time[32];                               /* vcpu_time_info: not maintained on Arm */
};
struct shared_info {
    struct vcpu_info vcpu_info[1];
    u64 evtchn_pending[64];
    u64 evtchn_mask[64];
    u32 wc_version, wc_sec, wc_nsec, wc_sec_hi;
};
_Static_assert(sizeof(struct vcpu_info) == 48, "vcpu_info");
_Static_assert(offsetof(struct shared_info, evtchn_pending) == 48, "evtchn_pending");
_Static_assert(offsetof(struct shared_info, evtchn_mask) == 560, "evtchn_mask");
_Static_assert(sizeof(struct shared_info) == 1088, "shared_info");

/* ---- memory_op ----------------------------------------------------------------------------- */
#define XENMEM_add_to_physmap 7
#define XENMEM_remove_from_physmap 15
#define XENMAPSPACE_shared_info 0
#define XENMAPSPACE_grant_table 1
struct xen_add_to_physmap { u16 domid, size; u32 space; u64 idx, gpfn; };
struct xen_remove_from_physmap { u16 domid; u64 gpfn; };
_Static_assert(sizeof(struct xen_add_to_physmap) == 24, "xen_add_to_physmap");

/* ---- event_channel_op ---------------------------------------------------------------------- */
#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_virq 1
#define EVTCHNOP_bind_pirq 2
#define EVTCHNOP_close 3
#define EVTCHNOP_send 4
#define EVTCHNOP_status 5
#define EVTCHNOP_alloc_unbound 6
#define EVTCHNOP_bind_ipi 7
#define EVTCHNOP_bind_vcpu 8
#define EVTCHNOP_unmask 9
#define EVTCHNOP_reset 10
#define EVTCHNOP_init_control 11
#define EVTCHNOP_expand_array 12
#define EVTCHNOP_set_priority 13
#define EVTCHNSTAT_closed 0
#define EVTCHNSTAT_unbound 1
#define EVTCHNSTAT_interdomain 2
#define EVTCHNSTAT_virq 4
#define EVTCHNSTAT_ipi 5
struct evtchn_bind_virq { u32 virq, vcpu, port; };
struct evtchn_bind_ipi { u32 vcpu, port; };
struct evtchn_alloc_unbound { u16 dom, remote_dom; u32 port; };
struct evtchn_bind_interdomain { u16 remote_dom; u32 remote_port, local_port; };
struct evtchn_port_arg { u32 port; };          /* close, send, unmask */
struct evtchn_status {
    u16 dom;
    u32 port, status, vcpu;
    union { struct { u16 dom; } unbound; struct { u16 dom; u32 port; } interdomain; u32 virq; } u;
};
_Static_assert(sizeof(struct evtchn_status) == 24, "evtchn_status");

/* ---- vcpu_op, vm_assist -------------------------------------------------------------------- */
#define VCPUOP_initialise 0
#define VCPUOP_is_up 3
#define VCPUOP_get_runstate_info 4
#define VCPUOP_register_runstate_memory_area 5
#define VCPUOP_set_periodic_timer 6
#define VCPUOP_stop_periodic_timer 7
#define VCPUOP_set_singleshot_timer 8
#define VCPUOP_stop_singleshot_timer 9
#define VCPUOP_register_vcpu_info 10
#define VCPUOP_send_nmi 11
#define VCPUOP_register_runstate_phys_area 14
struct vcpu_runstate_info { s32 state; u32 pad; u64 state_entry_time; u64 time[4]; };
struct vcpu_set_periodic_timer { u64 period_ns; };
struct vcpu_set_singleshot_timer { u64 timeout_abs_ns; u32 flags, pad; };
struct vcpu_register_vcpu_info { u64 mfn; u32 offset, rsvd; };
_Static_assert(sizeof(struct vcpu_runstate_info) == 48, "vcpu_runstate_info");
#define VMASST_CMD_enable 0
#define VMASST_CMD_disable 1
#define VMASST_TYPE_runstate_update_flag 5

/* ---- xen_version ----------------------------------------------------------------------------- */
#define XENVER_version 0
#define XENVER_extraversion 1
#define XENVER_compile_info 2
#define XENVER_capabilities 3
#define XENVER_changeset 4
#define XENVER_platform_parameters 5
#define XENVER_get_features 6
#define XENVER_pagesize 7
#define XENVER_guest_handle 8
#define XENVER_commandline 9
#define XENVER_build_id 10
#define XENVER_extraversion2 11
struct xen_feature_info { u32 submap_idx, submap; };

/* ---- hvm_op, grant_table_op, sched_op, console_io -------------------------------------------- */
#define HVMOP_set_param 0
#define HVMOP_get_param 1
#define HVMOP_guest_request_vm_event 24
#define HVM_PARAM_CALLBACK_IRQ 0
#define HVM_PARAM_STORE_PFN 1
#define HVM_PARAM_MONITOR_RING_PFN 28
struct xen_hvm_param { u16 domid, pad; u32 index; u64 value; };
#define GNTTABOP_query_size 6
#define GNTTABOP_set_version 8
#define GNTTABOP_get_version 10
struct gnttab_query_size { u16 dom; u32 nr_frames, max_nr_frames; short status; };
struct gnttab_get_version { u16 dom, pad; u32 version; };
_Static_assert(sizeof(struct gnttab_query_size) == 16, "gnttab_query_size");
#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SCHEDOP_poll 3
#define SCHEDOP_remote_shutdown 4
#define SCHEDOP_shutdown_code 5
#define SCHEDOP_watchdog 6
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_crash 3
struct sched_shutdown { u32 reason; };
struct sched_poll { u64 ports; u32 nr_ports, pad; u64 timeout; };
#define CONSOLEIO_write 0

/* ---- helpers ---------------------------------------------------------------------------------- */
/* "key=<signed decimal>" (hypercall results: 0, a port, or -errno) */
static inline void kv_rc(const char *key, long v) { printf("%s=%ld\n", key, v); }

/* Xen's system time on this board: env.now_ns() = CPU cycles at 1 GHz; CNTVCT ticks 16 ns. */
static inline u64 xen_now_ns(void) { return cntvct() * (1000000000UL / cntfrq()); }

static inline long xen_map_shared_info(void *page)
{
    struct xen_add_to_physmap x = { DOMID_SELF, 0, XENMAPSPACE_shared_info, 0, (u64)page >> 12 };
    return HYPERVISOR_memory_op(XENMEM_add_to_physmap, &x);
}

static inline long xen_bind_virq(u32 virq, u32 vcpu)
{
    struct evtchn_bind_virq b = { virq, vcpu, ~0u };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &b);
    return rc ? rc : (long)b.port;
}

static inline long xen_evtchn_port_op(int cmd, u32 port)
{
    struct evtchn_port_arg a = { port };
    return HYPERVISOR_event_channel_op(cmd, &a);
}

/* The 2-level upcall, as Linux's __xen_evtchn_do_upcall / evtchn_2l_handle_events: clear
 * evtchn_upcall_pending first, swap out the selector, then for every selected word handle
 * pending & ~mask, clearing each port's pending bit before its handler runs.  Returns the
 * number of ports handled (0 for a spurious upcall). */
static inline int xen_evtchn_scan(volatile struct shared_info *s, volatile struct vcpu_info *vi,
                                  void (*handle)(u32 port))
{
    int n = 0;
    vi->evtchn_upcall_pending = 0;
    u64 sel = __atomic_exchange_n(&vi->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        u32 w = __builtin_ctzl(sel);
        sel &= sel - 1;
        u64 pend = s->evtchn_pending[w] & ~s->evtchn_mask[w];
        while (pend) {
            u32 b = __builtin_ctzl(pend);
            pend &= pend - 1;
            __atomic_fetch_and(&s->evtchn_pending[w], ~(1UL << b), __ATOMIC_SEQ_CST);
            handle(w * 64 + b);
            n++;
        }
    }
    return n;
}

#endif
