//! QEMU end-to-end tests. They boot real Debian arm64 kernels, so they are
//! `#[ignore]`d in a plain `cargo test` and run by `cargo xtask test`
//! (`cargo test -p xtask --test '*' -- --ignored`) after `cargo xtask setup`.

use xtask::kdump::{check_vmcore_reports, Reference};
use xtask::qemu::MachineShape;
use xtask::scenario::{
    check_kernel, CmdlineMode, Expectations, Hop, KexecScenario, Loader, PayloadFormat,
};
use xtask::setup::Assets;
use xtask::vmcore_size::{check_vmcore, ranges, vmcore_loads};

fn assets() -> Assets {
    Assets::existing().unwrap_or_else(|e| panic!("{e:#}"))
}

/// The reference scenario: kexec-tools inside kernel A loads kernel B with an
/// initrd and a marker on the command line; B must report all three.
/// The same run is then checked against a wrong marker, which must fail:
/// the harness can tell a wrong kernel B from a right one.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn kexec_tools_boots_kernel_b_on_two_cpus() {
    let outcome = KexecScenario::single(Loader::KexecTools, 2)
        .run(&assets())
        .unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());

    let right = &outcome.expected[0];
    let wrong = Expectations {
        markers: vec![format!("{}0", right.markers[0])],
        ..right.clone()
    };
    let err = check_kernel(&outcome.timeline, &wrong).expect_err("a wrong marker must fail");
    assert!(err.to_string().contains("lacks the marker"), "{err}");
}

/// A chain A → B → C with kexec-tools, the second hop reusing the running
/// command line: proves the harness follows several kexecs and that
/// `--reuse-cmdline` keeps A's marker while adding C's.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn kexec_tools_chain_with_reuse_cmdline() {
    let mut second = Hop::new(Loader::KexecTools);
    second.cmdline = CmdlineMode::Reuse;
    let scenario = KexecScenario {
        hops: vec![Hop::new(Loader::KexecTools), second],
        ..KexecScenario::single(Loader::KexecTools, 2)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(outcome.expected.len(), 2);
    assert_eq!(
        outcome.expected[1].markers.len(),
        2,
        "C must carry B's and its own marker"
    );
    let text = outcome.kernel_text_addresses();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text.iter().all(|t| t.len() == 16), "{text:?}");
}

/// Our loader, A → B on one CPU from the plain Image: kernel B reports the
/// marker, the initrd digest and its CPU, and the purgatory said it verified
/// every segment before entering it. Debian's kernel lacks
/// `CONFIG_KEXEC_FILE`: the default (auto) falls back to kexec_load and
/// says so with `--verbose`, and `--dry-run` says kexec_load would be used.
///
/// The binary is the one in the Debian package (`cargo xtask package`,
/// unpacked with `dpkg -x`): its `--version` names the digest of the
/// purgatory embedded in it, it is no test build, and it ignores
/// `KEXEC_RS_TEST_SEED` (two dry runs with it set get different
/// `kaslr-seed`s).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_boots_kernel_b_on_one_cpu() {
    let work = xtask::scenario::WorkDir::new("deb").unwrap();
    let deb = xtask::package::build().unwrap_or_else(|e| panic!("{e:#}"));
    let packaged = xtask::package::extract(&deb, &work.0).unwrap();
    let digest =
        xtask::package::embedded_purgatory_digest(&std::fs::read(&packaged).unwrap()).unwrap();
    let mut scenario = KexecScenario::single(Loader::Ours, 1);
    scenario.our_kexec = Some(packaged);
    scenario.hops[0].loader_args = "--verbose".into();
    let k = Loader::Ours.guest_path();
    let seed = |n: u32| {
        format!("KEXEC_RS_TEST_SEED=1 {k} --dry-run -l /payload/Image | grep kaslr-seed >/tmp/s{n}")
    };
    scenario.hops[0].before_load = format!(
        "check dry-run-says-kexec-load 0 sh -c '{k} --dry-run -l /payload/Image | grep -qF \
         \"syscall: kexec_load: auto: this kernel does not implement kexec_file_load\"'\n\
         say kexec-version \"$({k} --version | head -n 2 | tr '\\n' ' ')\"\n\
         check version-names-the-purgatory 0 sh -c '{k} --version | grep -qF \"purgatory: sha256 {digest} (\"'\n\
         check version-is-no-test-build 1 sh -c '{k} --version | grep -q \"test build\"'\n\
         check release-ignores-test-seed 0 sh -c '{s1} && {s2} && ! cmp -s /tmp/s1 /tmp/s2'\n",
        s1 = seed(1),
        s2 = seed(2),
    );
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        xtask::scenario::check_guest_checks(&outcome.timeline).unwrap(),
        4
    );
    let fell_back = outcome.timeline.lines.iter().any(|l| {
        l.text.contains(
            "kexec: kexec_file_load is not available here (this kernel does not support that \
             kexec call (built without CONFIG_KEXEC_FILE)); falling back to kexec_load",
        )
    });
    assert!(fell_back, "{}", outcome.timeline.tail(60));
    print!("{}", outcome.timeline.summary());
    let verified = outcome.timeline.lines.iter().any(|l| {
        // Kernel, initrd and DTB, in 2 MiB chunks (the kernel's many).
        l.text.contains("purgatory: 3 segments verified in ")
            && l.text.contains(" chunks of 2048 KiB (")
    });
    assert!(verified, "{}", outcome.timeline.tail(40));
}

