/* A minimal legacy virtio-mmio console driver, the way kvm-unit-tests' chr-testdev uses it
 * (lib/virtio-mmio.c, lib/chr-testdev.c), for vpmu run --virtio-console testdev|stdio and
 * QEMU's -device virtio-serial-device -device virtconsole,chardev=C -chardev testdev,id=C.
 *
 * It finds the console among virt's 32 transports (MagicValue, Version 1, DeviceID 3), sets
 * up the receiveq and transmitq (GuestPageSize 4096, QueueNum 128, QueueAlign 4096,
 * QueuePFN), then, chosen by "mode=" on the semihosting command line:
 *   (none)   sends "3q" in one buffer: the testdev ends the run with status (3 << 1) | 1 = 7
 *   after    sends "3q" and writes "after-notify" to the UART in the same basic block as the
 *            QueueNotify: nothing of it may appear (the testdev acts inside the write)
 *   split    sends "x4" as a two-descriptor chain (x is ignored, 4 waits for its command),
 *            checks the used ring, InterruptStatus and the level-sensitive SPI, acknowledges,
 *            then "2q" in a second notify: status (42 << 1) | 1 = 85
 *   edge     makes the SPI edge-triggered, sends "x": the rising edge stays pending after
 *            InterruptACK until GICD_ICPENDR clears it; then "0q": status 1
 *   bad      an available ring entry naming descriptor 200 (the queue has 128): nothing is
 *            used, the queue is still signalled (QEMU's virtio-serial signals after every
 *            flush), the device ignores the next notify until the driver resets it
 *            (Status = 0), then "5q": status 11
 *   loop     a descriptor chained to itself: the same, then "6q": status 13
 *   stdio    sends "hello virtio console\n" (vpmu run --virtio-console stdio prints it) and
 *            exits through semihosting with 0
 * Any check that fails prints FAIL and the guest exits through semihosting with status 1. */
#include "board_common.h"

#define VIRTIO_MMIO_BASE 0x0a000000UL
#define VIRTIO_MMIO_SIZE 0x200
#define VIRTIO_MMIO_COUNT 32
#define VIRTIO_SPI0 48                         /* INTID of transport 0's SPI */

#define MAGIC 0x000
#define VERSION 0x004
#define DEVICE_ID 0x008
#define VENDOR_ID 0x00c
#define GUEST_PAGE_SIZE 0x028
#define QUEUE_SEL 0x030
#define QUEUE_NUM_MAX 0x034
#define QUEUE_NUM 0x038
#define QUEUE_ALIGN 0x03c
#define QUEUE_PFN 0x040
#define QUEUE_NOTIFY 0x050
#define INTERRUPT_STATUS 0x060
#define INTERRUPT_ACK 0x064
#define STATUS 0x070

#define VIRT_MAGIC 0x74726976
#define VIRTIO_ID_CONSOLE 3
#define QSIZE 128
#define PAGE 4096
#define TXQ 1

#define DESC_F_NEXT 1
#define GICD_ISPENDR 0x0200
#define GICD_ICPENDR 0x0280
#define GICD_ICFGR 0x0c00

struct desc { u64 addr; u32 len; u16 flags; u16 next; };
struct ALIGNED(PAGE) ring {                     /* legacy layout for QueueNum 128, QueueAlign 4096 */
    struct desc desc[QSIZE];                   /* +0x000 */
    u16 avail_flags, avail_idx, avail_ring[QSIZE], used_event;   /* +0x800 */
    u8 pad[PAGE - QSIZE * 16 - (3 + QSIZE) * 2];
    u16 used_flags, used_idx;                  /* +0x1000 */
    struct { u32 id, len; } used_ring[QSIZE];
    u16 avail_event;
};
static struct ring rings[2];                   /* each one page-aligned, two pages */
static char buf[4][64];
static u64 vbase;
static u16 next_desc;

static u32 rd(u64 off) { return *(volatile u32 *)(vbase + off); }
static void wr(u64 off, u32 v) { *(volatile u32 *)(vbase + off) = v; }

