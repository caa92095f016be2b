"""Byte layouts of the Xen structures the frontend reads and writes (arm64, little endian).

One literal table per struct, rows ``(offset, size, field)``; a field named ``x[n]`` is
an array of ``n`` elements of ``size`` bytes each.  Integers of 1, 2, 4 and 8 bytes are
little-endian unsigned; any other size is raw bytes.  Offsets follow AAPCS64 (checked
against the public headers by the spec's authors, xen-pmu.md sections 1, 3, 4, 5).
Every table is checked at import: rows ascending, no overlap, inside the struct.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_ARRAY = re.compile(r"^(.*)\[(\d+)\]$")

# What the readers accept: a copy from the guest (bytes) or a buffer being filled in.
ByteData = bytes | bytearray


@dataclass(frozen=True)
class Field:
    off: int
    size: int        # element size
    name: str
    count: int       # 1 for a scalar

    @property
    def end(self) -> int:
        return self.off + self.size * self.count

    @property
    def is_int(self) -> bool:
        return self.size in (1, 2, 4, 8)


class Struct:
    """A named byte layout with pack/unpack helpers."""

    def __init__(self, name: str, size: int, rows: tuple[tuple[int, int, str], ...]):
        self.name = name
        self.size = size
        self.fields: dict[str, Field] = {}
        end = 0
        for off, fsize, fname in rows:
            m = _ARRAY.match(fname)
            base, count = (m.group(1), int(m.group(2))) if m else (fname, 1)
            f = Field(off, fsize, base, count)
            if off < end or f.end > size or base in self.fields:
                raise ValueError(f"{name}: bad row {(off, fsize, fname)}")
            end = f.end
            self.fields[base] = f

    def off(self, field: str) -> int:
        return self.fields[field].off

    def unpack(self, data: ByteData) -> dict:
        """All fields of ``data`` (at least ``size`` bytes) as a dict."""
        out = {}
        for f in self.fields.values():
            if f.count == 1:
                out[f.name] = _get(data, f.off, f.size)
            else:
                out[f.name] = [_get(data, f.off + i * f.size, f.size) for i in range(f.count)]
        return out

    def get(self, data: ByteData, field: str):
        f = self.fields[field]
        if f.count == 1:
            return _get(data, f.off, f.size)
        return [_get(data, f.off + i * f.size, f.size) for i in range(f.count)]

    def pack(self, values: dict, base: ByteData | None = None) -> bytes:
        """``base`` (or zeros) with the given fields replaced."""
        buf = bytearray(base[:self.size] if base is not None else bytes(self.size))
        for k, v in values.items():
            self.put(buf, k, v)
        return bytes(buf)

    def put(self, buf: bytearray, field: str, value) -> None:
        f = self.fields[field]
        if f.count == 1:
            _put(buf, f.off, f.size, value)
        else:
            for i in range(f.count):
                _put(buf, f.off + i * f.size, f.size, value[i] if i < len(value) else 0)


def _get(data: ByteData, off: int, size: int):
    raw = bytes(data[off:off + size])
    return int.from_bytes(raw, "little") if size in (1, 2, 4, 8) else raw


def _put(buf: bytearray, off: int, size: int, value) -> None:
    if size in (1, 2, 4, 8):
        buf[off:off + size] = (int(value) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    else:
        raw = bytes(value)[:size]
        buf[off:off + size] = raw + bytes(size - len(raw))


# --- xenpmu_op --------------------------------------------------------------------------------
XEN_PMU_PARAMS = Struct("xen_pmu_params", 24, (
    (0x00, 4, "version.maj"),
    (0x04, 4, "version.min"),
    (0x08, 8, "val"),
    (0x10, 4, "vcpu"),
    (0x14, 4, "pad"),
))

# xen-pmu.md section 5: the Arm PMUv3 analogue of struct xen_pmu_data, 672 bytes.
XEN_PMU_DATA = Struct("xen_pmu_data (arm64 PMUv3)", 0x2A0, (
    (0x000, 4, "vcpu_id"),
    (0x004, 4, "pcpu_id"),
    (0x008, 2, "domain_id"),
    (0x00A, 6, "pad"),
    (0x010, 8, "r.pc"),
    (0x018, 8, "r.sp"),
    (0x020, 8, "r.pstate"),
    (0x028, 4, "r.reserved"),
    (0x02C, 1, "r.el"),
    (0x02D, 35, "r.pad"),
    (0x050, 8, "pmu_flags"),
    (0x058, 4, "l.irq_ctrl"),
    (0x05C, 4, "l.pad"),
    (0x060, 4, "c.counters"),
    (0x064, 4, "c.types"),
    (0x068, 4, "c.nr_counters"),
    (0x06C, 4, "c.pad"),
    (0x070, 8, "c.pmcr"),
    (0x078, 8, "c.pmcntenset"),
    (0x080, 8, "c.pmintenset"),
    (0x088, 8, "c.pmovsset"),
    (0x090, 8, "c.pmselr"),
    (0x098, 8, "c.pmuserenr"),
    (0x0A0, 8, "c.pmccntr"),
    (0x0A8, 8, "c.pmccfiltr"),
    (0x0B0, 8, "c.pmevcntr[31]"),
    (0x1A8, 8, "c.pmevtyper[31]"),
))
PMU_C_OFFSET = XEN_PMU_DATA.off("c.counters")                          # 0x060, start of `c`
PMU_COUNTERS_REL = XEN_PMU_DATA.off("c.pmevcntr") - PMU_C_OFFSET       # 0x50
PMU_TYPES_REL = XEN_PMU_DATA.off("c.pmevtyper") - PMU_C_OFFSET         # 0x148
# Bytes the hypervisor writes at a sample: everything except `l` (Xen never writes it).
PMU_HV_SPANS = ((0x000, XEN_PMU_DATA.off("l.irq_ctrl")), (PMU_C_OFFSET, XEN_PMU_DATA.size))

# --- shared_info / vcpu_info (arm64) ----------------------------------------------------------
VCPU_TIME_INFO = Struct("vcpu_time_info", 32, (
    (0, 4, "version"),
    (4, 4, "pad0"),
    (8, 8, "tsc_timestamp"),
    (16, 8, "system_time"),
    (24, 4, "tsc_to_system_mul"),
    (28, 1, "tsc_shift"),
    (29, 1, "flags"),
    (30, 2, "pad1"),
))

VCPU_INFO = Struct("vcpu_info", 48, (
    (0, 1, "evtchn_upcall_pending"),
    (1, 1, "pad0"),
    (8, 8, "evtchn_pending_sel"),
    (16, 32, "time"),
))

SHARED_INFO = Struct("shared_info", 1088, (
    (0, 48, "vcpu_info[1]"),
    (48, 8, "evtchn_pending[64]"),
    (560, 8, "evtchn_mask[64]"),
    (1072, 4, "wc_version"),
    (1076, 4, "wc_sec"),
    (1080, 4, "wc_nsec"),
    (1084, 4, "wc_sec_hi"),
))

# --- event_channel_op -------------------------------------------------------------------------
EVTCHN_ALLOC_UNBOUND = Struct("evtchn_alloc_unbound", 8, (
    (0, 2, "dom"), (2, 2, "remote_dom"), (4, 4, "port")))
EVTCHN_BIND_INTERDOMAIN = Struct("evtchn_bind_interdomain", 12, (
    (0, 2, "remote_dom"), (4, 4, "remote_port"), (8, 4, "local_port")))
EVTCHN_BIND_VIRQ = Struct("evtchn_bind_virq", 12, (
    (0, 4, "virq"), (4, 4, "vcpu"), (8, 4, "port")))
EVTCHN_BIND_PIRQ = Struct("evtchn_bind_pirq", 12, (
    (0, 4, "pirq"), (4, 4, "flags"), (8, 4, "port")))
EVTCHN_BIND_IPI = Struct("evtchn_bind_ipi", 8, (
    (0, 4, "vcpu"), (4, 4, "port")))
EVTCHN_PORT = Struct("evtchn_close/send/unmask", 4, (
    (0, 4, "port"),))
EVTCHN_STATUS = Struct("evtchn_status", 24, (
    (0, 2, "dom"),
    (4, 4, "port"),
    (8, 4, "status"),
    (12, 4, "vcpu"),
    (16, 2, "u.dom"),          # unbound.dom / interdomain.dom
    (20, 4, "u.port"),         # interdomain.port
))
EVTCHN_STATUS_U32 = 16         # u.pirq / u.virq: a u32 at offset 16 (overlays u.dom)
EVTCHN_BIND_VCPU = Struct("evtchn_bind_vcpu", 8, (
    (0, 4, "port"), (4, 4, "vcpu")))
EVTCHN_RESET = Struct("evtchn_reset", 2, (
    (0, 2, "dom"),))
EVTCHN_INIT_CONTROL = Struct("evtchn_init_control", 24, (
    (0, 8, "control_gfn"), (8, 4, "offset"), (12, 4, "vcpu"), (16, 1, "link_bits"),
    (17, 7, "pad")))
EVTCHN_EXPAND_ARRAY = Struct("evtchn_expand_array", 8, (
    (0, 8, "array_gfn"),))
EVTCHN_SET_PRIORITY = Struct("evtchn_set_priority", 8, (
    (0, 4, "port"), (4, 4, "priority")))

# --- vcpu_op ----------------------------------------------------------------------------------
VCPU_RUNSTATE_INFO = Struct("vcpu_runstate_info", 48, (
    (0, 4, "state"),
    (4, 4, "pad"),
    (8, 8, "state_entry_time"),
    (16, 8, "time[4]"),
))
VCPU_REGISTER_RUNSTATE_AREA = Struct("vcpu_register_runstate_memory_area", 8, (
    (0, 8, "addr"),))
VCPU_SET_PERIODIC_TIMER = Struct("vcpu_set_periodic_timer", 8, (
    (0, 8, "period_ns"),))
VCPU_SET_SINGLESHOT_TIMER = Struct("vcpu_set_singleshot_timer", 16, (
    (0, 8, "timeout_abs_ns"), (8, 4, "flags"), (12, 4, "pad")))
VCPU_REGISTER_VCPU_INFO = Struct("vcpu_register_vcpu_info", 16, (
    (0, 8, "mfn"), (8, 4, "offset"), (12, 4, "rsvd")))

# --- xen_version ------------------------------------------------------------------------------
XEN_FEATURE_INFO = Struct("xen_feature_info", 8, (
    (0, 4, "submap_idx"), (4, 4, "submap")))
XEN_COMPILE_INFO = Struct("xen_compile_info", 144, (
    (0, 64, "compiler"), (64, 16, "compile_by"), (80, 32, "compile_domain"),
    (112, 32, "compile_date")))
XEN_PLATFORM_PARAMETERS = Struct("xen_platform_parameters", 8, (
    (0, 8, "virt_start"),))
XEN_VARBUF = Struct("xen_varbuf", 4, (
    (0, 4, "len"),))                # buf[] follows at offset 4
XEN_EXTRAVERSION_LEN = 16
XEN_CAPABILITIES_LEN = 1024
XEN_CHANGESET_LEN = 64
XEN_DOMAIN_HANDLE_LEN = 16
XEN_COMMANDLINE_LEN = 1024

# --- memory_op --------------------------------------------------------------------------------
XEN_ADD_TO_PHYSMAP = Struct("xen_add_to_physmap", 24, (
    (0, 2, "domid"), (2, 2, "size"), (4, 4, "space"), (8, 8, "idx"), (16, 8, "gpfn")))
XEN_REMOVE_FROM_PHYSMAP = Struct("xen_remove_from_physmap", 16, (
    (0, 2, "domid"), (8, 8, "gpfn")))

# --- hvm_op -----------------------------------------------------------------------------------
XEN_HVM_PARAM = Struct("xen_hvm_param", 16, (
    (0, 2, "domid"), (2, 2, "pad"), (4, 4, "index"), (8, 8, "value")))

# --- grant_table_op ---------------------------------------------------------------------------
GNTTAB_QUERY_SIZE = Struct("gnttab_query_size", 16, (
    (0, 2, "dom"), (4, 4, "nr_frames"), (8, 4, "max_nr_frames"), (12, 2, "status")))
GNTTAB_SET_VERSION = Struct("gnttab_set_version", 4, (
    (0, 4, "version"),))
GNTTAB_GET_VERSION = Struct("gnttab_get_version", 8, (
    (0, 2, "dom"), (2, 2, "pad"), (4, 4, "version")))

# --- sched_op ---------------------------------------------------------------------------------
SCHED_SHUTDOWN = Struct("sched_shutdown", 4, (
    (0, 4, "reason"),))
SCHED_POLL = Struct("sched_poll", 24, (
    (0, 8, "ports"), (8, 4, "nr_ports"), (16, 8, "timeout")))
SCHED_REMOTE_SHUTDOWN = Struct("sched_remote_shutdown", 8, (
    (0, 2, "domain_id"), (4, 4, "reason")))
SCHED_WATCHDOG = Struct("sched_watchdog", 8, (
    (0, 4, "id"), (4, 4, "timeout")))
SCHED_PIN_OVERRIDE = Struct("sched_pin_override", 4, (
    (0, 4, "pcpu"),))
