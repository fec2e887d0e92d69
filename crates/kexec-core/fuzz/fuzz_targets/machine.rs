//! Fuzz target: the machine state parsers `kexec doctor` and the loader
//! use never panic: the kernel configuration, `/proc/self/status`, the
//! `SecureBoot` variable, the FADT, the MADT, the SPCR, `CTR_EL0` (the first 8 bytes)
//! and the device tree's PSCI and CPU nodes (the whole input as a blob);
//! what they accept is consistent.
#![no_main]

use kexec_core::fdt::{cpu_boot, psci_cpus, MPIDR_HWID_BITMASK};
use kexec_core::machine::{ctr, efivar, fadt, kconfig, madt, spcr, status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = kconfig::parse(&text) {
        assert!(config.len() <= text.lines().count());
    }
    let _ = status::parse(&text);
    if efivar::secure_boot(data).is_ok() {
        assert_eq!(data.len(), 5);
    }
    if fadt::arm_boot_flags(data).is_ok() {
        assert!(data.len() > fadt::MINOR_REVISION_OFFSET);
    }
    if let Ok(cpus) = madt::cpu_mpidrs(data) {
        assert!(cpus.len() <= data.len() / madt::GICC_MIN_LENGTH);
        assert!(cpus.iter().all(|m| m & !MPIDR_HWID_BITMASK == 0));
    }
    if let Ok(t) = spcr::parse(data) {
        assert!(data.len() >= spcr::SPCR_LENGTH);
        if let Ok(base) = t.pl011() {
            assert!(base != 0 && t.interface_type == spcr::INTERFACE_ARM_PL011);
        }
    }
    let mut word = [0u8; 8];
    let n = data.len().min(8);
    word[..n].copy_from_slice(&data[..n]);
    if let Ok(c) = ctr::decode(u64::from_le_bytes(word)) {
        assert!(c.dminline >= 4 && c.iminline >= 4);
    }
    if let Ok(boot) = cpu_boot(data) {
        if let Some(cpus) = psci_cpus(&boot, 7) {
            assert!(!cpus.mpidrs.is_empty() && cpus.mpidrs.len() <= 7);
            assert!(cpus.mpidrs.iter().all(|m| m & !MPIDR_HWID_BITMASK == 0));
        }
        if let Some(psci) = boot.psci {
            assert!(psci.path.starts_with('/'));
        }
    }
});