/// Our loader, A → B on two CPUs from `Image.gz`: the purgatory hashes on
/// both (PSCI `CPU_ON`, then `CPU_OFF`), and every CPU comes back in B.
/// Before the load, `kexec doctor` runs in kernel A (Debian's
/// `/boot/config-<release>` in place, securityfs mounted): it exits 0 and
/// its `--json` ([`check_doctor`]) says what this guest is.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_boots_gzip_kernel_b_on_two_cpus() {
    let assets = assets();
    let k = Loader::Ours.guest_path();
    let mut hop = Hop::new(Loader::Ours);
    hop.format = PayloadFormat::Gzip;
    hop.extra_files = vec![(
        format!("/boot/config-{}", assets.kernel.version),
        assets.kernel.config.clone(),
    )];
    // The JSON on one marker line (sed, not echo: no escape is interpreted).
    hop.before_load = format!(
        "mount -t securityfs securityfs /sys/kernel/security\n\
         check doctor 0 {k} doctor\n\
         cat /tmp/check.out\n\
         {k} doctor --json | tr -d '\\n' | sed \"s/^/@@kxt $stage doctor-json /\"; echo\n"
    );
    let scenario = KexecScenario {
        hops: vec![hop],
        ..KexecScenario::single(Loader::Ours, 2)
    };
    let outcome = scenario.run(&assets).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(outcome.expected[0].cpus, 2);
    // The purgatory started the second CPU with PSCI to hash with it, and
    // turned it off again: B brought both up (above).
    let both = outcome
        .timeline
        .lines
        .iter()
        .any(|l| l.text.contains("purgatory: hashed on 2 CPUs"));
    assert!(both, "{}", outcome.timeline.tail(60));
    assert_eq!(
        xtask::scenario::check_guest_checks(&outcome.timeline).unwrap(),
        1
    );
    let json = &outcome
        .timeline
        .marker("a", "doctor-json")
        .unwrap_or_else(|| panic!("no doctor-json\n{}", outcome.timeline.tail(60)))
        .value;
    let doc: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    check_doctor(&doc, &assets.kernel.version).unwrap_or_else(|e| panic!("{e}\n{json}"));
}

