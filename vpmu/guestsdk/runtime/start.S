// Entry for bare-metal guests: EL1h, MMU off, DAIF masked (QEMU virt -kernel, and vpmu).
    .section .text.start, "ax"
    .global _start
_start:
    mov     x19, x0                     // x0..x4 at entry (Linux boot protocol: x0 = device tree),
    mov     x20, x1                     // kept until .bss is cleared
    mov     x21, x2
    mov     x22, x3
    mov     x23, x4
    ldr     x1, =__stack_top
    mov     sp, x1
    mov     x1, #(3 << 20)              // CPACR_EL1.FPEN: no FP/SIMD traps
    msr     cpacr_el1, x1
    ldr     x1, =vectors
    msr     vbar_el1, x1
    isb
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  ldr     x1, =boot_dtb
    str     x19, [x1]
    ldr     x1, =boot_regs
    stp     x19, x20, [x1]
    stp     x21, x22, [x1, #16]
    str     x23, [x1, #32]
    bl      main
    bl      exit                        // exit(main()) via semihosting
3:  b       3b
