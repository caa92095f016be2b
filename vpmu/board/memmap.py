"""The board's memory map and interrupt numbers (a subset of QEMU's ``-M virt``)."""

RAM_BASE = 0x4000_0000
UART0_BASE, UART0_SIZE = 0x0900_0000, 0x1000
GICD_BASE, GICD_SIZE = 0x0800_0000, 0x1_0000
GICR_BASE, GICR_SIZE = 0x080A_0000, 0x2_0000        # one redistributor: RD frame + SGI frame
UART0_SPI = 1                                        # INTID 33
RTC_BASE, RTC_SIZE = 0x0901_0000, 0x1000             # PL031
RTC_SPI = 2                                          # INTID 34

CPU_MODEL = "cortex-a57"
MIDR = 0x411F_D070
CPU_HZ = 1_000_000_000                               # cycle model clock: 1 cycle = 1 ns
CNTFRQ = 62_500_000                                  # QEMU virt, cortex-a57 (GTIMER_SCALE 16 ns)
TICK_DIV = CPU_HZ // CNTFRQ

NR_SPIS = 256                                        # as virt: INTIDs 32..287
