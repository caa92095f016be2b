/* vpmu_perf: perf_event_open(2) counts and samples of a loop of known length, from a static
 * aarch64 Linux program (the initramfs of tests/test_linux.py and tools/linux_boot.py).
 *
 * The measured loop is vloop() below, written in assembly so its length does not depend on
 * the compiler: mov x1, #0 ; N x (add ; subs ; b.ne) ; mov x0, x1 ; ret.  vloop(N) retires
 * 3N + 3 instructions and N + 1 branches (N - 1 taken b.ne, one not taken, the ret).
 *
 *   vpmu_perf count [N]   each event opened on its own (user space only), enabled around
 *                         vloop(1) and vloop(N + 1) with prctl(PR_TASK_PERF_EVENTS_ENABLE /
 *                         _DISABLE); the difference is N extra iterations: 3N instructions and
 *                         cycles, N branches retired (BR_RETIRED), N taken branches
 *                         (PC_WRITE_RETIRED, which perf's "branch-instructions" maps to).
 *   vpmu_perf sample [P] [N]  INSTRUCTIONS with sample_period P (PERF_SAMPLE_IP) and an mmap
 *                         ring, enabled around vloop(N) with PERF_EVENT_IOC_ENABLE / _DISABLE:
 *                         prints the event's count, the number of samples and every sample's IP
 *                         as an offset from the loop's first instruction.
 * Output lines start with "vpmu_perf:" and are key=value pairs (tests parse them). */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t vloop(uint64_t n);
extern char vloop_start[], vloop_end[];
__asm__(".text\n"
        ".global vloop, vloop_start, vloop_end\n"
        ".type vloop, %function\n"
        "vloop:\n"
        "  mov x1, #0\n"
        "vloop_start:\n"
        "  add x1, x1, #1\n"
        "  subs x0, x0, #1\n"
        "  b.ne vloop_start\n"
        "vloop_end:\n"
        "  mov x0, x1\n"
        "  ret\n"
        ".size vloop, . - vloop\n");

struct ev { const char *name; uint32_t type; uint64_t config; int fd; };

static struct ev evs[] = {
    {"INSTRUCTIONS",        PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, -1},
    {"CPU_CYCLES",          PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, -1},
    {"BRANCH_INSTRUCTIONS", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_INSTRUCTIONS, -1},
    {"raw_0x08",            PERF_TYPE_RAW,      0x08, -1},
    {"raw_0x0c",            PERF_TYPE_RAW,      0x0C, -1},
    {"raw_0x11",            PERF_TYPE_RAW,      0x11, -1},
    {"raw_0x21",            PERF_TYPE_RAW,      0x21, -1},
};
#define NEV (sizeof evs / sizeof evs[0])

static long perf_event_open(struct perf_event_attr *a, pid_t pid, int cpu, int group, unsigned long flags)
{
    return syscall(SYS_perf_event_open, a, pid, cpu, group, flags);
}

static void attr_init(struct perf_event_attr *a, uint32_t type, uint64_t config)
{
    memset(a, 0, sizeof *a);
    a->size = sizeof *a;
    a->type = type;
    a->config = config;
    a->disabled = 1;
    a->exclude_kernel = 1;
    a->exclude_hv = 1;
}

static void measure(uint64_t n, uint64_t *v)
{
    for (unsigned i = 0; i < NEV; i++)
        if (evs[i].fd >= 0)
            ioctl(evs[i].fd, PERF_EVENT_IOC_RESET, 0);
    prctl(PR_TASK_PERF_EVENTS_ENABLE, 0, 0, 0, 0);
    vloop(n);
    prctl(PR_TASK_PERF_EVENTS_DISABLE, 0, 0, 0, 0);
    for (unsigned i = 0; i < NEV; i++) {
        v[i] = 0;
        if (evs[i].fd >= 0 && read(evs[i].fd, &v[i], sizeof v[i]) != sizeof v[i])
            v[i] = ~0ULL;
    }
}

