// The 64-byte header of a Linux arm64 Image (Documentation/arch/arm64/booting.rst), linked
// first (.text.head) into guests built as Images (vpmu guest build --image, or a source whose
// first line is "// vpmu-build: image").  text_offset 0 with a non-zero image_size: QEMU and
// vpmu load the Image at RAM + 2 MiB, where link.ld.in places it, and enter it at its first
// word with x0 = the device tree.
    .section .text.head, "ax"
    .global _head
_head:
    b       _start                      // code0
    .long   0                           // code1
    .quad   0                           // text_offset
    .quad   __image_size                // image_size
    .quad   0xa                         // flags: little-endian, 4K pages, placement anywhere
    .quad   0, 0, 0                     // res2..res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5
