"""PL011 UART (the virt board's UART0): transmit only, as a console.

What a guest's early console needs: a data register that prints, a flag register that is
never busy and never has input, the control register's reset value and the PrimeCell
identification registers QEMU's pl011 reports.  Everything else reads 0 and ignores writes.
"""
from __future__ import annotations

from typing import Callable

UARTDR, UARTFR, UARTCR = 0x000, 0x018, 0x030
UARTPERIPHID0, UART_ID_END = 0xFE0, 0x1000
FR_TXFE_RXFE = 0x90               # UARTFR: TXFE | RXFE (never busy, nothing to read)
CR_RESET = 0x300                  # UARTCR: TXE | RXE (QEMU's reset value; UARTEN is clear)
# UARTPeriphID0..3, UARTPCellID0..3 as QEMU's pl011
ID_BYTES = (0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1)


class Pl011:
    def __init__(self, out: Callable[[bytes], object]):
        self.out = out

    def read(self, off: int, size: int) -> int:
        if off == UARTFR:
            return FR_TXFE_RXFE
        if off == UARTCR:
            return CR_RESET
        if UARTPERIPHID0 <= off < UART_ID_END:
            return ID_BYTES[(off - UARTPERIPHID0) // 4]
        return 0

    def write(self, off: int, size: int, value: int) -> None:
        if off == UARTDR:
            self.out(bytes([value & 0xFF]))
