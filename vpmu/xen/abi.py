"""Numbers of the Xen guest ABI used by the frontend (public headers, arm64 view).

Plain constants only: hypercall numbers, sub-op numbers, VIRQs, feature bits, domain
ids.  Struct layouts live in :mod:`vpmu.xen.layout`; behaviour lives in the operation
modules.  Sources: xen/include/public/{xen.h, pmu.h, event_channel.h, vcpu.h,
version.h, features.h, memory.h, sched.h, grant_table.h, hvm/hvm_op.h, hvm/params.h}
and /work/shared/spec/xen-pmu.md section 0.
"""
from __future__ import annotations

# --- hypercall numbers (x16) ------------------------------------------------------------
HYPERVISOR_memory_op = 12
HYPERVISOR_xen_version = 17
HYPERVISOR_console_io = 18
HYPERVISOR_grant_table_op = 20
HYPERVISOR_vm_assist = 21
HYPERVISOR_vcpu_op = 24
HYPERVISOR_sched_op = 29
HYPERVISOR_event_channel_op = 32
HYPERVISOR_hvm_op = 34
HYPERVISOR_xenpmu_op = 40

XEN_HYPERCALL_TAG = 0xEA1          # HVC immediate of a Xen hypercall on Arm

# --- domain ids -------------------------------------------------------------------------
DOMID_FIRST_RESERVED = 0x7FF0
DOMID_SELF = 0x7FF0
DOMID_IO = 0x7FF1
DOMID_XEN = 0x7FF2
DOMID_COW = 0x7FF3
DOMID_INVALID = 0x7FF4
DOMID_ANY = 0x7FF5
DOMID_IDLE = 0x7FFF

# --- xenpmu_op (public/pmu.h) -----------------------------------------------------------
XENPMU_VER_MAJ = 0
XENPMU_VER_MIN = 1
XENPMU_mode_get = 0
XENPMU_mode_set = 1
XENPMU_feature_get = 2
XENPMU_feature_set = 3
XENPMU_init = 4
XENPMU_finish = 5
XENPMU_lvtpc_set = 6
XENPMU_flush = 7
XENPMU_OP_NAMES = {0: "mode_get", 1: "mode_set", 2: "feature_get", 3: "feature_set",
                   4: "init", 5: "finish", 6: "lvtpc_set", 7: "flush"}

XENPMU_MODE_OFF = 0
XENPMU_MODE_SELF = 1 << 0
XENPMU_MODE_HV = 1 << 1
XENPMU_MODE_ALL = 1 << 2
MODE_BY_NAME = {"off": XENPMU_MODE_OFF, "self": XENPMU_MODE_SELF,
                "hv": XENPMU_MODE_HV, "all": XENPMU_MODE_ALL}

XENPMU_FEATURE_INTEL_BTS = 1 << 0
XENPMU_FEATURE_IPC_ONLY = 1 << 1
XENPMU_FEATURE_ARCH_ONLY = 1 << 2

PMU_CACHED = 1 << 0
PMU_SAMPLE_USER = 1 << 1
PMU_SAMPLE_REAL = 1 << 2
PMU_SAMPLE_PV = 1 << 3

PMU_IRQ_MASKED = 1 << 16           # l.irq_ctrl bit 16, the x86 APIC_LVT_MASKED bit

# --- VIRQs (public/xen.h) ---------------------------------------------------------------
VIRQ_TIMER = 0
VIRQ_DEBUG = 1
VIRQ_CONSOLE = 2
VIRQ_DOM_EXC = 3
VIRQ_TBUF = 4
VIRQ_DEBUGGER = 6
VIRQ_XENOPROF = 7
VIRQ_CON_RING = 8
VIRQ_PCPU_STATE = 9
VIRQ_MEM_EVENT = 10
VIRQ_ARGO = 11
VIRQ_ENOMEM = 12
VIRQ_XENPMU = 13
VIRQ_ARCH_0 = 16
NR_VIRQS = 24

