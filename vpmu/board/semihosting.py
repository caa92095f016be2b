"""Arm semihosting (HLT #0xF000 from EL1): console output, exit, command line, heap, clocks.

The subset a bare-metal C runtime uses, with QEMU's answers: output to the console
(handle 1 stdout, 2 stderr), ``:tt`` as the only file, no input, time from the cycle model
(deterministic: SYS_TIME is 0), and exit with ADP_Stopped_ApplicationExit's status.  The
operation is in w0, the parameter (block) address in x1, the result goes to x0; an
operation not listed, or a parameter block the guest cannot give us (an untranslatable
pointer), answers -1.
"""
from __future__ import annotations

import struct
from typing import Callable, Optional

from unicorn import arm64_const as R

from ..pmu import layout as L
from .. import arch as X
from . import memmap as MM
from .env import GuestExit, GuestFault

NONE64 = L.NONE64

# operation numbers (Arm "Semihosting for AArch32 and AArch64", 2.0)
SYS_OPEN, SYS_CLOSE, SYS_WRITEC, SYS_WRITE0, SYS_WRITE = 0x01, 0x02, 0x03, 0x04, 0x05
SYS_READC, SYS_ISTTY, SYS_CLOCK, SYS_TIME, SYS_ERRNO = 0x07, 0x09, 0x10, 0x11, 0x13
SYS_GET_CMDLINE, SYS_HEAPINFO, SYS_EXIT, SYS_EXIT_EXTENDED = 0x15, 0x16, 0x18, 0x20
SYS_ELAPSED, SYS_TICKFREQ = 0x30, 0x31
ADP_STOPPED_APPLICATION_EXIT = 0x20026
STDOUT, STDERR = 1, 2
STACK_SIZE = 0x10000                      # SYS_HEAPINFO: the stack is the top 64 KiB of RAM


class Semihosting:
    def __init__(self, cfg, uc, mem, timers, image, out, err):
        self.cfg, self.uc, self.mem, self.timers, self.image = cfg, uc, mem, timers, image
        self.out, self.err = out, err
        # operation -> handler(x1) -> the value for x0 (None: x0 unchanged)
        self._ops: dict[int, Callable[[int], Optional[int]]] = {
            SYS_OPEN: self._open, SYS_CLOSE: lambda _arg: 0, SYS_WRITEC: self._writec,
            SYS_WRITE0: self._write0, SYS_WRITE: self._write, SYS_READC: lambda _arg: -1,
            SYS_ISTTY: lambda _arg: 1, SYS_CLOCK: self._clock, SYS_TIME: lambda _arg: 0,
            SYS_ERRNO: lambda _arg: 0, SYS_GET_CMDLINE: self._get_cmdline, SYS_HEAPINFO: self._heapinfo,
            SYS_EXIT: self._exit, SYS_EXIT_EXTENDED: self._exit, SYS_ELAPSED: self._elapsed,
            SYS_TICKFREQ: lambda _arg: MM.CPU_HZ,
        }

    def call(self, pc: int) -> None:
        """The HLT #0xF000 at pc: perform the operation, return to the next instruction."""
        uc = self.uc
        op = uc.reg_read(R.UC_ARM64_REG_X0) & 0xFFFFFFFF
        arg = uc.reg_read(R.UC_ARM64_REG_X1)
        ret = self._op(op, arg)
        if ret is not None:
            uc.reg_write(R.UC_ARM64_REG_X0, ret & NONE64)
        uc.reg_write(R.UC_ARM64_REG_PC, pc + X.INSN_SIZE)

    def _op(self, op: int, arg: int) -> Optional[int]:
        handler = self._ops.get(op)
        if handler is None:
            return -1
        try:
            return handler(arg)
        except GuestFault:
            return -1

    # ---- output ---------------------------------------------------------------------------------
    def _writec(self, arg: int) -> None:
        self.out(self.mem.read_virt(arg, 1))

    def _write0(self, arg: int) -> None:
        self.out(self.mem.read_cstr(arg))

    def _write(self, arg: int) -> int:
        """{handle, buf, len}: 0, or the number of bytes not written (all, on another handle)."""
        h, buf, n = struct.unpack("<QQQ", self.mem.read_virt(arg, 24))
        if h not in (STDOUT, STDERR):
            return n
        data = self.mem.read_virt(buf, n)
        (self.out if h == STDOUT else self.err)(data)
        return 0

    def _open(self, arg: int) -> int:
        """{name, mode, length}: only ":tt" opens (r: stdin, w: stdout, a: stderr)."""
        name_p, mode, _ln = struct.unpack("<QQQ", self.mem.read_virt(arg, 24))
        name = self.mem.read_cstr(name_p)
        if name == b":tt":
            return 0 if mode < 4 else 1 if mode < 8 else 2 if mode < 12 else -1
        return -1

    # ---- the run --------------------------------------------------------------------------------
    def _exit(self, arg: int) -> None:
        """{reason, subcode} (SYS_EXIT and SYS_EXIT_EXTENDED on AArch64): ApplicationExit
        gives the subcode's low byte as the status, any other reason status 1."""
        reason, sub = struct.unpack("<QQ", self.mem.read_virt(arg, 16))
        status = (sub & 0xFF) if reason == ADP_STOPPED_APPLICATION_EXIT else 1
        raise GuestExit(status, "exit")

    def _get_cmdline(self, arg: int) -> int:
        """{buf, len}: --append, truncated to fit with its NUL; len becomes its length."""
        buf, n = struct.unpack("<QQ", self.mem.read_virt(arg, 16))
        s = (self.cfg.append or "").encode()[: max(n - 1, 0)] + b"\0"
        self.mem.write_virt(buf, s)
        self.mem.write_virt(arg + 8, struct.pack("<Q", len(s) - 1))
        return 0

    def _heapinfo(self, arg: int) -> int:
        """The heap from the end of the image to the stack, the stack at the top of RAM."""
        block, = struct.unpack("<Q", self.mem.read_virt(arg, 8))
        top = self.mem.ram_base + self.mem.ram_size
        self.mem.write_virt(block, struct.pack("<QQQQ", self.image.end, top - STACK_SIZE, top, top - STACK_SIZE))
        return 0

    # ---- time -----------------------------------------------------------------------------------
    def _clock(self, _arg: int) -> int:
        """Centiseconds of guest time."""
        return self.timers.now_ns() // 10_000_000

    def _elapsed(self, arg: int) -> int:
        """{lo, hi}: ticks (cycles) of guest time; SYS_TICKFREQ gives their rate."""
        self.mem.write_virt(arg, struct.pack("<Q", self.timers.now_cycles()))
        return 0
