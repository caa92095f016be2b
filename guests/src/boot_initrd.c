// vpmu-build: image
/* A Linux-style boot with an initial RAM disk (vpmu run --initrd / QEMU -initrd): finds
 * /chosen/linux,initrd-start and -end in the device tree x0 points at, and prints them, the
 * tree's address and an FNV-1a hash of the initrd's bytes.  Runs unchanged on QEMU's virt.  Built
 * as an Image (the runtime's header, image_head.S: text_offset 0, loaded at RAM + 2 MiB). */
#include "vpmu.h"

#define FDT_BEGIN_NODE 1
#define FDT_PROP 3

/* the offset of the root's child node called `name` (depth 1), or -1 */
static int fdt_root_child(u64 dtb, const char *name)
{
    const u8 *s = (const u8 *)(dtb + be32((u8 *)dtb + 8));
    int off = 0, depth = 0;
    for (;;) {
        u32 tok = be32(s + off);
        if (tok == 9) return -1;                            /* FDT_END */
        if (tok == FDT_BEGIN_NODE) {
            const char *n = (const char *)s + off + 4;
            if (depth == 1 && strcmp(n, name) == 0) return off;
            depth++;
            off += 4;
            while (s[off]) off++;
            off = (off + 4) & ~3;
        } else if (tok == FDT_PROP) {
            off += 12 + ((be32(s + off + 4) + 3) & ~3u);
        } else {
            if (tok == 2) depth--;                          /* FDT_END_NODE */
            off += 4;
        }
    }
}

static u64 cells(const u8 *p, u32 len)
{
    return len == 8 ? be64(p) : len == 4 ? be32(p) : ~0UL;
}

int main(void)
{
    u64 dtb = boot_regs[0];
    kv_hex("dtb", dtb);
    int chosen = fdt_valid(dtb) ? fdt_root_child(dtb, "chosen") : -1;
    u32 ls = 0, le = 0;
    const u8 *ps = chosen >= 0 ? fdt_getprop(dtb, chosen, "linux,initrd-start", &ls) : 0;
    const u8 *pe = chosen >= 0 ? fdt_getprop(dtb, chosen, "linux,initrd-end", &le) : 0;
    if (!ps || !pe) {
        kv_str("initrd", "none");
        return 0;
    }
    u64 start = cells(ps, ls), end = cells(pe, le);
    kv_u64("cells", ls / 4);
    kv_hex("initrd_start", start);
    kv_hex("initrd_end", end);
    u64 h = 0xcbf29ce484222325UL;                           /* FNV-1a, 64-bit */
    for (const u8 *p = (const u8 *)start; p < (const u8 *)end; p++)
        h = (h ^ *p) * 0x100000001b3UL;
    kv_hex("fnv", h);
    return 0;
}
