/* The demo: a small real workload (insertion sort of 256 pseudo-random keys, then a binary
 * search for each key) measured with six event counters and the cycle counter, printed
 * as a table.  `python3 dev.py demo` runs it with `vpmu run --summary`. */
#include "vpmu.h"

#define N 256
static u32 keys[N];

static u32 rng_state = 12345;
static u32 rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static NOINLINE void sort(u32 *a, int n)
{
    for (int i = 1; i < n; i++) {
        u32 v = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static NOINLINE int search(const u32 *a, int n, u32 v)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (a[mid] == v) return mid;
        if (a[mid] < v) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

static const struct { u32 ev; const char *name; } events[6] = {
    { EV_INST_RETIRED, "INST_RETIRED" }, { EV_BR_RETIRED, "BR_RETIRED" },
    { EV_BR_MIS_PRED, "BR_MIS_PRED" },   { EV_LD_RETIRED, "LD_RETIRED" },
    { EV_ST_RETIRED, "ST_RETIRED" },     { EV_MEM_ACCESS, "MEM_ACCESS" },
};

int main(void)
{
    printf("vpmu demo: PMUv3 version field %lu, %lu event counters\n", pmuver(), pmu_n());
    for (int i = 0; i < N; i++)
        keys[i] = rng() % 100000;
    pmu_reset();
    for (int i = 0; i < 6; i++)
        pmu_write_type(i, events[i].ev);
    write_sysreg(pmcntenset_el0, 0x8000003fUL);
    pmcr_write(PMCR_LC | PMCR_E);
    sort(keys, N);
    int found = 0;
    for (int i = 0; i < N; i++)
        found += search(keys, N, keys[i]) >= 0;
    pmcr_write(PMCR_LC);
    printf("sorted %d keys, found %d of them again\n\n", N, found);
    printf("  %-14s %12s\n", "event", "count");
    for (int i = 0; i < 6; i++)
        printf("  %-14s %12lu\n", events[i].name, pmu_read_counter(i));
    printf("  %-14s %12lu\n", "CPU_CYCLES", read_sysreg(pmccntr_el0));
    return found == N ? 0 : 1;
}
