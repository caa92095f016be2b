/* A Xen PMU driver in the style of Linux arch/x86/xen/pmu.c, on the Arm page of xen-pmu.md
 * section 5 (run with --xen).
 *
 * Set-up as a Linux guest does it: map shared_info (XENMEM_add_to_physmap), register vCPU 0's
 * vcpu_info (Xen marks everything pending: exactly one spurious upcall), XENPMU_init with a
 * zeroed page, bind VIRQ_XENPMU, enable the event-channel PPI 31.  The PMU interrupt starts
 * masked: an overflow before XENPMU_lvtpc_set is dropped and stays in PMOVSSET.
 *
 * Then counter 0 counts INST_RETIRED with its interrupt enabled, preset to -K; counter 1 counts
 * BR_RETIRED; counter 2 counts INST_RETIRED without interrupt (the reference T); the cycle
 * counter runs too.  A loop at EL1 and one at EL0 make 50 overflows (40 + 10).  The upcall handler
 * (Linux's xen_pmu_irq_handler) reads the sample from the page and checks it against the
 * exception frame of the upcall itself, checks that counting is frozen while the sample is
 * cached (registers read twice around some work; register reads equal the page), acknowledges
 * in the page (clears the PMOVSSET bit, re-arms counter 0 K instructions after its overflow)
 * and calls XENPMU_flush.  Once, the flush carries an invalid PMSELR: -EIO, still cached and
 * frozen; the fixed page then flushes.  Since counters 0 and 2 count the same instructions and
 * counter 0 is re-armed by subtracting K, exactly T / K overflows happened, and one upcall per
 * overflow means pmu_upcalls == T / K and counter 0 == T - K * (upcalls + 1) (mod 2^32).
 *
 * The native PMU PPI 23 is enabled throughout and must stay quiet while the page owns the
 * PMU interrupt.  Finally XENPMU_finish: the page is forgotten, flush/lvtpc_set answer
 * -EINVAL, and an overflow raises PPI 23 again.
 * If XENPMU_init fails (-EOPNOTSUPP: vPMU off; -ENOENT: a domU in mode "all"), the guest
 * prints vpmu=disabled and stops, as Linux reports "VPMU disabled by hypervisor". */
#include "xen_hcall.h"

#define K 20000UL                      /* sampling period of counter 0 */
#define EL1_ITERS 401000UL             /* spin(): 2 instructions per iteration */
#define EL0_ITERS 100000UL
#define EIO_AT 10                      /* the upcall whose first flush carries a bad PMSELR */
#define CNTEN (0x80000000UL | 0x7)     /* cycle counter, counters 0..2 */

static u8 shinfo_page[4096] ALIGNED(4096);
static u8 vcpu_info_page[4096] ALIGNED(4096);
static u8 pmu_page[4096] ALIGNED(4096);
#define SH ((volatile struct shared_info *)shinfo_page)
#define PAGE ((volatile struct xen_pmu_data *)pmu_page)
#define VI_OFFSET 64
static volatile struct vcpu_info *vi;

/* the counter banks, found as Linux finds them: &c + c.counters / c.types */
#define PAGE_CNTR(i) (((volatile u64 *)((volatile u8 *)&PAGE->c + PAGE->c.counters))[i])

/* spin(n): n iterations of 2 instructions (subs, b.ne) */
u64 spin(u64 n);
extern char spin_end[];
__asm__(".text\n.global spin\nspin:\n1: subs x0, x0, #1\n b.ne 1b\n ret\n.global spin_end\nspin_end: nop\n");

static volatile u32 pmu_port;
static struct exc_frame *volatile cur_frame;
static volatile u64 upcalls, upcalls_empty, pmu_upcalls, other_ports, native_irqs, native_ovs, other_irqs;
static volatile u64 samples_el0, samples_el1, flush_errors;
static volatile u64 bad_flags, bad_pc, bad_pstate, bad_sp, bad_el, pc_outside, bad_ids, bad_ovs, bad_ctl,
    bad_frozen, bad_regs, bad_uncached;