static u32 gicd_bit(u64 reg, u32 intid) { return (*(volatile u32 *)(GICD_BASE + reg + intid / 32 * 4) >> (intid % 32)) & 1; }

static void setup(void)
{
    wr(GUEST_PAGE_SIZE, PAGE);
    for (u32 q = 0; q < 2; q++) {
        wr(QUEUE_SEL, q);
        CHECK(rd(QUEUE_NUM_MAX) >= QSIZE);
        CHECK_EQ(rd(QUEUE_PFN), 0);
        memset(&rings[q], 0, sizeof rings[q]);
        wr(QUEUE_NUM, QSIZE);
        wr(QUEUE_ALIGN, PAGE);
        wr(QUEUE_PFN, (u32)((u64)&rings[q] / PAGE));
        CHECK_EQ(rd(QUEUE_PFN), (u64)&rings[q] / PAGE);
    }
    next_desc = 0;
}

/* Queue a chain of n buffers on the transmitq (not yet notified). */
static void queue_chain(int n, const u64 *addr, const u32 *len)
{
    struct ring *r = &rings[TXQ];
    u16 head = next_desc;
    for (int i = 0; i < n; i++) {
        u16 d = next_desc++;
        r->desc[d].addr = addr[i];
        r->desc[d].len = len[i];
        r->desc[d].flags = i + 1 < n ? DESC_F_NEXT : 0;
        r->desc[d].next = i + 1 < n ? next_desc : 0;
    }
    r->avail_ring[r->avail_idx % QSIZE] = head;
    dsb();
    r->avail_idx++;
    dsb();
}

static u32 slen(const char *s) { u32 n = 0; while (s[n]) n++; return n; }

static void send(int slot, const char *s)
{
    char *b = buf[slot];
    u32 n = slen(s);
    memcpy(b, s, n);
    u64 a = (u64)b;
    queue_chain(1, &a, &n);
    wr(QUEUE_NOTIFY, TXQ);
}

static void reset_and_setup(void)
{
    wr(STATUS, 0);
    CHECK_EQ(rd(STATUS), 0);
    CHECK_EQ(rd(INTERRUPT_STATUS), 0);
    setup();
}

