//! End-to-end tests of `kexec sim` on the captured sysroot
//! `fixtures/sysroots/virt-1g`: the plan `kexec -l` would make, run in the
//! memory-system model on every configuration.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_assets::synthetic::{fixture_sysroot as sysroot_named, scratch, synthetic_image};

fn sysroot() -> PathBuf {
    sysroot_named("virt-1g")
}

/// A 512 KiB synthetic Image (v3.17+ header: text_offset 0, image_size
/// 8 MiB, LE, 4K pages, anywhere) and a 150 KiB + 100 bytes initrd (a
/// partial last page): big enough that both are sampled.
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let image = synthetic_image(512 << 10, 8 << 20, 0b1010, 37);
    let kernel = dir.join("Image");
    std::fs::write(&kernel, image).unwrap();
    let initrd = dir.join("initrd.img");
    let bytes: Vec<u8> = (0..150u32 * 1024 + 100)
        .map(|i| u8::try_from(i % 253).unwrap())
        .collect();
    std::fs::write(&initrd, bytes).unwrap();
    (kernel, initrd)
}

/// `kexec sim` on the synthetic inputs (written to a directory of the
/// test's own: tests run in parallel) and the virt-1g sysroot.
fn sim(test: &str, extra: &[&str]) -> Output {
    let dir = scratch(test);
    let (kernel, initrd) = inputs(&dir);
    let root = sysroot();
    let mut args = vec![
        "sim".to_owned(),
        kernel.display().to_string(),
        "--initrd".to_owned(),
        initrd.display().to_string(),
        "--append".to_owned(),
        "console=ttyAMA0".to_owned(),
        "--sysroot".to_owned(),
        root.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Command::new(env!("CARGO_BIN_EXE_kexec"))
        .args(&args)
        .env("KEXEC_RS_TEST_SEED", "0x5eed")
        .output()
        .expect("run kexec")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_virt_plan_passes_on_every_configuration() {
    let o = sim(
        "the_virt_plan_passes_on_every_configuration",
        &["--seeds", "2"],
    );
    let text = stdout(&o);
    println!("{text}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let names = [
        "a57-like",
        "a53-vipt",
        "asid-tagged",
        "tx2-slc",
        "n1-idc-dic",
        "idc-only-32",
        "dic-only-128",
        "split-lines",
        "slc-128",
        "falkor-e1041",
    ];
    for n in names {
        assert!(text.contains(&format!("PASS  {n} ")), "{n} missing");
    }
    assert!(!text.contains("FAIL"));
    assert!(text.contains("all 10 configuration(s) passed"));
    // The plan's addresses (virt: RAM at 0x4000_0000) and the sampling.
    assert!(text.contains("kernel entry 0x40000000"));
    assert!(text.contains("(sampled: +0x0..+0x10000, +0x70000..+0x80000)"));
    assert!(text.contains("cycles per operation ASSUMED"));
}

#[test]
fn a_system_cache_ignoring_va_maintenance_is_a_named_violation() {
    let o = sim(
        "a_system_cache_ignoring_va_maintenance_is_a_named_violation",
        &["--config", "slc-ignores-va", "--seeds", "2"],
    );
    let text = stdout(&o);
    println!("{text}");
    assert_eq!(o.status.code(), Some(1));
    assert!(text.contains("FAIL  slc-ignores-va"));
    // The relocation's DC CIVAC never pushes the purgatory's code out of
    // the system cache: its first instruction, fetched from DRAM at the
    // branch to it, is garbage.
    assert!(text.contains("purgatory at 0x42250000,"), "{text}");
    assert!(
        text.contains(
            "VIOLATION: stale code executed at 0x42250000 in I-cache (tag 0) \
             [config slc-ignores-va, seed 0]"
        ),
        "{text}"
    );
    assert!(text.contains("timeline (step: event)"));
    assert!(text.contains("1 of 1 configuration(s) FAILED: slc-ignores-va"));
}

#[test]
fn json_names_rule_address_level_and_timeline() {
    let o = sim(
        "json_names_rule_address_level_and_timeline",
        &[
            "--config",
            "a57-like,slc-ignores-va",
            "--seeds",
            "1",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["schema"], "kexec-rs/sim/v1");
    assert_eq!(v["passed"], false);
    assert_eq!(v["entry"], "0x40000000");
    let configs = v["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
    assert_eq!(configs[0]["name"], "a57-like");
    assert_eq!(configs[0]["passed"], true);
    assert!(configs[0]["total_cycles"].as_u64().unwrap() > 0);
    let phases: Vec<&str> = configs[0]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["relocate", "purgatory"]);
    assert!(configs[0]["phases"][1]["dc_civac"].as_u64().unwrap() > 0);
    let viol = &configs[1]["violation"];
    assert_eq!(configs[1]["passed"], false);
    // As in the text test: the purgatory's first instruction.
    assert_eq!(viol["rule"], "StaleCodeExecuted");
    assert_eq!(viol["rule_text"], "stale code executed");
    assert_eq!(v["purgatory"], "0x42250000");
    assert_eq!(viol["address"], "0x42250000");
    assert_eq!(viol["location"], "I-cache (tag 0)");
    assert_eq!(viol["seed"], 0);
    assert!(!viol["timeline"].as_array().unwrap().is_empty());
    let kernel = &v["segments"][0];
    assert_eq!(kernel["kind"], "kernel");
    assert_eq!(kernel["bufsz"], 512 * 1024);
    assert_eq!(kernel["simulated_bytes"], 128 * 1024);
}

#[test]
fn no_verify_runs_the_other_path() {
    let o = sim(
        "no_verify_runs_the_other_path",
        &["-i", "--config", "a53-vipt", "--seeds", "2"],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("flags 0x1"), "{text}");
}

#[test]
fn an_unknown_configuration_is_bad_input() {
    let o = sim(
        "an_unknown_configuration_is_bad_input",
        &["--config", "nope"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("slc-ignores-va"), "{err}");
}

#[test]
fn a_crash_load_needs_a_crash_region() {
    // virt-1g was captured without crashkernel=: the loader's own error.
    let o = sim("a_crash_load_needs_a_crash_region", &["-p"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Crash kernel"));
}

#[test]
fn a_crash_plan_is_simulated_from_the_purgatory_alone() {
    let dir = scratch("a_crash_plan_is_simulated_from_the_purgatory_alone");
    let (kernel, initrd) = inputs(&dir);
    let o = Command::new(env!("CARGO_BIN_EXE_kexec"))
        .args(["sim", "-p"])
        .arg(&kernel)
        .arg("--initrd")
        .arg(&initrd)
        .arg("--sysroot")
        .arg(sysroot_named("virt-1g-crashkernel"))
        .args(["--config", "a57-like,tx2-slc", "--seeds", "2"])
        .env("KEXEC_RS_TEST_SEED", "0x5eed")
        .output()
        .expect("run kexec");
    let text = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("(crash load)"), "{text}");
    assert!(text.contains("the purgatory alone"), "{text}");
    assert!(text.contains("elfcorehdr"), "{text}");
    assert!(text.contains("all 2 configuration(s) passed"), "{text}");
}

#[test]
fn a_configuration_file_is_accepted() {
    let dir = scratch("a_configuration_file_is_accepted.conf");
    let conf = dir.join("board.conf");
    std::fs::write(
        &conf,
        "# a made-up board\nname = board-x\nbase = tx2-slc\nd_line = 128\nicache = vipt:8\n",
    )
    .unwrap();
    let spec = format!("{},slc-128", conf.display());
    let o = sim(
        "a_configuration_file_is_accepted",
        &["--config", &spec, "--seeds", "1"],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS  board-x (CTR_EL0=0x8005"), "{text}");
    assert!(
        text.contains("from a configuration file (based on tx2-slc)"),
        "{text}"
    );
    std::fs::write(&conf, "name = board-x\nd_line = 48\n").unwrap();
    let o = sim(
        "a_configuration_file_is_accepted",
        &["--config", &conf.display().to_string()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2: bad value for d_line"));
}
