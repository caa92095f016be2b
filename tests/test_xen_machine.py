"""The frontend inside the real board: a flat AArch64 binary making Xen hypercalls."""
from __future__ import annotations

import struct

from vpmu import trace as T
from vpmu.api import run_config
from vpmu.config import MachineConfig
from vpmu.dtb import XEN_VERSION

HVC_XEN = 0xD401D422                  # HVC #0xEA1


def movz(rd: int, imm: int) -> int:
    return 0xD2800000 | (imm << 5) | rd


def adr(rd: int, off: int) -> int:
    return 0x10000000 | ((off & 3) << 29) | (((off >> 2) & 0x7FFFF) << 5) | rd


def test_guest_console_version_and_shutdown(tmp_path):
    words = [movz(16, 18), movz(0, 0), movz(1, 3), adr(2, 0x40 - 0x0C), HVC_XEN,   # console_io
             movz(16, 17), movz(0, 0), HVC_XEN,                                      # xen_version
             movz(16, 29), movz(0, 2), adr(1, 0x48 - 0x28), HVC_XEN,                 # shutdown
             0xD503207F]                                                             # (wfi)
    code = b"".join(struct.pack("<I", w) for w in words).ljust(0x40, b"\0")
    code += b"ok\n".ljust(8, b"\0") + struct.pack("<I", 0)                          # poweroff
    path = tmp_path / "xen.bin"
    path.write_bytes(code)
    r = run_config(str(path), MachineConfig(xen=True, max_insns=1000))
    assert (r.exit_status, r.reason, r.output, r.error) == (0, "system_off", "ok\n", None)
    for rec in r.trace:
        T.validate(rec)
    hc = [x for x in r.trace if x["type"] == "hypercall"]
    assert [(x["name"], x["op_name"], x["result"]) for x in hc] == [
        ("console_io", "write", 0),
        ("xen_version", "version", XEN_VERSION[0] << 16 | XEN_VERSION[1]),   # as /hypervisor says
        ("sched_op", "shutdown", 0)]
    assert hc[2]["detail"] == {"shutdown": 0}
