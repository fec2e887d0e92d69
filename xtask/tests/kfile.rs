//! QEMU end-to-end tests of `kexec_file_load`, on the kernel we build with
//! `CONFIG_KEXEC_FILE`, `KEXEC_SIG` and lockdown (`cargo xtask test-kernel`,
//! xtask/src/kbuild.rs). `#[ignore]`d in a plain `cargo test`; `cargo xtask
//! test` builds the kernel (cached), then runs them.

use xtask::kbuild::{self, TEST_KERNEL};
use xtask::qemu::Timeline;
use xtask::scenario::{check_guest_checks, Hop, KexecScenario, Loader, PayloadFormat};
use xtask::setup::Assets;

fn assets() -> Assets {
    Assets::existing().unwrap_or_else(|e| panic!("{e:#}"))
}

fn test_kernel() -> kbuild::TestKernel {
    kbuild::cached().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A scenario on the test kernel: kernel A and every B are ours.
fn on_test_kernel(hops: Vec<Hop>) -> KexecScenario {
    KexecScenario {
        kernel_a: Some(TEST_KERNEL.into()),
        hops: hops
            .into_iter()
            .map(|mut h| {
                h.kernel = Some(TEST_KERNEL.into());
                h
            })
            .collect(),
        ..KexecScenario::single(Loader::Ours, 2)
    }
}

/// Whether kernel `stage`'s console (between its boot and the next) has a
/// line containing `text`.
fn said(timeline: &Timeline, text: &str) -> bool {
    timeline.lines.iter().any(|l| l.text.contains(text))
}

/// Shell helper: `says NAME WANT_RC TEXT CMD…` runs CMD (its output goes
/// to the console too) and passes when it exits WANT_RC and its output
/// contains TEXT.
const SAYS_HELPER: &str = r#"says() {
  name=$1; want=$2; text=$3; shift 3
  "$@" >/tmp/says.out 2>&1; rc=$?
  cat /tmp/says.out
  if [ "$rc" = "$want" ] && grep -qF "$text" /tmp/says.out; then say check-ok "$name"
  else say check-fail "$name rc=$rc want=$want text=$text: $(head -c 400 /tmp/says.out | tr '\n' ' ')"; fi
}
"#;

/// `-s` from `Image.gz` (decompressed into a sealed memfd) A → B, then the
/// default (auto) from the plain Image B → C: both pick kexec_file_load
/// (`--verbose` says so), each kernel gets its initrd and marker. Before the first
/// load: `-s` load, `--status`, `-s -u` unload; auto with `--dtb` and `-c`
/// load with kexec_load (on a kernel that has both calls).
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn file_load_gz_with_s_then_auto_boots_b_and_c() {
    let k = Loader::Ours.guest_path();
    let mut first = Hop::new(Loader::Ours);
    first.format = PayloadFormat::Gzip;
    first.loader_args = "-s --verbose".into();
    let load = "--initrd=/payload/initrd --append=x";
    first.before_load = format!(
        "{SAYS_HELPER}\
         check s-load 0 {k} -s -l /payload/Image.gz {load}\n\
         check s-status 1 {k} -l --status\n\
         check s-unload 0 {k} -s -u\n\
         check s-unloaded 0 {k} -l --status\n\
         says dtb-takes-kexec-load 0 'auto: only kexec_load honours --dtb' \
           {k} --verbose -l /payload/Image.gz --dtb=/sys/firmware/fdt {load}\n\
         check dtb-loaded 1 {k} -l --status\n\
         says c-takes-kexec-load 0 'using kexec_load' {k} -c --verbose -l /payload/Image.gz {load}\n\
         check c-unload 0 {k} -c -u\n"
    );
    let mut second = Hop::new(Loader::Ours);
    second.loader_args = "--verbose".into();
    let outcome = on_test_kernel(vec![first, second])
        .run(&assets())
        .unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(check_guest_checks(&outcome.timeline).unwrap(), 8);
    let t = &outcome.timeline;
    assert!(
        said(
            t,
            "using kexec_file_load with the gzip-compressed Image decompressed into a sealed memfd"
        ),
        "{}",
        t.tail(60)
    );
    assert!(
        said(t, "kexec: auto: kexec_file_load first"),
        "{}",
        t.tail(60)
    );
    assert!(
        said(t, "using kexec_file_load with the file itself"),
        "{}",
        t.tail(60)
    );
    assert!(!said(t, "); falling back to kexec_load"), "{}", t.tail(60));
}