static volatile long eio_rc = 1, eio_cached = -1, eio_frozen = -1, eio_fixed_rc = 1;

static void handle_pmu(void)
{
    struct exc_frame *f = cur_frame;
    volatile struct xen_pmu_data *p = PAGE;
    u64 el = p->r.el;
    pmu_upcalls++;
    if (el == 0)
        samples_el0++;
    else
        samples_el1++;
    if (p->pmu_flags != (PMU_CACHED | (el == 0 ? PMU_SAMPLE_USER : 0)))
        bad_flags++;
    /* the sample and this upcall interrupted the same instruction boundary */
    if (p->r.pc != f->elr)
        bad_pc++;
    if (p->r.pstate != f->spsr)
        bad_pstate++;
    if (el != ((f->spsr >> 2) & 3))
        bad_el++;
    if (p->r.sp != (el == 0 ? f->sp_el0 : (u64)f + sizeof(struct exc_frame)))
        bad_sp++;
    if (p->r.pc < (u64)spin || p->r.pc >= (u64)spin_end)
        pc_outside++;
    if (p->vcpu_id != 0 || p->pcpu_id != 0 || p->domain_id != DOMID_SELF)
        bad_ids++;
    if (p->c.pmovsset != 1)            /* only counter 0 overflowed */
        bad_ovs++;
    if (p->c.pmcntenset != CNTEN || p->c.pmintenset != 1 || !(p->c.pmcr & PMCR_E))
        bad_ctl++;

    /* frozen while cached; PMU register reads see the frozen context, i.e. the page */
    u64 c0 = read_sysreg(pmevcntr0_el0), c2 = read_sysreg(pmevcntr2_el0), cc = read_sysreg(pmccntr_el0);
    spin(100);
    if (read_sysreg(pmevcntr0_el0) != c0 || read_sysreg(pmevcntr2_el0) != c2 || read_sysreg(pmccntr_el0) != cc)
        bad_frozen++;
    if (c0 != PAGE_CNTR(0) || c2 != PAGE_CNTR(2) || cc != p->c.pmccntr || read_sysreg(pmovsset_el0) != p->c.pmovsset)
        bad_regs++;

    if (pmu_upcalls == EIO_AT) {       /* PMSELR must be 31 or < N: the flush is refused */
        u64 sel = p->c.pmselr;
        p->c.pmselr = 32;
        eio_rc = HYPERVISOR_xenpmu_op(XENPMU_flush, 0);
        eio_cached = p->pmu_flags & PMU_CACHED;
        u64 a = read_sysreg(pmevcntr2_el0);
        spin(100);
        eio_frozen = read_sysreg(pmevcntr2_el0) == a;
        p->c.pmselr = sel;
    }

    /* acknowledge in the page and re-arm: the next overflow K instructions after this one */
    p->c.pmovsset &= ~1UL;
    PAGE_CNTR(0) = (PAGE_CNTR(0) - K) & 0xffffffffUL;
    long rc = HYPERVISOR_xenpmu_op(XENPMU_flush, 0);
    if (rc)
        flush_errors++;
    if (pmu_upcalls == EIO_AT)
        eio_fixed_rc = rc;
    if (p->pmu_flags & PMU_CACHED)
        bad_uncached++;
}

static void handle_port(u32 port)
{
    if (port == pmu_port)
        handle_pmu();
    else
        other_ports++;
}

static void irq_handler(struct exc_frame *f, int vec)
{
    (void)vec;
    u32 id = gic_ack();
    if (id == 1023)
        return;
    if (id == XEN_EVTCHN_PPI) {
        cur_frame = f;
        upcalls++;
        if (!xen_evtchn_scan(SH, vi, handle_port))
            upcalls_empty++;
    } else if (id == PMU_PPI) {
        native_irqs++;
        native_ovs = read_sysreg(pmovsclr_el0);
        write_sysreg(pmovsclr_el0, native_ovs);
        isb();
    } else {
        other_irqs++;
    }
    gic_eoi(id);
}

