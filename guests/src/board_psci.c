/* PSCI / SMCCC over HVC #0: version and feature values, then SYSTEM_OFF (status 0).
 * Values are what vpmu implements (platform.md): PSCI 1.1, SMCCC 1.1.  QEMU 7.2 answers
 * SMCCC_VERSION (and PSCI_FEATURES(SMCCC_VERSION)) with NOT_SUPPORTED and CPU_ON of a CPU
 * that does not exist with INVALID_PARAMETERS (-2): docs/qemu-compat.md. */
#include "board_common.h"

static const struct { const char *name; u64 fid; } features[] = {
    { "psci_version", PSCI_VERSION },
    { "cpu_off", PSCI_CPU_OFF },
    { "cpu_on64", PSCI_CPU_ON64 },
    { "affinity_info64", PSCI_AFFINITY_INFO64 },
    { "migrate_info_type", PSCI_MIGRATE_INFO_TYPE },
    { "system_off", PSCI_SYSTEM_OFF },
    { "system_reset", PSCI_SYSTEM_RESET },
    { "psci_features", PSCI_FEATURES },
    { "smccc_version", SMCCC_VERSION },
    { "cpu_suspend64", 0xC4000001UL },          /* not implemented by either: -1 */
    { "system_suspend64", 0xC400000EUL },
    { "unknown_8400001f", 0x8400001FUL },
};

int main(void)
{
    kv_hex("psci_version", smccc(PSCI_VERSION, 0, 0, 0));
    for (unsigned i = 0; i < sizeof features / sizeof features[0]; i++) {
        puts("features_");
        kv_hex(features[i].name, smccc(PSCI_FEATURES, features[i].fid, 0, 0));
    }
    kv_hex("smccc_version", smccc(SMCCC_VERSION, 0, 0, 0));
    kv_hex("smccc_arch_features_wa1", smccc(SMCCC_ARCH_FEATURES, 0x80008000UL, 0, 0));
    kv_hex("migrate_info_type", smccc(PSCI_MIGRATE_INFO_TYPE, 0, 0, 0));
    kv_hex("affinity_info_cpu0", smccc(PSCI_AFFINITY_INFO64, 0, 0, 0));
    kv_hex("affinity_info_cpu1", smccc(PSCI_AFFINITY_INFO64, 1, 0, 0));
    kv_hex("cpu_on_cpu1", smccc(PSCI_CPU_ON64, 1, 0x40200000UL, 0));
    kv_hex("unknown_psci_fn", smccc(0x8400001FUL, 0, 0, 0));
    puts("board_psci: system_off\n");
    psci_system_off();
}
