/* Event semantics, the rest: CID_WRITE_RETIRED, TTBR_WRITE_RETIRED, SW_INCR, CHAIN,
 * PMU_OVFS, PMCEID0/1 per PMU version, events a version does not implement, PMCR_EL0.D.
 *
 * Run with --counters 31 (tests/test_events.py runs it for every --pmu-version).
 * Bracketing (ev_harness.h): every count includes the enabling `msr pmcr_el0, x0` and not
 * the disabling `msr pmcr_el0, xzr`.
 */
#include "ev_harness.h"

/* ---- system register writes (standard event set) ------------------------------------------ */
/* cid: msr, msr CONTEXTIDR_EL1 twice (the same value, no ISB between: each write counts),
 * mrs CONTEXTIDR_EL1 (a read does not count) = 4.  CID_WRITE_RETIRED 2. */
REGION(r_cid);
__asm__(R_BEGIN(r_cid) "mrs x1, contextidr_el1\n" R_ON
        "msr contextidr_el1, x1\n msr contextidr_el1, x1\n mrs x2, contextidr_el1\n" R_OFF R_END);

/* ttbr: msr, msr TTBR0_EL1, msr TTBR1_EL1 (values unchanged), mrs TTBR0_EL1, msr TCR_EL1
 * (not a TTBR) = 5.  TTBR_WRITE_RETIRED 2. */
REGION(r_ttbr);
__asm__(R_BEGIN(r_ttbr) "mrs x1, ttbr0_el1\n mrs x2, ttbr1_el1\n mrs x3, tcr_el1\n" R_ON
        "msr ttbr0_el1, x1\n msr ttbr1_el1, x2\n mrs x4, ttbr0_el1\n msr tcr_el1, x3\n" R_OFF "isb\n" R_END);

/* el0_cid: an EL0 write of CONTEXTIDR_EL1 (and of TTBR0_EL1) is UNDEFINED: it does not retire
 * and does not count.  EL1: msr, eret, [EL0: msr CONTEXTIDR (UNDEF)] br x16 (lower-EL sync
 * entry) = 3; EXC_TAKEN 1, EXC_RETURN 1, PC_WRITE 2, BR 1, CID_WRITE 0, TTBR_WRITE 0. */
REGION(r_el0_cid);
__asm__(R_BEGIN(r_el0_cid) TO_EL0_SETUP VEC(ev_vec_b) "mov x1, #5\n" R_ON
        "eret\n"
        "2: msr contextidr_el1, x1\n"
        "3:" R_OFF VEC_RESTORE R_END);

/* nop8 for the PMCR_EL0.D check: msr + 8 nops = 9 */
REGION(r_nop8);
__asm__(R_BEGIN(r_nop8) R_ON ".rept 8\n nop\n .endr\n" R_OFF R_END);

/* ---- SW_INCR ------------------------------------------------------------------------------- */
/* Counters: 0-3 SW_INCR, 4 INST_RETIRED, 5 SW_INCR with P = 1 (EL1 excluded), 6 SW_INCR
 * but not enabled.  Before counting starts a PMSWINC write of bit 0 is ignored (PMCR.E = 0).
 * Region: msr, msr PMSWINC = 0x75 (bits 0, 2, 4, 5, 6), msr PMSWINC = 0x1 = 3 instructions.
 * Expected: c0 2, c1 0, c2 1, c3 0, c4 3 (bit 4 ignored: not SW_INCR), c5 1 (vpmu follows
 * KVM: SW_INCR ignores P/U), c6 0 (disabled). */
REGION(r_swinc);
__asm__(R_BEGIN(r_swinc) "mov x1, #1\n msr pmswinc_el0, x1\n mov x2, #0x75\n" R_ON
        "msr pmswinc_el0, x2\n msr pmswinc_el0, x1\n" R_OFF R_END);

static const struct ev SWINC_SET[] = {
    {0x00, "c0"}, {0x00, "c1"}, {0x00, "c2"}, {0x00, "c3"}, {0x08, "c4"}, {0x00, "c5"}, {0x00, "c6"},
};

static void measure_swinc(void)
{
    ev_program(SWINC_SET, 7, 0, 0);
    pmu_write_type(5, EV_SW_INCR | PMEVTYPER_P);
    write_sysreg(pmcntenclr_el0, 1UL << 6);
    ev_clear();
    r_swinc(EV_PMCR);
    isb();
    ev_print("swinc");
}

/* ---- CHAIN and PMU_OVFS ------------------------------------------------------------------ */
/* Counters (presets in brackets):
 *   c0 INST_RETIRED [0xFFFFFFF0] -> c1 CHAIN [5]
 *   c2 SW_INCR [0xFFFFFFFF]      -> c3 CHAIN [0xFFFFFFFF] (wraps when chained)
 *   c4 PMU_OVFS [0]
 *   c6 INST_RETIRED with P = 1 [0xFFFFFFFF] (counts nothing at EL1) -> c7 CHAIN [0]
 *   c8 INST_RETIRED [0xFFFFFFF0] -> c9 CHAIN [0], c9 not enabled
 *   c10 INST_RETIRED [0xFFFFFFF0] -> c11 CHAIN with P = 1 [0] (vpmu/KVM: CHAIN ignores P/U)
 *   c30 INST_RETIRED [0xFFFFFFF0] (its odd neighbour would be 31: PMCCNTR never chains)
 *   PMCCNTR [2^64 - 8] (LC = 1: overflows at 64 bits)
 * Region: msr, 19 nops, msr PMSWINC bit 2 = 21 instructions (and 21 cycles).
 * 32-bit overflow (PMUv3p4 and older, or LP = 0): c0 wraps (0xFFFFFFF0 + 21), c1 6; c2 wraps,
 * c3 wraps; c8, c10, c30 wrap; c11 1; PMCCNTR wraps.  PMOVSSET = c0 c2 c3 c8 c10 c30 c31;
 * PMU_OVFS = 7.  With PMUv3p5 and PMCR.LP = 1 the event counters overflow at 64 bits: no
 * CHAIN, and only PMCCNTR overflows: PMU_OVFS 1. */
