"""The machine: the composition root of the board, and the run loop.

It creates the Unicorn engine (cortex-a57, AArch64 EL1 without EL3), the PMU model's arena
and its native hooks, and the board's devices, each in its own module: guest memory
(``memory.py``), the PL011 (``pl011.py``), the PL031 RTC (``pl031.py``), the GICv3
(``gic.py``), the virtio-mmio console when configured (``virtio_console.py``,
``chardev.py``), the generic and one-shot timers with WFI (``timers.py``), the PMU seen from
Python (``pmu_device.py``), the block cache (``codecache.py``), self-hosted debug
(``debug.py``: watchpoints, software step, the OS lock), the exception model
(``exceptions.py``), semihosting (``semihosting.py``) and PSCI/SMCCC/PV time (``smccc.py``).
It wires them to one another and to Unicorn's hooks, loads the image, the initrd and the
device tree, and attaches a hypervisor frontend (Xen) if the configuration asks for one; the
frontend is built by a factory the caller passes, against :class:`~vpmu.board.env.GuestEnv`,
which the machine implements by delegating to its devices.

Native hooks (``vpmu.pmu.hooks``) do the counting and classify code; Python runs only on
rare events: exceptions and interrupts, device accesses, service calls, hypercalls, WFI.
Every Python callback runs under the one
:class:`~vpmu.board.guard.CallbackGuard`: an exception raised in it is recorded, emulation
is stopped and the run loop re-raises it after ``emu_start`` returns.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Callable, Optional

import numpy as np
import unicorn
from unicorn import arm64_const as R
from unicorn import unicorn_const as UC

from .. import errors, native
from ..config import XEN_EVTCHN_PPI, MachineConfig
from ..hostfile import read_regular
from ..pmu import layout as L
from ..pmu import regs
from ..trace import SCHEMA_VERSION, TraceWriter
from .. import arch as X
from . import fdtedit
from . import memmap as MM
from .chardev import open_backend
from .codecache import CodeCache
from .debug import DebugUnit
from .env import Frontend, GuestExit, InterruptedContext, PmuRegs
from .exceptions import ExceptionModel
from .gic import INTID_MASK, Gic
from .guard import CallbackGuard
from .loader import Image
from .memory import GuestMemory
from .pl011 import Pl011
from .pl031 import ALARM as RTC_ALARM
from .pl031 import Pl031
from .pmu_device import PmuDevice
from .semihosting import Semihosting
from .smccc import Smccc
from .timers import Timers
from .virtio_console import CONSOLE_TRANSPORT, TRANSMITQ, VirtioMmio

UNTIL = 0xFFFF_FFFF_FFFF_FFFC           # never executed; the run loop stops by other means
NONE64 = L.NONE64
DTB_MAGIC = b"\xd0\x0d\xfe\xed"
# Xen hypercall registers: the number in x16, the arguments in x0..x4, the result in x0
XEN_HC_NR = R.UC_ARM64_REG_X16
XEN_HC_ARGS = (R.UC_ARM64_REG_X0, R.UC_ARM64_REG_X1, R.UC_ARM64_REG_X2, R.UC_ARM64_REG_X3, R.UC_ARM64_REG_X4)
XEN_UPCALL_EOI = ("ICC_EOIR1_EL1", "ICC_DIR_EL1")   # the writes that end the upcall PPI's handling


class Machine:
    def __init__(self, cfg: MachineConfig, image: Image, out: Callable[[bytes], None] | None = None,
                 err: Callable[[bytes], None] | None = None, trace: TraceWriter | None = None,
                 xen_factory: Optional[Callable[["Machine"], Frontend]] = None):
        """``trace`` receives the trace records (default: only the configuration's ``--trace``
        file; ``vpmu.api.run_config`` passes one that also keeps them in memory, and without
        either nothing builds them); ``xen_factory(machine)`` builds the hypervisor frontend
        when ``cfg.xen`` is set."""
        self.cfg = cfg
        self.image = image
        # the guest's console output (UART, semihosting, Xen console): every byte goes through
        # _emit, which stops the run once it passes cfg.max_output (a guest can write many GiB
        # in one call when its MMU maps one page many times)
        sink_out = out or (lambda b: (sys.stdout.buffer.write(b), sys.stdout.buffer.flush()))
        sink_err = err or (lambda b: (sys.stderr.buffer.write(b), sys.stderr.buffer.flush()))
        self.output_left = cfg.max_output
        self.out: Callable[[bytes], None] = lambda b: self._emit(sink_out, b)
        self.err: Callable[[bytes], None] = lambda b: self._emit(sink_err, b)
        self.trace = trace or TraceWriter(cfg.trace_path, keep=False, limit=cfg.trace_limit)
        self.exit_status: Optional[int] = None
        self.exit_reason = ""
        self.xen: Optional[Frontend] = None   # the hypervisor frontend, if any
        self._hc_pc: Optional[int] = None     # PC of the hypercall being answered (its trace record)
        self.ram_base = MM.RAM_BASE
        self.ram_size = cfg.memory

        # ---- engine ------------------------------------------------------------------------------
        uc = self.uc = native.new_arm64()
        self.guard = CallbackGuard(uc)
        uc.ctl_set_cpu_model(R.UC_CPU_ARM64_A57)
        # Unicorn's cortex-a57 has EL3 with SCR_EL3.RW = 0: QEMU then treats EL1 as AArch32
        # (short-descriptor translation, AArch32 fault codes) once the MMU is on.  QEMU's virt
        # board has no EL3 at all; RW = 1 gives the same AArch64 EL1.
        uc.cpr_write(*X.SCR_EL3, X.SCR_RW)
        uc.mem_map(self.ram_base, self.ram_size)
        self.mem = GuestMemory(uc, self.ram_base, self.ram_size)
        if cfg.xen:                     # the /hypervisor grant-table region of the device tree
            from ..dtb import XEN_GNTTAB_BASE, XEN_GNTTAB_SIZE
            self.mem.map_ram(XEN_GNTTAB_BASE, XEN_GNTTAB_SIZE)

        # ---- arena ---------------------------------------------------------------------------------
        A = self.A = np.zeros(L.ARENA_WORDS, dtype=np.uint64)
        self._arena_addr = A.ctypes.data
        native.register_machine(self._arena_addr, self)
        from ..pmu.entry import Native
        self.N = Native(A)                    # Python -> native calls (one cached cfunc)
        self.pmu = PmuDevice(cfg, uc, A, self.N, self.trace)
        self.trace.set_earlier(self.pmu.drain_ring)       # records the native hooks queued come first
        self.pmu.configure(self.ram_base, self.ram_size)

        # ---- devices -------------------------------------------------------------------------------
        self.uart = Pl011(self.out)
        self.gic = Gic(on_change=self._gic_changed)
        self.timers = Timers(cfg, A, self.gic, self.trace, on_expiry=self._frontend_timer)
        rtc_base = cfg.rtc_base if cfg.rtc_base is not None else int(time.time())
        self.rtc = Pl031(rtc_base, self.timers.now_ns,
                         set_level=lambda level: self.gic.set_level(32 + MM.RTC_SPI, level),
                         set_alarm=lambda deadline, fire: self.timers.set_timer(RTC_ALARM, deadline, fire))
        uc.mmio_map(MM.UART0_BASE, MM.UART0_SIZE, *self._mmio(self.uart.read, self.uart.write))
        # the RTC reads guest time and may interrupt: the deferred counts first, as for the GIC
        uc.mmio_map(MM.RTC_BASE, MM.RTC_SIZE, *self._mmio(self.rtc.read, self.rtc.write, self.N.flush))
        # the GIC may trace or interrupt: the deferred counts are brought up to date first
        uc.mmio_map(MM.GICD_BASE, MM.GICD_SIZE, *self._mmio(self.gic.dist_read, self.gic.dist_write, self.N.flush))
        uc.mmio_map(MM.GICR_BASE, MM.GICR_SIZE, *self._mmio(self.gic.redist_read, self.gic.redist_write, self.N.flush))
        self.virtio: Optional[VirtioMmio] = None
        if cfg.virtio_console is not None:     # QEMU's -device virtio-serial-device -device virtconsole
            backend = open_backend(cfg.virtio_console, self.out,
                                   on_note=lambda text: self._virtio_note(CONSOLE_TRANSPORT, TRANSMITQ, text))
            self.virtio = VirtioMmio(self.mem, self.gic, backend, note=self._virtio_note)
            # the console may trace, interrupt or end the run: the deferred counts are brought up to date first
            uc.mmio_map(self.virtio.base, self.virtio.size,
                        *self._mmio(self.virtio.read, self.virtio.write, self.N.flush))

        # ---- hooks: native counting path, Python for the rare events -------------------------------
        from ..pmu import hooks as H
        self.code = CodeCache(cfg, uc, A, self.N, self.mem, H, self._arena_addr)
        self._hooks = [
            native.hook_add(uc, UC.UC_HOOK_BLOCK, H.block_hook.address, self._arena_addr),
            native.hook_add(uc, UC.UC_HOOK_INSN, H.mrs_hook.address, self._arena_addr, insn=R.UC_ARM64_INS_MRS),
            native.hook_add(uc, UC.UC_HOOK_INSN, H.msr_hook.address, self._arena_addr, insn=R.UC_ARM64_INS_MSR),
            native.hook_add(uc, UC.UC_HOOK_INSN, H.sys_hook.address, self._arena_addr, insn=R.UC_ARM64_INS_SYS),
            native.hook_add(uc, UC.UC_HOOK_EDGE_GENERATED, H.edge_hook.address, self._arena_addr),
        ]
        self.debug = DebugUnit(uc, A, self.N, self.mem, self.guard, self.code, H, self._arena_addr)
        self.semihosting = Semihosting(cfg, uc, self.mem, self.timers, image, self.out, self.err)
        self.smccc = Smccc(cfg, uc, A, self.mem, self.timers, self.trace)
        self.timers.add_sleeper(self.smccc)
        self.exc = ExceptionModel(uc, A, self.N, self.gic, self.mem, self.trace, self.guard, sync=self._sync,
                                  smc=lambda pc: self.smccc.call(pc, "smc"),
                                  hvc={X.HVC_SMCCC: lambda pc: self.smccc.call(pc, "hvc")},
                                  semihosting=self.semihosting.call if cfg.semihosting else None,
                                  debug=self.debug)
        self._hooks.append(native.hook_add(uc, UC.UC_HOOK_INTR, H.intr_hook.address, self._arena_addr))
        # Accesses to nothing: bounded to the addresses around RAM.  Unicorn keeps every store to
        # an address any memory hook covers on its slow path (notdirty_write: a flat-view
        # lookup and a translated-code check per store), so RAM must be outside these hooks.
        ram_end = self.ram_base + self.ram_size
        uc.hook_add(UC.UC_HOOK_MEM_UNMAPPED, self.exc.on_unmapped, begin=0, end=self.ram_base - 1)
        uc.hook_add(UC.UC_HOOK_MEM_UNMAPPED, self.exc.on_unmapped, begin=ram_end, end=(1 << 64) - 1)
        # what the native hooks ask of Python (vpmu_pycall): kind -> handler, returning the answer
        self._pycalls: dict[int, Callable[[], Optional[int]]] = {
            L.PC_SYSREG: self._python_sysreg,
            L.PC_IRQ: lambda: self.exc.take_irq(int(A[L.PY_ARG])),
            L.PC_IRQ_LEVEL: lambda: self._pmu_irq_level(bool(A[L.IRQ_LEVEL])),
            L.PC_RING_FULL: lambda: None,                 # the ring is drained before every call
            L.PC_TIMER: self.timers.on_event,
            L.PC_SAMPLE: self.pmu.sample,
            L.PC_INTR: lambda: self.exc.on_intr(self.uc, int(A[L.PY_ARG]), None),
            L.PC_WATCH: self.debug.on_access,
        }

        # ---- image, device tree, frontend ----------------------------------------------------------
        image.load(self)
        if cfg.initrd_path is not None:
            image.load_initrd(self, cfg.initrd_path)
        blob, mem_size = self._device_tree()
        self.entry = image.place_dtb(self, blob, mem_size)
        if cfg.xen:
            if xen_factory is None:
                raise errors.VpmuError("MachineConfig.xen needs a frontend factory (vpmu.api.run_config passes one)")
            self.xen = xen_factory(self)
            self.timers.add_sleeper(self.xen)
            self.exc.hvc[X.HVC_XEN] = self._hypercall

    def _device_tree(self) -> tuple[bytes, int]:
        """The generated tree (in QEMU's 1 MiB buffer), or --dtb FILE with QEMU's edits
        (``fdtedit``: /memory, /chosen bootargs and initrd, /psci; 2 x (size + 10000) bytes in
        memory as QEMU allocates it); returns the blob and its size in guest memory."""
        from .. import dtb as D
        try:
            spec = D.BoardSpec.from_config(self.cfg)
            if self.image.initrd is not None:
                spec = dataclasses.replace(spec, initrd=self.image.initrd)
        except ValueError as e:
            raise errors.VpmuError(f"device tree: {e}", errors.EXIT_USAGE) from None
        if not self.cfg.dtb_path:
            blob = D.build_dtb(spec, total_size=D.QEMU_DTB_TOTAL_SIZE)
            return blob, len(blob)
        path = self.cfg.dtb_path
        user = read_regular(path, "the device tree", self.ram_size, "of RAM (--memory) it must fit in",
                            errors.ImageError)
        if user[:4] != DTB_MAGIC:
            raise errors.ImageError(f"{path}: not a device tree blob")
        psci = fdtedit.parse(D.build_dtb(spec)).root.child("psci")
        assert psci is not None                 # the generated tree always has one
        try:
            blob = fdtedit.qemu_edits(user, ram_base=self.ram_base, ram_size=self.ram_size,
                                      bootargs=spec.bootargs, initrd=spec.initrd, psci=psci,
                                      rng_seed=lambda n: D.boot_seed_bytes(spec.seed, "rng-seed", n))
        except fdtedit.FdtError as e:
            raise errors.ImageError(f"{path}: {e}") from None
        return blob, len(blob)

    def _emit(self, sink: Callable[[bytes], object], data: bytes) -> None:
        """Guest output to ``sink``, within the run's output budget (``--max-output``)."""
        left = self.output_left
        if len(data) <= left:
            self.output_left = left - len(data)
            sink(data)
            return
        if left:
            sink(data[:left])
        self.output_left = 0
        raise errors.GuestStop(f"output limit reached ({self.cfg.max_output} bytes of guest output, --max-output) "
                               f"at PC {self.uc.reg_read(R.UC_ARM64_REG_PC):#x}", errors.EXIT_INSN_LIMIT)

    def _mmio(self, read, write, before=None):
        """mmio_map's (read_cb, read_ud, write_cb, write_ud) for a device, under the guard."""
        on_read, on_write = self.guard.mmio(read, write, before)
        return on_read, None, on_write, None

    def _virtio_note(self, transport: int, queue: int, note: str) -> None:
        """A virtio request the device did not carry out (docs/trace.md, ``virtio``)."""
        self.trace.add({"type": "virtio", "icount": int(self.A[L.ICOUNT]), "transport": transport,
                        "queue": queue, "note": note})

    def _gic_changed(self, deliverable: Optional[int]) -> None:
        self.A[L.IRQ_CAND] = 0 if deliverable is None else 1

    # ================================================================ GuestEnv, by delegation
    # memory
    def is_ram(self, pa: int, size: int = 1) -> bool:
        return self.mem.is_ram(pa, size)

    def read_phys(self, pa: int, size: int) -> bytes:
        return self.mem.read_phys(pa, size)

    def write_phys(self, pa: int, data: bytes) -> None:
        self.mem.write_phys(pa, data)

    def read_virt(self, va: int, size: int, prot: int = UC.UC_PROT_READ) -> bytes:
        return self.mem.read_virt(va, size, prot)

    def write_virt(self, va: int, data: bytes) -> None:
        self.mem.write_virt(va, data)

    def read_cstr(self, va: int, limit: int = 1 << 16) -> bytes:
        return self.mem.read_cstr(va, limit)

    def mmu_on(self) -> bool:
        return self.mem.mmu_on()

    # interrupts and time
    def set_ppi_level(self, intid: int, level: bool) -> None:
        self.gic.set_level(intid, level)

    def now_cycles(self) -> int:
        return self.timers.now_cycles()

    def now_ns(self) -> int:
        return self.timers.now_ns()

    def set_timer(self, name: str, deadline_ns: Optional[int]) -> None:
        """A frontend's one-shot timer; on expiry the frontend's on_timer(name)."""
        self.timers.set_timer(name, deadline_ns)

    # the PMU model
    def pmu_state(self) -> dict:
        """The architectural PMU registers as a plain dict (RunResult.pmu, the exit record)."""
        return self.pmu.state()

    def stats(self) -> dict:
        return self.pmu.stats()

    def observed(self) -> list[int]:
        """vpmu stat's observer counters (config.Observers), in order."""
        return self.pmu.observed()

    def pmu_snapshot(self) -> PmuRegs:
        return self.pmu.snapshot()

    def pmu_load(self, r: PmuRegs) -> None:
        self.pmu.load(r)

    def pmu_set_frozen(self, frozen: bool) -> None:
        self.pmu.set_frozen(frozen)

    # CPU state
    def pstate(self) -> int:
        return self.exc.pstate()

    def current_el(self) -> int:
        return self.exc.current_el()

    def interrupted_context(self, pc: int) -> InterruptedContext:
        return self.exc.interrupted_context(pc)

    # ============================================================= calls from the native hooks
    def _sync(self) -> None:
        """Before Python acts on an event: the deferred counts, then the trace records the
        native hooks queued."""
        self.N.flush()
        self.pmu.drain_ring()

    def _pycall(self, kind: int) -> int:
        """vpmu_pycall (``vpmu.native``): the native hooks need Python for event ``kind``."""
        try:
            self._sync()
            handler = self._pycalls.get(kind)
            return (handler() or 0) if handler is not None else 0
        except BaseException as e:
            self.guard.fail(e)
            return -1

    def _python_sysreg(self) -> None:
        """A trapped system-register access the kernels leave to Python: the GIC CPU
        interface, the debug registers (``debug.py``), and writes of the timer registers
        (``timers.py``); anything else reads 0."""
        A = self.A
        key, is_read, val = int(A[L.PY_ARG]), bool(A[L.PY_ARG + 1]), int(A[L.PY_ARG + 2])
        h = regs.HANDLER.get(key, 0)
        name = regs.name(key)
        if h == regs.H_ICC:
            if is_read:
                A[L.PY_ARG + 4] = self.gic.sysreg_read(name)
            else:
                if (self.xen is not None and name in XEN_UPCALL_EOI
                        and (val & INTID_MASK) == XEN_EVTCHN_PPI):
                    self.xen.sync_upcall_line()     # the upcall line follows evtchn_upcall_pending
                self.gic.sysreg_write(name, val)
            return
        if h == regs.H_DEBUG:
            if is_read:
                A[L.PY_ARG + 4] = self.debug.read(name)
            else:
                self.debug.write(name, val)
            return
        if not is_read and self.timers.write_sysreg(h, val):
            return
        A[L.PY_ARG + 4] = 0

    def _pmu_irq_level(self, level: bool) -> None:
        """The PMU interrupt condition changed: a frontend may take the rising edge (Xen
        self-sampling), else it drives the PMU's PPI."""
        irq = self.cfg.pmu.irq
        if level and self.xen is not None:
            ctx = self.interrupted_context(int(self.uc.reg_read(R.UC_ARM64_REG_PC)))
            if self.xen.on_pmu_overflow(ctx):
                return
        self.gic.set_level(irq, level)

    # =================================================================== the hypervisor frontend
    def _hypercall(self, pc: int) -> None:
        """HVC #0xEA1 at pc (EL1): the frontend answers; a blocked vCPU waits like WFI."""
        uc, xen = self.uc, self.xen
        assert xen is not None                  # the handler is installed with the frontend
        nr = uc.reg_read(XEN_HC_NR)
        args = [uc.reg_read(r) for r in XEN_HC_ARGS]
        self._hc_pc = pc
        res = xen.hypercall(nr, args)
        uc.reg_write(R.UC_ARM64_REG_X0, res & NONE64)
        uc.reg_write(R.UC_ARM64_REG_PC, pc + X.INSN_SIZE)
        self._xen_after_call()
        if xen.blocked:
            self.timers.wait_for_interrupt(pc, "SCHEDOP_block/poll", lambda: not xen.blocked)

    def _frontend_timer(self, name: str) -> None:
        """A frontend's one-shot timer expired."""
        if self.xen is not None:
            self.xen.on_timer(name)
            self._xen_after_call()

    def _xen_after_call(self) -> None:
        """What a hypercall or Xen timer asks of the vCPU: shut down, unmask IRQs (SCHEDOP_block)."""
        xen = self.xen
        assert xen is not None
        if xen.shutdown is not None:
            code, reason = xen.shutdown
            raise GuestExit(code, reason)
        if getattr(xen, "unmask_irqs_on_return", False):
            self.uc.reg_write(R.UC_ARM64_REG_PSTATE, self.pstate() & ~X.PSTATE_I)
            self.uc.cpr_write(*X.SPSR_EL1, self.uc.cpr_read(*X.SPSR_EL1))   # rebuild hflags
            xen.unmask_irqs_on_return = False

    # ================================================================================ run loop
    def run(self) -> int:
        uc, A = self.uc, self.A
        self.trace.add({"type": "run", "icount": 0, "version": SCHEMA_VERSION, "image": self.image.name,
                        "pmu_version": self.cfg.pmu.version, "counters": self.cfg.pmu.counters,
                        "pmu_irq": self.cfg.pmu.irq, "filters": self.cfg.pmu.filter_bitmap is not None,
                        "xen": self.cfg.xen})
        pc = self.entry
        try:
            while True:
                if int(A[L.MEMHOOK_WANT]) != int(A[L.MEMHOOK_ON]):
                    self.code.update_memhook()
                if self.debug.pending:
                    self.debug.apply()
                A[L.STOP_REASON] = L.SR_NONE
                self.exc.fault = None
                try:
                    uc.emu_start(pc, UNTIL)
                    self.N.flush()
                except unicorn.UcError as e:
                    self.N.flush()
                    if self.guard.error is None and e.errno == UC.UC_ERR_FETCH_PROT:
                        # executing from a device (MMIO): a synchronous external abort on fetch
                        self.exc.fault = (UC.UC_MEM_FETCH_UNMAPPED, uc.reg_read(R.UC_ARM64_REG_PC), X.INSN_SIZE)
                    if self.guard.error is None and self.exc.fault is not None:
                        self.exc.deliver_unmapped(uc.reg_read(R.UC_ARM64_REG_PC))
                        pc = uc.reg_read(R.UC_ARM64_REG_PC)
                        continue
                    if self.guard.error is None:
                        raise errors.VpmuError(f"emulation failed at PC {uc.reg_read(R.UC_ARM64_REG_PC):#x}: {e}")
                self.guard.raise_pending()
                self.pmu.drain_ring()
                pc = uc.reg_read(R.UC_ARM64_REG_PC)
                reason = int(A[L.STOP_REASON])
                if reason == L.SR_HOOKS:
                    self.code.install_sites()
                elif reason == L.SR_UNCLASSIFIABLE:
                    raise errors.VpmuError(f"the code cache cannot classify the block at {pc:#x}: more than "
                                           f"{L.NCLS} distinct instruction classes")
                elif reason == L.SR_PRECISE_ON:
                    self.code.precise(int(A[L.STOP_ARG]), True)
                elif reason == L.SR_PRECISE_OFF:
                    self.code.precise(int(A[L.STOP_ARG]), False)
                elif reason == L.SR_DEBUG:
                    self.debug.pending = True       # re-place the watchpoint hooks (loop top)
                elif reason == L.SR_LIMIT:
                    raise errors.GuestStop(f"instruction limit reached ({int(A[L.INSN_LIMIT])} instructions) "
                                           f"at PC {pc:#x}", errors.EXIT_INSN_LIMIT)
                elif reason == L.SR_NONE:
                    if pc == UNTIL:
                        raise errors.VpmuError(f"the guest branched to {UNTIL:#x}")
                    self._after_halt(pc)
        except GuestExit as ge:
            self._finish(ge.status, ge.reason)
            return ge.status
        except errors.VpmuError as ve:
            self.pmu.drain_ring()
            self.trace.add({"type": "error", "icount": int(A[L.ICOUNT]), "reason": str(ve),
                            "pc": uc.reg_read(R.UC_ARM64_REG_PC), "status": ve.status})
            self.trace.close()
            raise

    def _finish(self, status: int, reason: str) -> None:
        self.pmu.drain_ring()
        self.exit_status, self.exit_reason = status, reason
        self.trace.add({"type": "exit", "icount": int(self.A[L.ICOUNT]), "status": status, "reason": reason,
                        "cycles": int(self.A[L.CYCLES]), "pmu": self.pmu_state()})
        self.trace.close()

    def _after_halt(self, pc: int) -> None:
        """emu_start returned without a stop request: the CPU executed WFI (or WFE)."""
        wfi_pc = pc - X.INSN_SIZE
        # the word through the guest's translation; unknown (None) counts as a hint, as WFE
        word = self.mem.insn_word(wfi_pc)
        if word != X.WFI:
            return                                   # WFE / YIELD: a hint, keep going
        self.N.finish_block(pc)
        self.timers.wait_for_interrupt(wfi_pc, "WFI")

    def close(self) -> None:
        native.unregister_machine(self._arena_addr)