/* counter 0: INST_RETIRED from `preset` with its interrupt enabled */
static void arm_counter0(u64 preset)
{
    pmu_reset();
    write_sysreg(pmevtyper0_el0, EV_INST_RETIRED);
    write_sysreg(pmevcntr0_el0, preset);
    write_sysreg(pmintenset_el1, 1);
    write_sysreg(pmcntenset_el0, 1);
    isb();
}

int main(void)
{
    set_irq_handler(irq_handler);
    gic_init();

    struct xen_feature_info fi = { 0, 0 };
    kv_rc("features_rc", HYPERVISOR_xen_version(XENVER_get_features, &fi));
    kv_hex("features", fi.submap);

    /* shared_info, then vcpu_info: Xen marks everything pending, one spurious upcall */
    kv_rc("map_shared_info", xen_map_shared_info(shinfo_page));
    struct vcpu_register_vcpu_info rvi = { (u64)vcpu_info_page >> 12, VI_OFFSET, 0 };
    kv_rc("register_vcpu_info", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &rvi));
    vi = (volatile struct vcpu_info *)(vcpu_info_page + VI_OFFSET);
    kv_rc("register_vcpu_info_again", HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, 0, &rvi));
    kv_u64("vi_upcall_pending", vi->evtchn_upcall_pending);
    kv_hex("vi_pending_sel", vi->evtchn_pending_sel);
    gic_enable_irq(XEN_EVTCHN_PPI, 0x80);
    gic_enable_irq(PMU_PPI, 0x80);     /* must stay quiet while the page owns the PMU interrupt */
    irq_enable();
    isb();
    kv_u64("spurious_upcalls", upcalls_empty);

    struct xen_pmu_params pp = { XENPMU_VER_MAJ, XENPMU_VER_MIN, 0, 0, 0 };
    long rc = HYPERVISOR_xenpmu_op(XENPMU_mode_get, &pp);
    kv_rc("mode_get", rc);
    if (rc == 0)
        kv_u64("mode", pp.val);

    /* xen_pmu_init(): version 0.1, the page's frame, vCPU 0 */
    struct xen_pmu_params ip = { XENPMU_VER_MAJ, XENPMU_VER_MIN, (u64)pmu_page >> 12, 0, 0 };
    rc = HYPERVISOR_xenpmu_op(XENPMU_init, &ip);
    kv_rc("init", rc);
    if (rc) {
        kv_str("vpmu", "disabled");
        kv_rc("flush_without_page", HYPERVISOR_xenpmu_op(XENPMU_flush, 0));
        kv_rc("bind_virq_xenpmu", xen_bind_virq(VIRQ_XENPMU, 0));   /* binding still works */
        return report();
    }
    kv_rc("init_again", HYPERVISOR_xenpmu_op(XENPMU_init, &ip));
    ip.vcpu = 1;
    kv_rc("init_vcpu1", HYPERVISOR_xenpmu_op(XENPMU_init, &ip));
    kv_hex("c_counters", PAGE->c.counters);
    kv_hex("c_types", PAGE->c.types);
    kv_u64("nr_counters", PAGE->c.nr_counters);
    CHECK_EQ(PAGE->c.nr_counters, pmu_n());
    kv_u64("flags_after_init", PAGE->pmu_flags);

    long port = xen_bind_virq(VIRQ_XENPMU, 0);
    kv_rc("pmu_port", port);
    pmu_port = (u32)port;

    /* The PMU interrupt starts masked: this overflow is dropped and stays in PMOVSSET. */
    arm_counter0(0xFFFFFFF0UL);
    pmcr_write(PMCR_LC | PMCR_E);
    spin(100);
    pmcr_write(PMCR_LC);
    kv_u64("masked_upcalls", upcalls - upcalls_empty);
    kv_hex("masked_pmovsset", read_sysreg(pmovsset_el0));
    write_sysreg(pmovsclr_el0, ~0UL);
    isb();

    /* Unmask: l.irq_ctrl bit 16 clear (bits 9:0 name the PPI, informational), lvtpc_set. */
    PAGE->l.irq_ctrl = PMU_PPI;
    kv_rc("lvtpc_set", HYPERVISOR_xenpmu_op(XENPMU_lvtpc_set, 0));

    arm_counter0((u32)-K);
    write_sysreg(pmevtyper1_el0, EV_BR_RETIRED);
    write_sysreg(pmevtyper2_el0, EV_INST_RETIRED);
    write_sysreg(pmccfiltr_el0, 0);
    write_sysreg(pmcntenset_el0, CNTEN);
    pmcr_write(PMCR_LC | PMCR_E);
    spin(EL1_ITERS);
    el0_call(spin, EL0_ITERS, (u64)__el0_stack_top);
    pmcr_write(PMCR_LC);

    u64 t = read_sysreg(pmevcntr2_el0), c0 = read_sysreg(pmevcntr0_el0), br = read_sysreg(pmevcntr1_el0);
    kv_u64("overflows", t / K);
    kv_u64("pmu_upcalls", pmu_upcalls);
    kv_u64("upcalls", upcalls);
    kv_u64("samples_el1", samples_el1);
    kv_u64("samples_el0", samples_el0);
    kv_u64("counter0_consistent", (u32)c0 == (u32)(t - K * (pmu_upcalls + 1)));
    kv_u64("br_counted", br >= EL1_ITERS + EL0_ITERS && br < t);
    kv_u64("other_ports", other_ports);
    kv_u64("flush_errors", flush_errors);
    kv_u64("bad_flags", bad_flags);
    kv_u64("bad_pc", bad_pc);
    kv_u64("bad_pstate", bad_pstate);
    kv_u64("bad_el", bad_el);
    kv_u64("bad_sp", bad_sp);
    kv_u64("pc_outside_loop", pc_outside);
    kv_u64("bad_ids", bad_ids);
    kv_u64("bad_pmovsset", bad_ovs);
    kv_u64("bad_ctl", bad_ctl);
    kv_u64("not_frozen", bad_frozen);
    kv_u64("regs_differ_from_page", bad_regs);
    kv_u64("cached_after_flush", bad_uncached);
    kv_rc("eio_flush", eio_rc);
    kv_rc("eio_still_cached", eio_cached);
    kv_rc("eio_still_frozen", eio_frozen);
    kv_rc("eio_fixed_flush", eio_fixed_rc);
    CHECK_EQ(pmu_upcalls, t / K);

    /* XENPMU_finish: the page is forgotten; overflows raise the native PMU PPI again */
    struct xen_pmu_params fp = { XENPMU_VER_MAJ, XENPMU_VER_MIN, 0, 0, 0 };
    kv_rc("finish", HYPERVISOR_xenpmu_op(XENPMU_finish, &fp));
    kv_rc("lvtpc_set_after_finish", HYPERVISOR_xenpmu_op(XENPMU_lvtpc_set, 0));
    kv_rc("flush_after_finish", HYPERVISOR_xenpmu_op(XENPMU_flush, 0));
    u64 before = pmu_upcalls;
    arm_counter0(0xFFFFFFF0UL);
    pmcr_write(PMCR_LC | PMCR_E);
    spin(100);
    pmcr_write(PMCR_LC);
    kv_u64("native_irqs", native_irqs);
    kv_hex("native_ovs", native_ovs);
    kv_u64("upcalls_after_finish", pmu_upcalls - before);
    kv_u64("other_irqs", other_irqs);
    return report();
}