REGION(r_chain);
__asm__(R_BEGIN(r_chain) "mov x1, #4\n" R_ON ".rept 19\n nop\n .endr\n msr pmswinc_el0, x1\n" R_OFF R_END);

static const struct ev CHAIN_SET[] = {
    {0x08, "c0"}, {0x1E, "c1"}, {0x00, "c2"}, {0x1E, "c3"}, {0x400D, "c4"}, {0x08, "c5"},
    {0x08, "c6"}, {0x1E, "c7"}, {0x08, "c8"}, {0x1E, "c9"}, {0x08, "c10"}, {0x1E, "c11"},
};

static void measure_chain(const char *name, u64 pmcr)
{
    ev_program(CHAIN_SET, 12, 0, 0);
    pmu_write_type(6, EV_INST_RETIRED | PMEVTYPER_P);
    pmu_write_type(11, EV_CHAIN | PMEVTYPER_P);
    pmu_write_type(30, EV_INST_RETIRED);
    write_sysreg(pmcntenclr_el0, 1UL << 9);
    write_sysreg(pmcntenset_el0, 1UL << 30);
    ev_clear();
    pmu_write_counter(0, 0xFFFFFFF0UL);
    pmu_write_counter(1, 5);
    pmu_write_counter(2, 0xFFFFFFFFUL);
    pmu_write_counter(3, 0xFFFFFFFFUL);
    pmu_write_counter(6, 0xFFFFFFFFUL);
    pmu_write_counter(8, 0xFFFFFFF0UL);
    pmu_write_counter(10, 0xFFFFFFF0UL);
    pmu_write_counter(30, 0xFFFFFFF0UL);
    write_sysreg(pmccntr_el0, (u64)-8L);
    isb();
    r_chain(pmcr);
    isb();
    ev_print(name);
    ev_kv(name, "c30", pmu_read_counter(30));
    ev_kv(name, "PMOVSSET", read_sysreg(pmovsset_el0));
    ev_flush();
}

/* ---- events per PMU version ------------------------------------------------------------------ */
/* ver: a region with a load, a store, a taken branch, an unaligned load and a mispredicted
 * loop exit, measured with the events that appear in later versions and with events vpmu
 * never implements.  msr, ldr, str, ldr (+1), b, 4 x (subs, b.ne) = 13 instructions.
 * (tests/test_events.py runs it with --cycles branch=1,load=2 so that stalls exist.) */
u64 ev_vbuf[8] ALIGNED(64);
REGION(r_ver);
__asm__(R_BEGIN(r_ver) "ldr x1, =ev_vbuf\n mov x3, #4\n" R_ON
        "ldr x2, [x1]\n str x2, [x1, #8]\n ldr x2, [x1, #17]\n b 1f\n"
        "1: subs x3, x3, #1\n b.ne 1b\n" R_OFF R_END);

static const struct ev VER_SET[] = {
    {0x08, "INST_RETIRED"}, {0x23, "STALL_FRONTEND"}, {0x24, "STALL_BACKEND"}, {0x3A, "OP_RETIRED"},
    {0x3B, "OP_SPEC"}, {0x3C, "STALL"}, {0x4004, "CNT_CYCLES"}, {0x4006, "L1I_CACHE_LMISS"},
    {0x400D, "PMU_OVFS"},
    /* never implemented */
    {0x02, "L1I_TLB_REFILL"}, {0x05, "L1D_TLB_REFILL"}, {0x16, "L2D_CACHE"}, {0x19, "BUS_ACCESS"},
    {0x1D, "BUS_CYCLES"}, {0x25, "L1D_TLB"}, {0x39, "L1D_CACHE_LMISS_RD"}, {0x3D, "STALL_SLOT_BACKEND"},
    {0x3E, "STALL_SLOT_FRONTEND"}, {0x3F, "STALL_SLOT"}, {0x4005, "STALL_BACKEND_MEM"},
    {0x400F, "PMU_HOVFS"}, {0x4020, "LDST_ALIGN_LAT"}, {0x4024, "MEM_ACCESS_CHECKED"},
    {0x3FF, "EV_3FF"},
};
#define VER_N (sizeof(VER_SET) / sizeof(VER_SET[0]))

int main(void)
{
    kv_u64("pmuver", pmuver());
    kv_hex("pmceid0", read_sysreg(pmceid0_el0));
    kv_hex("pmceid1", read_sysreg(pmceid1_el0));

    ev_program(EV_STD, EV_NSTD, 0, 0);
    ev_measure("cid", r_cid, 2);
    ev_measure("ttbr", r_ttbr, 2);
    ev_measure("el0_cid", r_el0_cid, 2);
    ev_measure_pmcr("pmcr_d", r_nop8, 2, EV_PMCR | (1u << 3));     /* PMCR.D: see the test */

    measure_swinc();
    measure_chain("chain", EV_PMCR);
    measure_chain("chain_lp", EV_PMCR | PMCR_LP);

    ev_program(VER_SET, VER_N, 0, 0);
    for (u64 i = 0; i < ev_used; i++)          /* evtCount as read back (10 bits on PMUv3) */
        ev_kv("ver.type", VER_SET[i].name, pmu_read_type(i));
    ev_measure("ver", r_ver, 2);
    return report();
}
