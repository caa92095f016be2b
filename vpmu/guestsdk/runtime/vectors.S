// Exception vectors: every entry saves x0-x30, SP_EL0, ELR, SPSR, ESR and FAR into a frame
// (struct exc_frame in vpmu.h), calls exc_dispatch(frame, vector_index) and restores the
// frame (a handler may change elr/spsr/x*) before ERET.
    .macro ventry idx
    .balign 0x80
    sub     sp, sp, #(36 * 8)
    stp     x0, x1, [sp, #0]
    mov     x0, #\idx
    b       vcommon
    .endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global vectors
vectors:
    ventry 0
    ventry 1
    ventry 2
    ventry 3
    ventry 4
    ventry 5
    ventry 6
    ventry 7
    ventry 8
    ventry 9
    ventry 10
    ventry 11
    ventry 12
    ventry 13
    ventry 14
    ventry 15

vcommon:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, sp_el0
    stp     x30, x2, [sp, #240]
    mrs     x2, elr_el1
    mrs     x3, spsr_el1
    stp     x2, x3, [sp, #256]
    mrs     x2, esr_el1
    mrs     x3, far_el1
    stp     x2, x3, [sp, #272]
    mov     x1, x0                      // vector index
    mov     x0, sp                      // frame
    bl      exc_dispatch
    ldp     x2, x3, [sp, #256]
    msr     elr_el1, x2
    msr     spsr_el1, x3
    ldp     x30, x2, [sp, #240]
    msr     sp_el0, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #(36 * 8)
    eret

// el0_call(fn, arg, sp_el0): run fn(arg) at EL0 (EL0t); it returns through SVC #0xFFFF,
// which exc_dispatch turns into a return from el0_call with fn's result.
    .text
    .global el0_call
el0_call:
    sub     sp, sp, #(14 * 8)
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    mov     x3, sp
    ldr     x4, =el0_saved_sp
    str     x3, [x4]
    mrs     x3, daif
    str     x3, [x4, #8]
    msr     sp_el0, x2
    msr     elr_el1, x0
    mov     x0, x1
    ldr     x30, =el0_return_trampoline
    mov     x1, #0                      // SPSR: EL0t, interrupts unmasked
    msr     spsr_el1, x1
    eret

    .global el0_return_trampoline
el0_return_trampoline:
    svc     #0xffff

// Called by exc_dispatch (at EL1, on the exception stack) to finish el0_call with value x0.
    .global el0_call_return
el0_call_return:
    ldr     x4, =el0_saved_sp
    ldr     x3, [x4]
    mov     sp, x3
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #(14 * 8)
    ldr     x3, [x4, #8]
    msr     daif, x3                    // the caller's interrupt masks
    ret

    .bss
    .balign 8
el0_saved_sp:
    .quad 0, 0