/// What `kexec doctor --json` must say in kernel A of the gzip scenario:
/// an arm64 guest, root with CAP_SYS_BOOT, kexec_load allowed, no
/// lockdown, no UEFI, Debian's configuration (`release`'s) without
/// CONFIG_KEXEC_FILE, PSCI over HVC, both CPUs hotpluggable, QEMU
/// cortex-a57's CTR_EL0 (64-byte lines, PIPT L1I), nothing failed.
fn check_doctor(doc: &serde_json::Value, release: &str) -> Result<(), String> {
    let check = |id: &str| {
        doc["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .cloned()
            .ok_or_else(|| format!("no check {id}"))
    };
    let expect = |id: &str, status: &str, key: &str, want: serde_json::Value| {
        let c = check(id)?;
        let got = if key.is_empty() {
            &c["value"]
        } else {
            &c["value"][key]
        };
        if c["status"] != status || *got != want {
            return Err(format!("{id}: {c} (wanted {status}, value {key} = {want})"));
        }
        Ok(())
    };
    use serde_json::json;
    if doc["schema"] != "kexec-rs/doctor/v1" || doc["exit_code"] != 0 || doc["summary"]["fail"] != 0
    {
        return Err(format!("schema, exit code or failures: {}", doc["summary"]));
    }
    expect("arch", "ok", "", json!("aarch64"))?;
    expect("privileges", "ok", "cap_sys_boot", json!(true))?;
    expect("kexec_load_disabled", "ok", "", json!(0))?;
    expect("lockdown", "ok", "", json!("none"))?;
    expect("secure_boot", "ok", "", json!("no-uefi"))?;
    expect(
        "kernel_config",
        "ok",
        "source",
        json!(format!("/boot/config-{release}")),
    )?;
    expect("config_kexec", "ok", "", json!("y"))?;
    expect("config_kexec_file", "warn", "", json!(null))?;
    expect("kexec_loaded", "ok", "", json!(false))?;
    expect("firmware", "ok", "device_tree", json!(true))?;
    expect("psci", "ok", "conduit", json!("hvc"))?;
    expect("cpu_hotplug", "ok", "possible", json!([0, 1]))?;
    expect("cache", "ok", "dminline", json!(64))?;
    expect("cache", "ok", "iminline", json!(64))?;
    expect("cache", "ok", "l1ip", json!("PIPT"))?;
    Ok(())
}

/// A report [`check_doctor`] accepts, the shape `kexec doctor --json`
/// prints (docs/doctor-json.md).
fn healthy_doctor() -> serde_json::Value {
    let c = |id: &str, status: &str, value: serde_json::Value| serde_json::json!({"id": id, "status": status, "value": value});
    serde_json::json!({
        "schema": "kexec-rs/doctor/v1",
        "exit_code": 0,
        "summary": {"ok": 13, "warn": 1, "fail": 0, "unknown": 0},
        "checks": [
            c("arch", "ok", serde_json::json!("aarch64")),
            c("privileges", "ok", serde_json::json!({"euid": 0, "cap_sys_boot": true})),
            c("kexec_load_disabled", "ok", serde_json::json!(0)),
            c("lockdown", "ok", serde_json::json!("none")),
            c("secure_boot", "ok", serde_json::json!("no-uefi")),
            c("kernel_config", "ok", serde_json::json!({"source": "/boot/config-6.1.0-57-arm64"})),
            c("config_kexec", "ok", serde_json::json!("y")),
            c("config_kexec_file", "warn", serde_json::Value::Null),
            c("kexec_loaded", "ok", serde_json::json!(false)),
            c("firmware", "ok", serde_json::json!({"uefi": false, "acpi": false, "device_tree": true})),
            c("psci", "ok", serde_json::json!({"source": "device-tree", "conduit": "hvc"})),
            c("cpu_hotplug", "ok", serde_json::json!({"possible": [0, 1]})),
            c("cache", "ok", serde_json::json!({"dminline": 64, "iminline": 64, "l1ip": "PIPT"})),
        ],
    })
}

#[test]
fn doctor_expectations_can_fail() {
    let ok = healthy_doctor();
    assert_eq!(check_doctor(&ok, "6.1.0-57-arm64"), Ok(()));
    for (id, field, bad) in [
        ("arch", "value", serde_json::json!("x86_64")),
        ("config_kexec_file", "status", serde_json::json!("ok")),
        ("cache", "status", serde_json::json!("unknown")),
        ("psci", "status", serde_json::json!("fail")),
    ] {
        let mut doc = ok.clone();
        let c = doc["checks"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["id"] == id)
            .unwrap();
        c[field] = bad;
        let err = check_doctor(&doc, "6.1.0-57-arm64").unwrap_err();
        assert!(err.starts_with(id), "{err}");
    }
    let mut failed = ok.clone();
    failed["exit_code"] = serde_json::json!(1);
    assert!(check_doctor(&failed, "6.1.0-57-arm64").is_err());
    assert!(check_doctor(&ok, "6.12")
        .unwrap_err()
        .starts_with("kernel_config"));
}

/// A → B → C with our loader, C loaded from B with `--reuse-cmdline` and
/// `-i`: B and C must both boot, C's command line keeps B's marker, each
/// kexec gets a fresh `kaslr-seed` (B and C at different virtual bases), and
/// only the first purgatory verifies.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_chain_reuse_cmdline_and_fresh_kaslr() {
    let mut second = Hop::new(Loader::Ours);
    second.cmdline = CmdlineMode::Reuse;
    second.loader_args = "-i".into();
    let scenario = KexecScenario {
        hops: vec![Hop::new(Loader::Ours), second],
        ..KexecScenario::single(Loader::Ours, 2)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(outcome.expected[1].markers.len(), 2, "C keeps B's marker");
    let text = outcome.kernel_text_addresses();
    assert_eq!(text.len(), 3, "{text:?}");
    assert!(text.iter().all(|t| t.len() == 16), "{text:?}");
    assert_ne!(text[1], text[2], "B and C at the same KASLR base: {text:?}");
    // C was loaded with -i: no digests, and the purgatory says it skipped.
    let said = |t: &str| {
        outcome
            .timeline
            .lines
            .iter()
            .filter(|l| l.text.contains(t))
            .count()
    };
    assert_eq!(said("purgatory: 3 segments verified"), 1);
    assert_eq!(said("purgatory: verification skipped"), 1);
}

/// Failure paths inside the guest, then a real kexec: `--status` before and
/// after a load, a bad image and a missing initrd refused with exit code 2
/// while the kernel loaded earlier stays loaded, unload, and `-e` with
/// nothing loaded refused with exit code 3; a bare `kexec KERNEL` loads and
/// runs `shutdown -r now` (a stand-in /sbin/shutdown), `-e KERNEL` is
/// refused; the hop then boots with petitboot's last resort, `kexec -e -f`.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_failure_paths_keep_the_loaded_kernel() {
    let k = Loader::Ours.guest_path();
    let mut hop = Hop::new(Loader::Ours);
    hop.before_load = format!(
        "check status-before-load 0 {k} -l --status\n\
         check load 0 {k} -l /payload/Image --initrd=/payload/initrd --append=first\n\
         check status-after-load 1 {k} -l --status\n\
         check sysfs-loaded 0 grep -qx 1 /sys/kernel/kexec_loaded\n\
         check bad-image 2 {k} -l /payload/cmdline --initrd=/payload/initrd\n\
         check still-loaded-after-bad-image 1 {k} -l --status\n\
         check missing-initrd 2 {k} -l /payload/Image --initrd=/no/such/initrd\n\
         check still-loaded-after-missing-initrd 1 {k} -l --status\n\
         check unload 0 {k} -u\n\
         check status-after-unload 0 {k} -l --status\n\
         check exec-with-nothing-loaded 3 {k} -e\n\
         rm -f /sbin/shutdown; printf '#!/bin/sh\\necho shutdown-called \"$*\"\\n' >/sbin/shutdown; chmod +x /sbin/shutdown\n\
         check bare-kexec-loads-then-runs-shutdown 0 sh -c '{k} /payload/Image --initrd=/payload/initrd --append=x | grep -qx \"shutdown-called -r now\"'\n\
         check loaded-by-bare-kexec 1 {k} -l -S\n\
         check kernel-with-e-refused 2 {k} -e /payload/Image\n\
         check unload-again 0 {k} -u\n"
    );
    // petitboot's last resort boots what the hop loaded.
    hop.exec_args = "-e -f".into();
    let scenario = KexecScenario {
        hops: vec![hop],
        ..KexecScenario::single(Loader::Ours, 1)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    let passed = xtask::scenario::check_guest_checks(&outcome.timeline).unwrap();
    assert_eq!(passed, 15, "every guest check must have run");
}

/// kdump: kernel A (`kernel`, `None` for Debian 12's) boots on `memory_mib`
/// with `crashkernel`, our loader loads the same kernel as a crash kernel
/// with `-p` (ELF core header, usable-memory-range), a panic boots it, and
/// the crash kernel reads all of `/proc/vmcore` ([`check_vmcore`]) and runs
/// in exactly the crash regions kernel A reserved. With `reference`, the
/// crash kernel also runs `kexec vmcore info|dmesg` (and makedumpfile) on
/// `/proc/vmcore`, judged by `xtask::kdump::check_vmcore_reports`.
fn kdump(
    kernel: Option<String>,
    memory_mib: u32,
    crashkernel: &[&str],
    read_all: bool,
    reference: Option<Reference>,
    before_load: String,
) {
    let shape = MachineShape {
        memory_mib,
        ..MachineShape::default()
    };
    kdump_on(shape, kernel, crashkernel, read_all, reference, before_load);
}

/// [`kdump`] on the machine `shape` (`crashkernel` added to its kernel arguments).
fn kdump_on(
    shape: MachineShape,
    kernel: Option<String>,
    crashkernel: &[&str],
    read_all: bool,
    reference: Option<Reference>,
    before_load: String,
) {
    let mut hop = Hop::new(Loader::Ours);
    let checks = before_load
        .lines()
        .filter(|l| l.starts_with("check "))
        .count();
    hop.before_load = before_load;
    hop.crash = true;
    hop.read_vmcore = read_all;
    // kexec_load (`-c`): the header and DTB under test are ours, also on a
    // kernel with kexec_file_load (which would build its own).
    hop.loader_args = "-c".into();
    hop.kernel = kernel.clone();
    if reference.is_some() {
        hop.next_script = xtask::kdump::VMCORE_SCRIPT.into();
    }
    let mut scenario = KexecScenario {
        shape,
        hops: vec![hop],
        kernel_a: kernel,
        ..KexecScenario::default()
    };
    scenario
        .shape
        .kernel_args
        .extend(crashkernel.iter().map(|a| (*a).to_owned()));
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    xtask::scenario::check_guest_checks(&outcome.timeline).unwrap_or_else(|e| panic!("{e:#}"));
    let passed_in_a = outcome
        .timeline
        .markers
        .iter()
        .filter(|m| m.stage == "a" && m.key == "check-ok")
        .count();
    assert_eq!(
        passed_in_a, checks,
        "every check before the load must have run"
    );
    let marker = |stage: &str, key: &str| {
        outcome
            .timeline
            .marker(stage, key)
            .map(|m| m.value.clone())
            .unwrap_or_else(|| panic!("no {stage}:{key} marker"))
    };
    assert_eq!(
        marker("b", "vmcore-magic"),
        "7f454c46",
        "/proc/vmcore is not ELF"
    );
    let size: u64 = marker("b", "vmcore").parse().expect("vmcore size");
    let iomem_a = marker("a", "iomem");
    // Without the full read, only the size is checked against the header.
    let read = if read_all {
        marker("b", "vmcore-read")
    } else {
        format!("rc=0 bytes={size}")
    };
    check_vmcore(
        size,
        &read,
        &marker("b", "vmcore-header"),
        vmcore_loads(&iomem_a),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", outcome.timeline.tail(60)));
    // linux,usable-memory-range: the crash kernel's RAM is exactly the crash
    // regions, high and low (drivers/of/fdt.c caps memory to the first range
    // and adds the second).
    let mut crash = ranges(&iomem_a, "Crash kernel");
    let mut ram_b = ranges(&marker("b", "iomem"), "System RAM");
    crash.sort_unstable();
    ram_b.sort_unstable();
    assert_eq!(ram_b, crash, "the crash kernel's System RAM");
    assert_eq!(crash.len(), crashkernel.len(), "{iomem_a}");
    if let Some(reference) = reference {
        let report = check_vmcore_reports(&outcome.timeline, "a", "b", reference)
            .unwrap_or_else(|e| panic!("{e:#}\n{}", outcome.timeline.tail(80)));
        println!("{report:?}");
    }
}

/// kdump on Debian 12's 6.1 with `crashkernel=256M` on 1 GiB; `kexec
/// vmcore` is checked against makedumpfile.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kdump_boots_the_crash_kernel_after_a_panic() {
    kdump(
        None,
        1024,
        &["crashkernel=256M"],
        true,
        Some(Reference::Makedumpfile),
        callers_checks(),
    );
}

/// kdump on the UEFI machine with ACPI tables only ([`xtask::uefi::shape`]:
/// EDK II, GICv3 with an ITS, 4 CPUs, 4 GiB: RAM above 4 GiB in the dump):
/// the crash kernel boots from the EFI stub's tree with the ACPI tables,
/// and reads all of its `/proc/vmcore` (through mappings: `read(2)` would
/// take ~500 s under TCG).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kdump_on_uefi_acpi() {
    let shape = xtask::uefi::shape(xtask::uefi::Tables::Acpi);
    kdump_on(
        shape,
        None,
        &["crashkernel=256M"],
        true,
        None,
        String::new(),
    );
}

