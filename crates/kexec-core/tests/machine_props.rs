//! Property tests of the machine state parsers `kexec doctor` uses
//! (`kexec_core::machine`, `fdt::cpu_boot`): none panics on arbitrary
//! bytes, and each reads back what a generator wrote.

use kexec_core::fdt::{cpu_boot, psci_cpus, MPIDR_HWID_BITMASK};
use kexec_core::machine::{ctr, efivar, fadt, kconfig, madt, spcr, status};
use proptest::prelude::*;

/// A Kconfig option name.
fn name() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9_]{0,20}"
}

/// `y`, `m`, a number or a quoted string.
fn value() -> impl Strategy<Value = kconfig::Value> {
    prop_oneof![
        Just(kconfig::Value::Yes),
        Just(kconfig::Value::Module),
        (0u32..100_000).prop_map(|n| kconfig::Value::Other(n.to_string())),
        "[a-z ]{0,12}".prop_map(|s| kconfig::Value::Other(format!("\"{s}\""))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = kconfig::parse(&text);
        let _ = status::parse(&text);
        let _ = efivar::secure_boot(&bytes);
        let _ = fadt::arm_boot_flags(&bytes);
        let _ = madt::cpu_mpidrs(&bytes);
        if let Ok(t) = spcr::parse(&bytes) {
            let _ = t.pl011();
        }
        if let Ok(boot) = cpu_boot(&bytes) {
            let _ = psci_cpus(&boot, 7);
        }
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        let _ = ctr::decode(u64::from_le_bytes(word));
    }

    /// A configuration written as Kconfig writes one reads back: set
    /// options with their values, unset ones not at all, the last line
    /// about an option winning.
    #[test]
    fn configurations_read_back(
        lines in proptest::collection::vec((name(), proptest::option::of(value())), 1..40),
        junk in proptest::collection::vec("[ -~]{0,30}", 0..5),
    ) {
        let mut text = String::new();
        let mut want = std::collections::BTreeMap::new();
        for (n, v) in &lines {
            match v {
                Some(v) => {
                    text.push_str(&format!("CONFIG_{n}={}\n", v.as_str()));
                    want.insert(n.clone(), v.clone());
                }
                None => {
                    text.push_str(&format!("# CONFIG_{n} is not set\n"));
                    want.remove(n);
                }
            }
        }
        for j in &junk {
            // Comment lines, never option lines.
            text.push_str(&format!("#  {j}\n"));
        }
        let config = kconfig::parse(&text).unwrap();
        for (n, _) in &lines {
            prop_assert_eq!(config.get(n), want.get(n), "{}", n);
        }
        prop_assert_eq!(config.len(), want.len());
    }

    /// Every AArch64 CTR_EL0 decodes, its line sizes are 4 << field.
    #[test]
    fn ctr_el0_fields(raw in any::<u64>()) {
        let raw = raw | ctr::CTR_RES1;
        let c = ctr::decode(raw).unwrap();
        prop_assert_eq!(c.dminline, 4 << ((raw >> 16) & 0xf));
        prop_assert_eq!(c.iminline, 4 << (raw & 0xf));
        prop_assert_eq!(c.idc, raw & (1 << 28) != 0);
        prop_assert_eq!(c.dic, raw & (1 << 29) != 0);
        prop_assert!(ctr::decode(raw & !ctr::CTR_RES1).is_err());
    }

    /// A FADT of any length from ACPI 5.1's on gives back its flags; a
    /// shorter one is refused, as is one cut short of its header length.
    #[test]
    fn fadt_flags_read_back(len in 36usize..400, flags in any::<u16>()) {
        let table = fadt::synthetic(len, flags);
        match fadt::arm_boot_flags(&table) {
            Ok(f) => {
                prop_assert!(len > fadt::MINOR_REVISION_OFFSET);
                prop_assert_eq!(f.psci_compliant, flags & 1 != 0);
                prop_assert_eq!(f.psci_use_hvc, flags & 2 != 0);
                prop_assert!(fadt::arm_boot_flags(&table[..len - 1]).is_err());
            }
            Err(_) => prop_assert!(len <= fadt::MINOR_REVISION_OFFSET),
        }
    }

    /// An SPCR reads back its UART, which is the purgatory's console only
    /// for a memory-mapped PL011 at a non-zero address with a baud rate
    /// code the kernel takes; cut short, or with a length that is not the
    /// table's, it is refused.
    #[test]
    fn spcr_reads_back(
        kind in prop_oneof![Just(spcr::INTERFACE_ARM_PL011), any::<u8>()],
        address in prop_oneof![Just(0u64), any::<u64>()],
        baud in 0u8..10,
        space in prop_oneof![Just(spcr::SPACE_SYSTEM_MEMORY), any::<u8>()],
        cut in 0usize..spcr::SPCR_LENGTH,
        length in any::<u32>(),
    ) {
        let mut table = spcr::synthetic(kind, address, baud);
        table[40] = space;
        let t = spcr::parse(&table).unwrap();
        prop_assert_eq!(
            (t.interface_type, t.space_id, t.address, t.baud_rate),
            (kind, space, address, baud)
        );
        let console = kind == spcr::INTERFACE_ARM_PL011
            && [0, 3, 4, 6, 7].contains(&baud)
            && space == spcr::SPACE_SYSTEM_MEMORY
            && address != 0;
        prop_assert_eq!(t.pl011().ok(), console.then_some(address));
        prop_assert!(spcr::parse(&table[..cut]).is_err());
        table[4..8].copy_from_slice(&length.to_le_bytes());
        prop_assert_eq!(spcr::parse(&table).is_ok(), length == 80);
    }

    /// A MADT of GICC structures reads back the enabled CPUs with valid,
    /// unique MPIDRs, in order; cut anywhere inside, it is refused (its
    /// length says more) or, cut with its length, reads a prefix.
    #[test]
    fn madt_cpus_read_back(
        gicc in proptest::collection::vec((0u32..4, any::<u64>(), any::<bool>()), 0..12),
        cut in any::<usize>(),
    ) {
        // Half the MPIDRs valid affinities, half anything.
        let gicc: Vec<(u32, u64)> = gicc
            .iter()
            .map(|&(f, m, valid)| (f, if valid { m & MPIDR_HWID_BITMASK } else { m }))
            .collect();
        let table = madt::synthetic(&gicc);
        let mut want: Vec<u64> = Vec::new();
        for &(flags, m) in &gicc {
            if flags & madt::ACPI_MADT_ENABLED != 0
                && m & !MPIDR_HWID_BITMASK == 0
                && m != u64::MAX
                && !want.contains(&m)
            {
                want.push(m);
            }
        }
        prop_assert_eq!(madt::cpu_mpidrs(&table).unwrap(), want.clone());
        let cut = madt::MADT_STRUCTURES_OFFSET + cut % (table.len() - madt::MADT_STRUCTURES_OFFSET + 1);
        if cut < table.len() {
            prop_assert!(madt::cpu_mpidrs(&table[..cut]).is_err());
        }
        let mut shorter = table[..cut].to_vec();
        let len = u32::try_from(cut).unwrap();
        shorter[4..8].copy_from_slice(&len.to_le_bytes());
        let got = madt::cpu_mpidrs(&shorter).unwrap();
        prop_assert!(want.starts_with(&got), "{:?} is not a prefix of {:?}", got, want);
    }

    #[test]
    fn credentials_read_back(euid in any::<u32>(), caps in any::<u64>()) {
        let text = format!("Name:\tk\nUid:\t1\t{euid}\t2\t3\nCapEff:\t{caps:016x}\n");
        let c = status::parse(&text).unwrap();
        prop_assert_eq!(c.euid, Some(euid));
        prop_assert_eq!(c.has(status::CAP_SYS_BOOT), Some(caps & (1 << 22) != 0));
    }
}

/// The committed sysroots' device trees (QEMU's own) all use PSCI over HVC
/// for every CPU.
#[test]
fn fixture_device_trees_use_psci() {
    for name in ["qemu-virt-1g", "virt-1g", "virt-1g-smp4", "virt-4g"] {
        let dir = test_assets::synthetic::fixture_sysroot(name);
        let dtb = std::fs::read(dir.join("sys/firmware/fdt")).unwrap();
        let boot = cpu_boot(&dtb).unwrap();
        let psci = boot.psci.as_ref().unwrap();
        assert_eq!(psci.method.as_deref(), Some("hvc"), "{name}");
        assert!(psci.available, "{name}");
        assert!(!boot.cpus.is_empty(), "{name}");
        for cpu in &boot.cpus {
            assert_eq!(cpu.enable_method.as_deref(), Some("psci"), "{name} {cpu:?}");
        }
    }
}
