// vpmu-build: image
/* boot_dt.c as a Linux arm64 Image: the 64-byte header (text_offset 0, image_size set, so it
 * loads at RAM + 2 MiB) followed by the usual start-up code; entered with x0 = device tree. */
__asm__(".section .text.head, \"ax\"\n"
        ".global _head\n"
        "_head:\n"
        "  b _start\n"                 /* code0 */
        "  .long 0\n"                  /* code1 */
        "  .quad 0\n"                  /* text_offset */
        "  .quad __image_size\n"       /* image_size */
        "  .quad 0xa\n"                /* flags: little-endian, 4K pages, placement anywhere */
        "  .quad 0, 0, 0\n"            /* res2..res4 */
        "  .ascii \"ARM\\x64\"\n"      /* magic */
        "  .long 0\n"                  /* res5 */
        ".text\n");
#include "boot_dt.c"