/// The callers' exact command lines (docs/compat.md) on a kernel with a
/// crash region and without `CONFIG_KEXEC_FILE` (Debian's): each loads,
/// reports or unloads as its caller expects, before the scenario's own `-p`
/// load. The `-s` forms need kexec_file_load, which Debian's kernel lacks:
/// they are checked to fail, as kexec-tools' do there.
fn callers_checks() -> String {
    let k = Loader::Ours.guest_path();
    format!(
        "check kdump-tools-load 0 {k} -p --command-line=\" root=/dev/vda1  nr_cpus=1 reset_devices\" --initrd=/payload/initrd /payload/Image\n\
         check kdump-tools-sysfs-loaded 0 grep -qx 1 /sys/kernel/kexec_crash_loaded\n\
         check status-crash-loaded 1 {k} -S\n\
         check kdump-tools-unload 0 {k} -p -u\n\
         check status-crash-unloaded 0 {k} -p --status\n\
         check opensuse-load 0 {k} -p /payload/Image --append=\"root=/dev/vda2 irqpoll nr_cpus=1\" --initrd=/payload/initrd -a\n\
         check opensuse-unload 0 {k} -a -p -u\n\
         check kdumpctl-s-needs-kexec-file 0 sh -c '! {k} -s -s -p --command-line=\"root=/dev/vda1\" --initrd=/payload/initrd /payload/Image'\n\
         check kdumpctl-old-d 0 sh -c '{k} -d -p --command-line=\"root=/dev/vda1\" --initrd=/payload/initrd /payload/Image 2>&1 | grep -q \"kexec: debug: segment.0. \" && grep -qx 1 /sys/kernel/kexec_crash_loaded'\n\
         check unload-before-the-scenario 0 {k} -p -u\n\
         check print-ckr-size 0 sh -c '[ \"$({k} --print-ckr-size)\" = 268435456 ]'\n\
         check systemd-empty-append 0 {k} --load /payload/Image --append \"\" --initrd /payload/initrd\n\
         check systemd-loaded 1 {k} -l -S\n\
         check debian-init-load 0 {k} -l /payload/Image --initrd=/payload/initrd --append=\"root=/dev/vda1 ro quiet\"\n\
         check nixos-load 0 {k} --load /payload/Image --kexec-syscall-auto --initrd=/payload/initrd --no-checks --command-line \"init=/init loglevel=4\"\n\
         check petitboot-load 0 {k} -l --initrd=/payload/initrd '--append=\"\"' /payload/Image\n\
         check normal-unload 0 {k} -u\n"
    )
}