# --- event_channel_op (public/event_channel.h) ------------------------------------------
EVTCHNOP_bind_interdomain = 0
EVTCHNOP_bind_virq = 1
EVTCHNOP_bind_pirq = 2
EVTCHNOP_close = 3
EVTCHNOP_send = 4
EVTCHNOP_status = 5
EVTCHNOP_alloc_unbound = 6
EVTCHNOP_bind_ipi = 7
EVTCHNOP_bind_vcpu = 8
EVTCHNOP_unmask = 9
EVTCHNOP_reset = 10
EVTCHNOP_init_control = 11
EVTCHNOP_expand_array = 12
EVTCHNOP_set_priority = 13
EVTCHNOP_NAMES = {0: "bind_interdomain", 1: "bind_virq", 2: "bind_pirq", 3: "close",
                  4: "send", 5: "status", 6: "alloc_unbound", 7: "bind_ipi",
                  8: "bind_vcpu", 9: "unmask", 10: "reset", 11: "init_control",
                  12: "expand_array", 13: "set_priority"}

EVTCHNSTAT_closed = 0
EVTCHNSTAT_unbound = 1
EVTCHNSTAT_interdomain = 2
EVTCHNSTAT_pirq = 3
EVTCHNSTAT_virq = 4
EVTCHNSTAT_ipi = 5

# --- vcpu_op (public/vcpu.h) ------------------------------------------------------------
VCPUOP_initialise = 0
VCPUOP_up = 1
VCPUOP_down = 2
VCPUOP_is_up = 3
VCPUOP_get_runstate_info = 4
VCPUOP_register_runstate_memory_area = 5
VCPUOP_set_periodic_timer = 6
VCPUOP_stop_periodic_timer = 7
VCPUOP_set_singleshot_timer = 8
VCPUOP_stop_singleshot_timer = 9
VCPUOP_register_vcpu_info = 10
VCPUOP_send_nmi = 11
VCPUOP_get_physid = 12
VCPUOP_register_vcpu_time_memory_area = 13
VCPUOP_register_runstate_phys_area = 14
VCPUOP_register_vcpu_time_phys_area = 15
VCPUOP_NAMES = {0: "initialise", 1: "up", 2: "down", 3: "is_up", 4: "get_runstate_info",
                5: "register_runstate_memory_area", 6: "set_periodic_timer",
                7: "stop_periodic_timer", 8: "set_singleshot_timer",
                9: "stop_singleshot_timer", 10: "register_vcpu_info", 11: "send_nmi",
                12: "get_physid", 13: "register_vcpu_time_memory_area",
                14: "register_runstate_phys_area", 15: "register_vcpu_time_phys_area"}

RUNSTATE_running = 0
RUNSTATE_runnable = 1
RUNSTATE_blocked = 2
RUNSTATE_offline = 3
XEN_RUNSTATE_UPDATE = 1 << 63

VCPU_SSHOTTMR_future = 1 << 0      # ignored since Xen 4.18

# --- vm_assist (public/xen.h) -----------------------------------------------------------
VMASST_CMD_enable = 0
VMASST_CMD_disable = 1
VMASST_TYPE_runstate_update_flag = 5
ARM_VM_ASSIST_VALID = 1 << VMASST_TYPE_runstate_update_flag

# --- xen_version (public/version.h, features.h) -----------------------------------------
XENVER_version = 0
XENVER_extraversion = 1
XENVER_compile_info = 2
XENVER_capabilities = 3
XENVER_changeset = 4
XENVER_platform_parameters = 5
XENVER_get_features = 6
XENVER_pagesize = 7
XENVER_guest_handle = 8
XENVER_commandline = 9
XENVER_build_id = 10
XENVER_extraversion2 = 11
XENVER_capabilities2 = 12
XENVER_changeset2 = 13
XENVER_commandline2 = 14
XENVER_NAMES = {0: "version", 1: "extraversion", 2: "compile_info", 3: "capabilities",
                4: "changeset", 5: "platform_parameters", 6: "get_features",
                7: "pagesize", 8: "guest_handle", 9: "commandline", 10: "build_id",
                11: "extraversion2", 12: "capabilities2", 13: "changeset2",
                14: "commandline2"}