static int count(uint64_t iters)
{
    for (unsigned i = 0; i < NEV; i++) {
        struct perf_event_attr a;
        attr_init(&a, evs[i].type, evs[i].config);
        evs[i].fd = (int)perf_event_open(&a, 0, -1, -1, 0);
        if (evs[i].fd < 0)
            printf("vpmu_perf: open event=%s errno=%d (%s)\n", evs[i].name, errno, strerror(errno));
    }
    uint64_t v0[NEV], v1[NEV];
    measure(1, v0);
    measure(iters + 1, v1);
    for (unsigned i = 0; i < NEV; i++)
        if (evs[i].fd >= 0)
            printf("vpmu_perf: count event=%s iters=%llu base=%llu total=%llu diff=%llu\n", evs[i].name,
                   (unsigned long long)iters, (unsigned long long)v0[i], (unsigned long long)v1[i],
                   (unsigned long long)(v1[i] - v0[i]));
    return 0;
}

#define DATA_PAGES 16

static int sample(uint64_t period, uint64_t iters)
{
    struct perf_event_attr a;
    attr_init(&a, PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS);
    a.sample_period = period;
    a.sample_type = PERF_SAMPLE_IP;
    int fd = (int)perf_event_open(&a, 0, -1, -1, 0);
    if (fd < 0) {
        printf("vpmu_perf: sample open errno=%d (%s)\n", errno, strerror(errno));
        return 1;
    }
    long page = sysconf(_SC_PAGESIZE);
    size_t len = (size_t)page * (1 + DATA_PAGES);
    struct perf_event_mmap_page *meta = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (meta == MAP_FAILED) {
        printf("vpmu_perf: sample mmap errno=%d (%s)\n", errno, strerror(errno));
        return 1;
    }
    ioctl(fd, PERF_EVENT_IOC_RESET, 0);
    ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    vloop(iters);
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
    uint64_t total = 0;
    if (read(fd, &total, sizeof total) != sizeof total)
        total = ~0ULL;

    uint64_t head = meta->data_head;
    __sync_synchronize();                            /* data_head before the records */
    const unsigned char *data = (const unsigned char *)meta + meta->data_offset;
    uint64_t size = meta->data_size, n = 0, inside = 0, other = 0, lost = 0;
    uint64_t lo = (uint64_t)vloop_start, hi = (uint64_t)vloop_end;
    char line[160];
    int at = 0;
    for (uint64_t off = meta->data_tail; off < head;) {
        struct perf_event_header h;
        unsigned char rec[64];
        for (unsigned i = 0; i < sizeof h; i++)
            ((unsigned char *)&h)[i] = data[(off + i) % size];
        for (unsigned i = 0; i < h.size && i < sizeof rec; i++)
            rec[i] = data[(off + i) % size];
        if (h.size == 0)
            break;
        if (h.type == PERF_RECORD_SAMPLE) {
            uint64_t ip;
            memcpy(&ip, rec + sizeof h, sizeof ip);
            if (ip >= lo && ip < hi)
                inside++;
            at += snprintf(line + at, sizeof line - at, " %lld", (long long)(ip - lo));
            if (at > 100) {
                printf("vpmu_perf: sample ips%s\n", line);
                at = 0;
            }
            n++;
        } else if (h.type == PERF_RECORD_LOST) {
            lost++;
        } else {
            other++;
        }
        off += h.size;
    }
    if (at)
        printf("vpmu_perf: sample ips%s\n", line);
    printf("vpmu_perf: sample period=%llu iters=%llu count=%llu samples=%llu in_loop=%llu lost=%llu other=%llu "
           "loop_insns=%llu\n", (unsigned long long)period, (unsigned long long)iters, (unsigned long long)total,
           (unsigned long long)n, (unsigned long long)inside, (unsigned long long)lost, (unsigned long long)other,
           (unsigned long long)((hi - lo) / 4));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "count") == 0)
        return count(argc > 2 ? strtoull(argv[2], 0, 0) : 1000000);
    if (argc > 1 && strcmp(argv[1], "sample") == 0)
        return sample(argc > 2 ? strtoull(argv[2], 0, 0) : 100000, argc > 3 ? strtoull(argv[3], 0, 0) : 1000000);
    printf("usage: vpmu_perf count [N] | sample [PERIOD] [N]\n");
    return 2;
}