/// The version of the second kernel setup downloads (Debian 13's).
fn newer_kernel() -> String {
    assets()
        .other_kernels()
        .first()
        .expect("setup downloads a second kernel")
        .version
        .clone()
}

/// kdump with Debian 13's 6.12 as kernel A and crash kernel. `kexec vmcore
/// info` and `dmesg` read its /proc/vmcore (52-bit VA_BITS, a negative
/// PHYS_OFFSET), and kexec-tools' `vmcore-dmesg` prints the same log; no
/// makedumpfile (Debian 12's, 13's or unstable's) supports 52-bit VAs with
/// 4 KiB pages, so its reports are printed, not judged ([`Reference`]).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kdump_on_the_newer_kernel() {
    kdump(
        Some(newer_kernel()),
        1024,
        &["crashkernel=256M"],
        true,
        Some(Reference::VmcoreDmesg),
        String::new(),
    );
}

/// kdump with two reservations on a 4 GiB guest: `crashkernel=X,high` and
/// its low part. The segments go in the high one, `linux,usable-memory-range`
/// lists high then low, and the dump leaves both out. The dump's 3.7 GiB
/// are not read through (520 s under TCG, near the step timeout): the
/// 1 GiB scenarios read theirs.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kdump_with_high_and_low_reservations() {
    kdump(
        None,
        4096,
        &["crashkernel=256M,high", "crashkernel=64M,low"],
        false,
        None,
        String::new(),
    );
}

/// The same two reservations with Debian 13's 6.12 as kernel A and crash
/// kernel: it too caps memory to the first range and adds the second.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kdump_with_high_and_low_reservations_on_the_newer_kernel() {
    kdump(
        Some(newer_kernel()),
        4096,
        &["crashkernel=256M,high", "crashkernel=64M,low"],
        false,
        None,
        String::new(),
    );
}

/// Across kernel versions with our loader: Debian 12's kernel A boots
/// Debian 13's kernel B, which boots Debian 12's kernel C again.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_across_kernel_versions() {
    let assets = assets();
    let other = assets.other_kernels();
    let newer = other
        .first()
        .expect("setup downloads a second kernel version");
    let mut up = Hop::new(Loader::Ours);
    up.kernel = Some(newer.version.clone());
    let down = Hop::new(Loader::Ours);
    let scenario = KexecScenario {
        hops: vec![up, down],
        ..KexecScenario::single(Loader::Ours, 2)
    };
    let outcome = scenario.run(&assets).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(outcome.expected[0].release, newer.version);
    assert_eq!(outcome.expected[1].release, assets.kernel.version);
}
