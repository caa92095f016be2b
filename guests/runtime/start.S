// Entry for bare-metal guests: EL1h, MMU off, DAIF masked (QEMU virt -kernel, and vpmu).
    .section .text.start, "ax"
    .global _start
_start:
    ldr     x1, =__stack_top
    mov     sp, x1
    mov     x19, x0                     // device tree address (Linux boot protocol), or 0
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
    bl      main
    bl      exit                        // exit(main()) via semihosting
3:  b       3b
