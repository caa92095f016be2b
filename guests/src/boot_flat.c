// vpmu-build: flat
/* boot_dt.c as a raw flat binary (loaded at RAM + 0x80000, entered with x0 = device tree). */
#include "boot_dt.c"
