"""Guest memory read by address always goes through the guest's translation (vpmu/board/memory.py).

``guests/src/board_va_alias.c`` runs code at a virtual address whose number is not RAM as a
physical address (RAM aliased at 8 GiB) and there executes WFI, semihosting (with an alias
pointer), HVC and BRK, then calls through a PXN alias (a permission fault on fetch).  Before
the board read the WFI word physically (Linux's first idle WFI ended in exit 106) and
``insn_word`` checked read permission but read with execute permission (a branch into a
readable PXN page: exit 106).  The memory object itself is then probed with hostile
addresses: every failure is a GuestFault or "unknown" (None), never another exception.
"""
from __future__ import annotations

import struct

import pytest
from unicorn import unicorn_const as UC

from vpmu.board.env import GuestFault

RAM = 0x4000_0000
ALIAS, ALIAS_PXN = 8 << 30, 9 << 30
UART = 0x0900_0000


def test_code_at_an_alias_va(vpmu_run):
    r = vpmu_run("board_va_alias")
    kv = r.kv()
    assert "alias: semihosting from the alias" in r.output
    expected = {"mmu": "1", "ret": "42", "pc_is_alias": "1", "psci_version": "0x10001", "brk_syncs": "1",
                "brk_ec": "0x3c", "brk_elr_is_alias": "1", "wfi_istatus": "1",
                "dev_write0": str((1 << 64) - 1),                # SYS_WRITE0 of a device address: -1
                "irqs": "1", "irq_id": "27",
                "pxn_syncs": "1", "pxn_ec": "0x21", "pxn_ifsc": "0xd", "pxn_elr_ok": "1", "pxn_far_ok": "1"}
    assert {k: kv.get(k) for k in expected} == expected
    assert r.exit_status == 0
    waits = [x for x in r.trace if x["type"] == "wfi"]
    assert len(waits) == 1 and ALIAS <= waits[0]["pc"] < ALIAS + (1 << 30)


@pytest.fixture(scope="module")
def mmu_machine(vpmu_guest_dir):
    """The machine after board_va_alias exited: EL1, MMU on, its page tables in place."""
    from vpmu.board.loader import open_image
    from vpmu.board.machine import Machine
    from vpmu.config import MachineConfig

    m = Machine(MachineConfig(), open_image(str(vpmu_guest_dir / "board_va_alias.elf")),
                out=lambda b: None, err=lambda b: None)
    assert m.run() == 0
    assert m.mmu_on()
    yield m
    m.close()


def test_translation_of_the_aliases(mmu_machine):
    mem = mmu_machine.mem
    pa = RAM + 0x20_0000
    assert mem.translate(ALIAS + 0x20_0000) == pa
    assert mem.translate(ALIAS_PXN + 0x20_0000, UC.UC_PROT_READ) == pa
    assert mem.translate(ALIAS_PXN + 0x20_0000, UC.UC_PROT_EXEC) is None        # PXN
    assert mem.translate(7 << 30) is None                                      # unmapped
    assert mem.read_virt(ALIAS + 0x20_0000, 64) == mem.read_phys(pa, 64)
    word = struct.unpack("<I", mem.read_phys(pa, 4))[0]
    assert mem.insn_word(ALIAS + 0x20_0000) == word
    assert mem.insn_word(ALIAS_PXN + 0x20_0000) is None                        # unknown, no exception
    assert mem.readable(ALIAS_PXN + 0x20_0000)


def test_writes_go_through_the_translation(mmu_machine):
    mem = mmu_machine.mem
    va = ALIAS + (100 << 20) - 2                       # crosses a page boundary
    mem.write_virt(va, b"abcd")
    assert mem.read_phys(RAM + (100 << 20) - 2, 4) == b"abcd"
    assert mem.read_virt(RAM + (100 << 20) - 2, 4) == b"abcd"


@pytest.mark.parametrize("va, size", [(UART, 4), (UART - 2, 4), (7 << 30, 1), (-1, 4), (1 << 64, 4),
                                      ((1 << 64) - 2, 4), (ALIAS, -1), (ALIAS + (1 << 30) - 2, 4),
                                      (RAM + (128 << 20) - 2, 4)])
def test_hostile_addresses_are_guest_faults(mmu_machine, va, size):
    """Devices, unmapped VAs, RAM's end, the top of the address space: a GuestFault (the
    frontend's -EFAULT / -1), and no device is ever read (the UART's registers have side
    effects); the board's own instruction reads answer None."""
    mem = mmu_machine.mem
    with pytest.raises(GuestFault):
        mem.read_virt(va, size)
    if size > 0:
        with pytest.raises(GuestFault):
            mem.write_virt(va, bytes(size))
        assert mem.insn_word(va) is None
        assert not mem.readable(va)
    if va in (UART, 7 << 30, -1, 1 << 64):                     # nothing readable at va itself
        with pytest.raises(GuestFault):
            mem.read_cstr(va)


def test_a_failed_write_writes_nothing(mmu_machine):
    mem = mmu_machine.mem
    end = RAM + (128 << 20)
    before = mem.read_phys(end - 4, 4)
    with pytest.raises(GuestFault):
        mem.write_virt(ALIAS + (128 << 20) - 4, b"12345678")        # the last 4 bytes are past RAM
    assert mem.read_phys(end - 4, 4) == before
