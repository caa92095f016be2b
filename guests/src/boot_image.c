// vpmu-build: image
/* boot_dt.c as a Linux arm64 Image: the runtime's 64-byte header (image_head.S: text_offset 0,
 * image_size set, so it loads at RAM + 2 MiB) followed by the usual start-up code; entered with
 * x0 = device tree. */
#include "boot_dt.c"