XENFEAT_writable_page_tables = 0
XENFEAT_auto_translated_physmap = 2
XENFEAT_dom0 = 11
XENFEAT_memory_op_vnode_supported = 13
XENFEAT_ARM_SMCCC_supported = 14
XENFEAT_not_direct_mapped = 16
XENFEAT_direct_mapped = 17
XENFEAT_runstate_phys_area = 18
XENFEAT_NR_SUBMAPS = 1

# --- memory_op (public/memory.h) --------------------------------------------------------
MEMOP_EXTENT_SHIFT = 6
MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1
XENMEM_add_to_physmap = 7
XENMEM_remove_from_physmap = 15
XENMEM_NAMES = {7: "add_to_physmap", 15: "remove_from_physmap"}

XENMAPSPACE_shared_info = 0
XENMAPSPACE_grant_table = 1
XENMAPSPACE_gmfn = 2
XENMAPSPACE_gmfn_range = 3
XENMAPSPACE_gmfn_foreign = 4
XENMAPSPACE_dev_mmio = 5

# --- sched_op (public/sched.h) ----------------------------------------------------------
SCHEDOP_yield = 0
SCHEDOP_block = 1
SCHEDOP_shutdown = 2
SCHEDOP_poll = 3
SCHEDOP_remote_shutdown = 4
SCHEDOP_shutdown_code = 5
SCHEDOP_watchdog = 6
SCHEDOP_pin_override = 7
SCHEDOP_NAMES = {0: "yield", 1: "block", 2: "shutdown", 3: "poll", 4: "remote_shutdown",
                 5: "shutdown_code", 6: "watchdog", 7: "pin_override"}

SHUTDOWN_poweroff = 0
SHUTDOWN_reboot = 1
SHUTDOWN_suspend = 2
SHUTDOWN_crash = 3
SHUTDOWN_watchdog = 4
SHUTDOWN_soft_reset = 5
NR_DOMAIN_WATCHDOG_TIMERS = 2
SCHED_POLL_MAX_PORTS = 128

# --- hvm_op (public/hvm/hvm_op.h, params.h) ---------------------------------------------
HVMOP_set_param = 0
HVMOP_get_param = 1
HVMOP_guest_request_vm_event = 24
HVMOP_NAMES = {0: "set_param", 1: "get_param", 24: "guest_request_vm_event"}

HVM_PARAM_CALLBACK_IRQ = 0
HVM_PARAM_STORE_PFN = 1
HVM_PARAM_STORE_EVTCHN = 2
HVM_PARAM_CONSOLE_PFN = 17
HVM_PARAM_CONSOLE_EVTCHN = 18
HVM_PARAM_MONITOR_RING_PFN = 28
HVM_NR_PARAMS = 41
HVM_PARAM_CALLBACK_TYPE_PPI = 2                 # val[63:56] on Arm
HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL = 2  # val[15:8]: bit 8 edge(1)/level(0), bit 9 low(1)

# --- grant_table_op (public/grant_table.h) ----------------------------------------------
GNTTABOP_query_size = 6
GNTTABOP_set_version = 8
GNTTABOP_get_version = 10
GNTTABOP_CMD_MASK = (1 << 12) - 1
GNTTABOP_NAMES = {6: "query_size", 8: "set_version", 10: "get_version"}
GNTST_okay = 0
GNTST_bad_domain = -2
GNTST_permission_denied = -8

# --- console_io (public/xen.h) ----------------------------------------------------------
CONSOLEIO_write = 0
CONSOLEIO_read = 1

HYPERCALL_NAMES = {
    HYPERVISOR_memory_op: "memory_op",
    HYPERVISOR_xen_version: "xen_version",
    HYPERVISOR_console_io: "console_io",
    HYPERVISOR_grant_table_op: "grant_table_op",
    HYPERVISOR_vm_assist: "vm_assist",
    HYPERVISOR_vcpu_op: "vcpu_op",
    HYPERVISOR_sched_op: "sched_op",
    HYPERVISOR_event_channel_op: "event_channel_op",
    HYPERVISOR_hvm_op: "hvm_op",
    HYPERVISOR_xenpmu_op: "xenpmu_op",
}

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
