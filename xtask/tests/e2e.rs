//! QEMU end-to-end tests. They boot real Debian arm64 kernels, so they are
//! `#[ignore]`d in a plain `cargo test` and run by `cargo xtask test`
//! (`cargo test -p xtask --test '*' -- --ignored`) after `cargo xtask setup`.

use xtask::scenario::{
    check_kernel, CmdlineMode, Expectations, Hop, KexecScenario, Loader, PayloadFormat,
};
use xtask::setup::Assets;

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
/// says so with `-v`, and `--dry-run` says kexec_load would be used.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_boots_kernel_b_on_one_cpu() {
    let mut scenario = KexecScenario::single(Loader::Ours, 1);
    scenario.hops[0].loader_args = "-v".into();
    scenario.hops[0].before_load = format!(
        "check dry-run-says-kexec-load 0 sh -c '{} --dry-run -l /payload/Image | grep -qF \
         \"syscall: kexec_load: auto: this kernel does not implement kexec_file_load\"'\n",
        Loader::Ours.guest_path()
    );
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        xtask::scenario::check_guest_checks(&outcome.timeline).unwrap(),
        1
    );
    let fell_back = outcome.timeline.lines.iter().any(|l| {
        l.text.contains(
            "kexec: kexec_file_load is not available here (this kernel does not support that \
             kexec call (built without CONFIG_KEXEC_FILE)); falling back to kexec_load",
        )
    });
    assert!(fell_back, "{}", outcome.timeline.tail(60));
    print!("{}", outcome.timeline.summary());
    let verified = outcome
        .timeline
        .lines
        .iter()
        .any(|l| l.text.contains("purgatory: 3 segments verified"));
    assert!(verified, "{}", outcome.timeline.tail(40));
}

/// Our loader, A → B on two CPUs from `Image.gz`: every CPU comes back in B.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_boots_gzip_kernel_b_on_two_cpus() {
    let mut hop = Hop::new(Loader::Ours);
    hop.format = PayloadFormat::Gzip;
    let scenario = KexecScenario {
        hops: vec![hop],
        ..KexecScenario::single(Loader::Ours, 2)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(outcome.expected[0].cpus, 2);
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
/// nothing loaded refused with exit code 3.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_failure_paths_keep_the_loaded_kernel() {
    let k = Loader::Ours.guest_path();
    let mut hop = Hop::new(Loader::Ours);
    hop.before_load = format!(
        "check status-before-load 1 {k} --status\n\
         check load 0 {k} -l /payload/Image --initrd=/payload/initrd --append=first\n\
         check status-after-load 0 {k} --status\n\
         check sysfs-loaded 0 grep -qx 1 /sys/kernel/kexec_loaded\n\
         check bad-image 2 {k} -l /payload/cmdline --initrd=/payload/initrd\n\
         check still-loaded-after-bad-image 0 {k} --status\n\
         check missing-initrd 2 {k} -l /payload/Image --initrd=/no/such/initrd\n\
         check still-loaded-after-missing-initrd 0 {k} --status\n\
         check unload 0 {k} -u\n\
         check status-after-unload 1 {k} --status\n\
         check exec-with-nothing-loaded 3 {k} -e\n"
    );
    let scenario = KexecScenario {
        hops: vec![hop],
        ..KexecScenario::single(Loader::Ours, 1)
    };
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    let passed = xtask::scenario::check_guest_checks(&outcome.timeline).unwrap();
    assert_eq!(passed, 11, "every guest check must have run");
}

/// kdump: kernel A boots with `crashkernel=256M`, our loader loads a crash
/// kernel with `-p` (ELF core header, usable-memory-range), a panic boots it,
/// and the crash kernel sees the old kernel's memory as `/proc/vmcore`.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn ours_kdump_boots_the_crash_kernel_after_a_panic() {
    let mut hop = Hop::new(Loader::Ours);
    hop.crash = true;
    let mut scenario = KexecScenario {
        hops: vec![hop],
        ..KexecScenario::single(Loader::Ours, 2)
    };
    scenario.shape.kernel_args.push("crashkernel=256M".into());
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
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
    let expected = vmcore_loads(&marker("a", "iomem"));
    // fs/proc/vmcore.c sizes /proc/vmcore as the ELF header and program
    // headers, then the merged notes (each part rounded up to a page), then
    // every PT_LOAD rounded out to pages: our PT_LOADs are System RAM minus
    // the crash region and the kernel image, all page aligned already.
    assert!(
        (expected + 0x1000..=expected + (256 << 10)).contains(&size),
        "/proc/vmcore is {size:#x} bytes; kernel A's memory map gives {expected:#x} of \
         PT_LOADs plus a few pages of headers and notes"
    );
}

/// The bytes of the PT_LOADs a crash dump of this memory map must have:
/// every `System RAM` range minus the `Crash kernel` range, plus the kernel
/// image (`Kernel code` start to `Kernel data` end, page aligned), from the
/// `;`-separated /proc/iomem lines of the guest's `iomem` marker.
fn vmcore_loads(iomem: &str) -> u64 {
    let range = |name: &str| -> Vec<(u64, u64)> {
        iomem
            .split(';')
            .filter(|l| l.ends_with(&format!(" : {name}")))
            .map(|l| {
                let (start, end) = l.split_once(' ').unwrap().0.split_once('-').unwrap();
                let parse = |h: &str| u64::from_str_radix(h, 16).unwrap();
                (parse(start), parse(end) + 1)
            })
            .collect()
    };
    let sum = |r: &[(u64, u64)]| r.iter().map(|(s, e)| e - s).sum::<u64>();
    let (ram, crash) = (range("System RAM"), range("Crash kernel"));
    let (code, data) = (range("Kernel code"), range("Kernel data"));
    assert!(!ram.is_empty() && crash.len() == 1, "iomem marker: {iomem}");
    let image = data[0].1.next_multiple_of(0x1000) - code[0].0 / 0x1000 * 0x1000;
    sum(&ram) - sum(&crash) + image
}

#[test]
fn vmcore_loads_from_the_iomem_marker() {
    let iomem = "40000000-7fffffff : System RAM;40210000-4185ffff : Kernel code;\
                 41860000-41a0ffff : Kernel data;6f600000-7f5fffff : Crash kernel;";
    // 1 GiB of RAM - 256 MiB crash region + 24 MiB kernel image.
    assert_eq!(vmcore_loads(iomem), 0x4000_0000 - 0x1000_0000 + 0x180_0000);
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
