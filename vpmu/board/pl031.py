"""PL031 real-time clock (QEMU virt's RTC at 0x0901_0000, SPI 2 = INTID 34).

The register set of QEMU's ``hw/rtc/pl031.c`` (ARM PrimeCell RTC, TRM DDI 0224):

- ``RTCDR`` (0x00, read only): the count, seconds since the epoch, 32 bits, wrapping;
- ``RTCMR`` (0x04): the match value; ``RTCLR`` (0x08): writing loads the count;
- ``RTCCR`` (0x0C): reads 1 (the clock is always started, as QEMU), writes ignored;
- ``RTCIMSC`` (0x10, bit 0), ``RTCRIS`` (0x14), ``RTCMIS`` (0x18), ``RTCICR`` (0x1C, write
  only): the match interrupt, a level on the GIC line while RIS & IMSC;
- 0xFE0..0xFFC: PrimeCell ids (PL031 rev 1: 0x31 0x10 0x14 0x00, cell 0x0D 0xF0 0x05 0xB1).

The count is ``base + guest seconds``, guest time being the board's (the cycle model, which
WFI skips ahead): ``base`` is ``--rtc-base`` (seconds since the epoch), by default the host
clock when the run starts; with ``--rtc-base`` every read is deterministic.

One choice where QEMU differs, the TRM's behaviour: the match interrupt is raised when the
count *becomes* the match value, at that second's boundary (QEMU arms a timer ``now + (MR -
count)`` seconds, not aligned to the count's increments).  A match value equal to the count
when written raises the interrupt at once, as QEMU does; ``RTCLR`` reads back the value last
loaded, as QEMU 7.2 does (guests/src/board_rtc.c prints the same on both).
"""
from __future__ import annotations

from typing import Callable, Optional

RTCDR, RTCMR, RTCLR, RTCCR, RTCIMSC, RTCRIS, RTCMIS, RTCICR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C
RTC_PERIPHID0, RTC_ID_END = 0xFE0, 0x1000
ID_BYTES = (0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
M32 = 0xFFFF_FFFF
NS_PER_S = 1_000_000_000
ALARM = "rtc-alarm"                  # the one-shot timer's name (vpmu.board.timers)


class Pl031:
    def __init__(self, base: int, now_ns: Callable[[], int], set_level: Callable[[bool], None],
                 set_alarm: Callable[[Optional[int], Callable[[str], None]], None]):
        """``base``: the count at guest time 0; ``now_ns()``: guest time; ``set_level``: the
        interrupt line; ``set_alarm(deadline_ns or None, fire)``: a one-shot timer."""
        self.now_ns, self.set_level, self.set_alarm = now_ns, set_level, set_alarm
        self.offset = base & M32            # count = offset + guest seconds (mod 2^32)
        self.mr = self.lr = self.im = self.ris = 0

    def count(self) -> int:
        return (self.offset + self.now_ns() // NS_PER_S) & M32

    def read(self, off: int, size: int) -> int:
        if off == RTCDR:
            return self.count()
        if off == RTCMR:
            return self.mr
        if off == RTCLR:
            return self.lr
        if off == RTCCR:
            return 1
        if off == RTCIMSC:
            return self.im
        if off == RTCRIS:
            return self.ris
        if off == RTCMIS:
            return self.ris & self.im
        if RTC_PERIPHID0 <= off < RTC_ID_END:
            return ID_BYTES[(off - RTC_PERIPHID0) // 4]
        return 0                                   # RTCICR (write only), unassigned offsets

    def write(self, off: int, size: int, value: int) -> None:
        value &= M32
        if off == RTCLR:
            self.lr = value
            self.offset = (self.offset + value - self.count()) & M32
            self._arm()
        elif off == RTCMR:
            self.mr = value
            self._arm()
        elif off == RTCIMSC:
            self.im = value & 1
            self._update()
        elif off == RTCICR:
            self.ris &= ~value & 1
            self._update()

    def _update(self) -> None:
        self.set_level(bool(self.ris & self.im))

    def _arm(self) -> None:
        """The alarm at the next second boundary where the count equals MR."""
        now = self.now_ns()
        ticks = (self.mr - self.count()) & M32
        if ticks == 0:
            self.set_alarm(None, self._fire)
            self._fire(ALARM)
        else:
            self.set_alarm((now // NS_PER_S + ticks) * NS_PER_S, self._fire)

    def _fire(self, _name: str) -> None:
        self.ris = 1
        self._update()
