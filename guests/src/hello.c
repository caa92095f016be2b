/* The smallest guest: UART output and a semihosting exit status. */
#include "vpmu.h"

int main(void)
{
    puts("hello from a vpmu guest\n");
    kv_u64("el", current_el());
    kv_hex("answer", 42);
    return 0;
}
