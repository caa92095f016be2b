/* PL011 UART0 at 0x0900_0000: every printable byte, tab, CR/LF and the flag register.
 * Bytes are written straight to UARTDR (no runtime putc), one 32-bit store each.
 * The identification registers are printed too: vpmu and QEMU 7.2 differ there
 * (docs/qemu-compat.md). */
#include "board_common.h"

#define UART0 0x09000000UL
#define DR (*(volatile u32 *)(UART0 + 0x00))
#define FR (*(volatile u32 *)(UART0 + 0x18))

static void raw(const char *s) { while (*s) DR = (u8)*s++; }

int main(void)
{
    u32 fr = FR;
    raw("uart: raw bytes\n");
    for (u32 c = 0x20; c < 0x7f; c++)
        DR = c;
    DR = '\n';
    raw("tab:\tcr-lf:\r\n");
    DR = 0x100 | 'Z';                  /* only bits [7:0] are data */
    DR = '\n';
    kv_hex("uartfr", fr);
    kv_u64("uartfr_txff", (fr >> 5) & 1);
    kv_u64("uartfr_txfe", (fr >> 7) & 1);
    kv_u64("uartfr_busy", (fr >> 3) & 1);
    puts("periph_id=");
    for (int i = 0; i < 8; i++)
        printf("%02x", *(volatile u32 *)(UART0 + 0xfe0 + 4 * i) & 0xff);
    putc('\n');
    return 0;
}