int main(void)
{
    u32 idx = 0;
    for (u32 i = 0; i < VIRTIO_MMIO_COUNT && !vbase; i++) {
        u64 b = VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE;
        if (*(volatile u32 *)(b + MAGIC) == VIRT_MAGIC && *(volatile u32 *)(b + DEVICE_ID) == VIRTIO_ID_CONSOLE) {
            vbase = b;
            idx = i;
        }
    }
    if (!vbase) {
        puts("FAIL no virtio console\n");
        return 1;
    }
    kv_hex("console", vbase);
    kv_u64("spi_intid", VIRTIO_SPI0 + idx);
    kv_u64("version", rd(VERSION));
    kv_hex("vendor", rd(VENDOR_ID));
    wr(QUEUE_SEL, 0);
    kv_u64("queue_num_max", rd(QUEUE_NUM_MAX));
    setup();
    if (failures)
        return report();
    u32 intid = VIRTIO_SPI0 + idx;
    struct ring *tx = &rings[TXQ];

    if (board_arg_is("mode", "after")) {
        memcpy(buf[0], "3q", 2);
        u64 a = (u64)buf[0];
        u32 n = 2;
        queue_chain(1, &a, &n);
        volatile u32 *notify = (volatile u32 *)(vbase + QUEUE_NOTIFY);
        volatile u32 *dr = (volatile u32 *)0x09000000UL;
        /* one basic block: the notify, then UART writes with no branch in between */
        __asm__ volatile("str %w[q], [%[notify]]\n"
                         "mov w9, #'a'\n str w9, [%[dr]]\n"
                         "mov w9, #'f'\n str w9, [%[dr]]\n"
                         "mov w9, #'t'\n str w9, [%[dr]]\n"
                         "mov w9, #'e'\n str w9, [%[dr]]\n"
                         "mov w9, #'r'\n str w9, [%[dr]]\n"
                         "mov w9, #'\\n'\n str w9, [%[dr]]\n"
                         :: [q] "r"(TXQ), [notify] "r"(notify), [dr] "r"(dr) : "w9", "memory");
        puts("FAIL still running after the quit command\n");
        return 1;
    }
    if (board_arg_is("mode", "split")) {
        memcpy(buf[0], "x", 1);
        memcpy(buf[1], "4", 1);
        u64 a[2] = { (u64)buf[0], (u64)buf[1] };
        u32 n[2] = { 1, 1 };
        queue_chain(2, a, n);
        wr(QUEUE_NOTIFY, TXQ);
        CHECK_EQ(tx->used_idx, 1);
        CHECK_EQ(tx->used_ring[0].id, 0);
        CHECK_EQ(tx->used_ring[0].len, 0);
        CHECK_EQ(rd(INTERRUPT_STATUS), 1);
        CHECK_EQ(gicd_bit(GICD_ISPENDR, intid), 1);      /* level-sensitive: pending while the line is high */
        wr(INTERRUPT_ACK, 1);
        CHECK_EQ(rd(INTERRUPT_STATUS), 0);
        CHECK_EQ(gicd_bit(GICD_ISPENDR, intid), 0);
        kv_u64("used_idx", tx->used_idx);
        if (failures)
            return report();
        send(2, "2q");
        puts("FAIL still running after 2q\n");
        return 1;
    }
    if (board_arg_is("mode", "edge")) {
        volatile u32 *icfgr = (volatile u32 *)(GICD_BASE + GICD_ICFGR + intid / 16 * 4);
        *icfgr |= 2u << (intid % 16 * 2);
        send(0, "x");
        CHECK_EQ(rd(INTERRUPT_STATUS), 1);
        CHECK_EQ(gicd_bit(GICD_ISPENDR, intid), 1);
        wr(INTERRUPT_ACK, 1);
        CHECK_EQ(gicd_bit(GICD_ISPENDR, intid), 1);      /* edge-triggered: latched */
        *(volatile u32 *)(GICD_BASE + GICD_ICPENDR + intid / 32 * 4) = 1u << (intid % 32);
        CHECK_EQ(gicd_bit(GICD_ISPENDR, intid), 0);
        if (failures)
            return report();
        send(1, "0q");
        return 1;
    }
    if (board_arg_is("mode", "bad") || board_arg_is("mode", "loop")) {
        int loop = board_arg_is("mode", "loop");
        struct desc *d = &tx->desc[next_desc];
        d->addr = (u64)buf[0];
        d->len = 2;
        d->flags = loop ? DESC_F_NEXT : 0;
        d->next = next_desc;                               /* loop: chained to itself */
        memcpy(buf[0], "9q", 2);
        tx->avail_ring[tx->avail_idx % QSIZE] = loop ? next_desc : 200;
        next_desc++;
        dsb();
        tx->avail_idx++;
        dsb();
        wr(QUEUE_NOTIFY, TXQ);
        CHECK_EQ(tx->used_idx, 0);
        CHECK_EQ(rd(INTERRUPT_STATUS), 1);
        wr(INTERRUPT_ACK, 1);
        send(1, "7q");                                     /* ignored until reset */
        CHECK_EQ(rd(INTERRUPT_STATUS), 0);
        puts("broken_device_ignored_notify=1\n");
        reset_and_setup();
        CHECK_EQ(tx->used_idx, 0);
        if (failures)
            return report();
        send(2, loop ? "6q" : "5q");
        return 1;
    }
    if (board_arg_is("mode", "stdio")) {
        send(0, "hello virtio console\n");
        CHECK_EQ(tx->used_idx, 1);
        return report();
    }
    send(0, "3q");
    puts("FAIL still running after 3q\n");
    return 1;
}
