"""Arm semihosting (HLT #0xF000 from EL1): console output, exit, command line, heap, clocks.

The subset a bare-metal C runtime uses, with QEMU's answers: output to the console
(handle 1 stdout, 2 stderr), ``:tt`` as the only file, no input, time from the cycle model
(deterministic: SYS_TIME is 0), and exit with ADP_Stopped_ApplicationExit's status.  A
parameter block the guest cannot give us (an untranslatable pointer) answers -1.
"""
from __future__ import annotations

import struct
from typing import Optional

from unicorn import arm64_const as R

from ..pmu import layout as L
from . import memmap as MM
from .env import GuestExit, GuestFault

NONE64 = L.NONE64
SEMI_EXIT_APP = 0x20026                  # ADP_Stopped_ApplicationExit


class Semihosting:
    def __init__(self, cfg, uc, mem, timers, image, out, err):
        self.cfg, self.uc, self.mem, self.timers, self.image = cfg, uc, mem, timers, image
        self.out, self.err = out, err

    def call(self, pc: int) -> None:
        uc = self.uc
        op = uc.reg_read(R.UC_ARM64_REG_X0) & 0xFFFFFFFF
        arg = uc.reg_read(R.UC_ARM64_REG_X1)
        ret = self._semi_op(op, arg)
        if ret is not None:
            uc.reg_write(R.UC_ARM64_REG_X0, ret & NONE64)
        uc.reg_write(R.UC_ARM64_REG_PC, pc + 4)

    def _semi_op(self, op: int, arg: int) -> Optional[int]:
        try:
            if op == 0x03:                                  # SYS_WRITEC
                self.out(self.mem.read_virt(arg, 1))
                return None
            if op == 0x04:                                  # SYS_WRITE0
                self.out(self.mem.read_cstr(arg))
                return None
            if op == 0x05:                                  # SYS_WRITE {handle, buf, len}
                h, buf, n = struct.unpack("<QQQ", self.mem.read_virt(arg, 24))
                if h not in (1, 2):
                    return n
                data = self.mem.read_virt(buf, n)
                (self.out if h == 1 else self.err)(data)
                return 0
            if op in (0x18, 0x20):                          # SYS_EXIT / SYS_EXIT_EXTENDED
                reason, sub = struct.unpack("<QQ", self.mem.read_virt(arg, 16))
                status = (sub & 0xFF) if reason == SEMI_EXIT_APP else 1
                raise GuestExit(status, "exit")
            if op == 0x01:                                  # SYS_OPEN: only ":tt"
                name_p, mode, _ln = struct.unpack("<QQQ", self.mem.read_virt(arg, 24))
                name = self.mem.read_cstr(name_p)
                if name == b":tt":                          # r: stdin, w: stdout, a: stderr
                    return 0 if mode < 4 else 1 if mode < 8 else 2 if mode < 12 else -1
                return -1
            if op == 0x02:                                  # SYS_CLOSE
                return 0
            if op == 0x09:                                  # SYS_ISTTY
                return 1
            if op == 0x07:                                  # SYS_READC: no input
                return -1
            if op == 0x10:                                  # SYS_CLOCK: centiseconds of guest time
                return self.timers.now_ns() // 10_000_000
            if op == 0x11:                                  # SYS_TIME: deterministic epoch 0
                return 0
            if op == 0x13:                                  # SYS_ERRNO
                return 0
            if op == 0x15:                                  # SYS_GET_CMDLINE {buf, len}
                buf, n = struct.unpack("<QQ", self.mem.read_virt(arg, 16))
                s = (self.cfg.append or "").encode()[: max(n - 1, 0)] + b"\0"
                self.mem.write_virt(buf, s)
                self.mem.write_virt(arg + 8, struct.pack("<Q", len(s) - 1))
                return 0
            if op == 0x16:                                  # SYS_HEAPINFO
                block, = struct.unpack("<Q", self.mem.read_virt(arg, 8))
                top = self.mem.ram_base + self.mem.ram_size
                self.mem.write_virt(block, struct.pack("<QQQQ", self.image.end, top - 0x10000, top, top - 0x10000))
                return 0
            if op == 0x30:                                  # SYS_ELAPSED {lo, hi}: ticks
                t = self.timers.now_cycles()
                self.mem.write_virt(arg, struct.pack("<Q", t))
                return 0
            if op == 0x31:                                  # SYS_TICKFREQ
                return MM.CPU_HZ
        except GuestFault:
            return -1
        return -1