/// Kernel A booted with `lockdown=integrity`: `-c` (kexec_load) is refused
/// with the lockdown explanation; the unsigned, the wrongly signed and the
/// compressed Image are refused with the signature explained and no
/// fallback; nothing gets loaded; unloading works by default
/// (`KEXEC_FILE_UNLOAD` has no lockdown check) and not with `-c`; then auto
/// loads the signed Image and B boots.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn lockdown_refuses_all_but_the_signed_image() {
    let tk = test_kernel();
    let k = Loader::Ours.guest_path();
    let mut hop = Hop::new(Loader::Ours);
    hop.payload = Some(tk.signed());
    hop.loader_args = "--verbose".into();
    hop.extra_files = vec![
        ("/payload/Image.unsigned".into(), tk.image()),
        ("/payload/Image.wrong-signed".into(), tk.wrong_signed()),
        ("/payload/Image.gz".into(), tk.image_gz()),
    ];
    let load = "--initrd=/payload/initrd --append=x";
    hop.before_load = format!(
        "{SAYS_HELPER}\
         mount -t securityfs securityfs /sys/kernel/security\n\
         check lockdown-integrity 0 grep -qF '[integrity]' /sys/kernel/security/lockdown\n\
         says kexec-load 3 'the kernel is locked down' {k} -c -l /payload/Image {load}\n\
         says unsigned 3 'it has no PE (Authenticode) signature; not falling back to kexec_load' \
           {k} -l /payload/Image.unsigned {load}\n\
         says wrong-signed 3 'its PE signature is not from a key the kernel trusts' \
           {k} -l /payload/Image.wrong-signed {load}\n\
         says gz 3 'a decompressed Image carries no PE signature' \
           {k} -s -l /payload/Image.gz {load}\n\
         says dtb-needs-kexec-load 3 'the kernel is locked down' \
           {k} -l /payload/Image --dtb=/sys/firmware/fdt {load}\n\
         check nothing-loaded 0 {k} -l --status\n\
         check unload-auto 0 {k} -u\n\
         says unload-kexec-load 3 'the kernel is locked down' {k} -c -u\n\
         says dry-run-says 0 'lockdown will refuse it' \
           {k} --dry-run -l /payload/Image.unsigned {load}\n"
    );
    let mut scenario = on_test_kernel(vec![hop]);
    scenario.shape.kernel_args.push("lockdown=integrity".into());
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    assert_eq!(check_guest_checks(&outcome.timeline).unwrap(), 10);
    let t = &outcome.timeline;
    assert!(
        said(t, "the kernel is locked down (integrity)"),
        "{}",
        t.tail(60)
    );
    assert!(!said(t, "); falling back to kexec_load"), "{}", t.tail(60));
}

/// `-s -p`: the kernel loads the crash kernel (and makes its ELF core
/// header itself); a panic boots it and `/proc/vmcore` is a readable ELF.
#[test]
#[ignore = "boots QEMU; run by `cargo xtask test`"]
fn file_load_crash_kernel_boots_on_panic() {
    let mut hop = Hop::new(Loader::Ours);
    hop.crash = true;
    hop.loader_args = "-s".into();
    let mut scenario = on_test_kernel(vec![hop]);
    scenario.shape.kernel_args.push("crashkernel=256M".into());
    let outcome = scenario.run(&assets()).unwrap_or_else(|e| panic!("{e:#}"));
    print!("{}", outcome.timeline.summary());
    let marker = |key: &str| {
        outcome
            .timeline
            .marker("b", key)
            .map(|m| m.value.clone())
            .unwrap_or_else(|| panic!("no b:{key} marker\n{}", outcome.timeline.tail(60)))
    };
    assert_eq!(
        marker("vmcore-magic"),
        "7f454c46",
        "/proc/vmcore is not ELF"
    );
    let size: u64 = marker("vmcore").parse().expect("vmcore size");
    assert!(size > 512 << 20, "/proc/vmcore is only {size} bytes");
}

/// The build's configuration check can fail: a fragment asking for an
/// option whose dependencies are not met (`PCI_HOST_GENERIC` without `PCI`)
/// stops the build with a message naming it.
#[test]
#[ignore = "runs the kernel's Kconfig; run by `cargo xtask test`"]
fn an_option_the_configuration_drops_stops_the_build() {
    let src = kbuild::source_tree().unwrap_or_else(|e| panic!("{e:#}"));
    let work = xtask::scenario::WorkDir::new("kconfig").unwrap();
    let fragment = format!("{}\nCONFIG_PCI_HOST_GENERIC=y\n", kbuild::FRAGMENT);
    let err = kbuild::configure(
        &src,
        &work.0.join("build"),
        &fragment,
        &work.0.join("trusted.crt"),
    )
    .expect_err("PCI_HOST_GENERIC needs PCI, which allnoconfig leaves off");
    let text = format!("{err:#}");
    assert!(
        text.contains("CONFIG_PCI_HOST_GENERIC=y wanted, the configuration has"),
        "{text}"
    );
    // Exactly that option: the committed fragment itself is satisfiable.
    assert_eq!(text.matches(" wanted, ").count(), 1, "{text}");
}
