//! `cargo xtask fuzz`: every cargo-fuzz target of `crates/kexec-core/fuzz`
//! for a fixed time each, with generated seed corpora.
//!
//! Steps of [`run`]: install cargo-fuzz if missing ([`ensure_cargo_fuzz`]),
//! write the seed corpora (`crates/kexec-core/fuzz/seed-corpus.sh`), build
//! every target once (`cargo fuzz build --sanitizer none`: stable Rust, no
//! AddressSanitizer; kexec-core forbids `unsafe`, so panics and assertion
//! failures are what there is to find), then `cargo fuzz run` each target for
//! the given number of seconds. libFuzzer's output goes to
//! `crates/kexec-core/fuzz/target/xtask-logs/<target>.log`; a failing target
//! stops the run with an error naming the target, the crashing input under
//! `crates/kexec-core/fuzz/artifacts/<target>/` and the command to replay it.
//!
//! cargo-fuzz picks its own target directory (`fuzz/target`) and refuses an
//! empty `CARGO_TARGET_DIR`, so the variable is removed for its commands.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::util::{announce, cargo, run as run_cmd, workspace_root};

/// The cargo-fuzz crate, relative to the workspace root.
pub const FUZZ_DIR: &str = "crates/kexec-core/fuzz";

/// libFuzzer's per-input time limit, seconds: an input slower than this is
/// reported as a `timeout-*` artifact rather than stalling the run.
pub const INPUT_TIMEOUT_SECS: u64 = 30;

/// The cargo-fuzz crate's directory.
pub fn fuzz_dir() -> PathBuf {
    workspace_root().join(FUZZ_DIR)
}

/// `cargo fuzz ARGS` in the fuzz crate, without `CARGO_TARGET_DIR`.
fn cargo_fuzz() -> Command {
    let mut cmd = cargo();
    cmd.arg("fuzz")
        .current_dir(fuzz_dir())
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

/// Makes sure `cargo fuzz` works; installs cargo-fuzz
/// (`cargo install cargo-fuzz --locked`) if it does not.
pub fn ensure_cargo_fuzz() -> Result<()> {
    let ok = cargo_fuzz()
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Ok(());
    }
    announce("installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    run_cmd(cargo().args(["install", "cargo-fuzz", "--locked"]))
        .context("cannot install cargo-fuzz")?;
    Ok(())
}

/// The `[[bin]]` names of a cargo-fuzz `Cargo.toml`, in file order.
pub fn parse_targets(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if !in_bin {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "name" {
            let name = value.trim().trim_matches('"');
            if !name.is_empty() {
                out.push(name.to_owned());
            }
            in_bin = false;
        }
    }
    out
}

/// The fuzz targets, from the fuzz crate's `Cargo.toml` (the same list as
/// `cargo fuzz list`, without running cargo).
pub fn targets() -> Result<Vec<String>> {
    let path = fuzz_dir().join("Cargo.toml");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let targets = parse_targets(&text);
    if targets.is_empty() {
        bail!("no [[bin]] targets in {}", path.display());
    }
    Ok(targets)
}

/// The newest file in `dir` modified at or after `since`: the input libFuzzer
/// saved when it found a crash, leak, timeout or OOM.
fn newest_artifact(dir: &Path, since: SystemTime) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let modified = e.metadata().ok()?.modified().ok()?;
            (modified >= since).then(|| (modified, e.path()))
        })
        .max()
        .map(|(_, p)| p)
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<_> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// libFuzzer's closing `Done N runs in S second(s)` line, if any.
fn summary(log: &str) -> Option<&str> {
    log.lines()
        .rev()
        .find(|l| l.starts_with("Done ") && l.contains(" runs in "))
}

/// The panic (or libFuzzer error) line of a failed run and the line after
/// it, which holds the panic message.
fn cause(log: &str) -> Option<String> {
    let lines: Vec<_> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("panicked at") || l.contains("ERROR: libFuzzer"))?;
    Some(lines[at..lines.len().min(at + 2)].join("\n"))
}

/// Fuzzes one (already built) target for `seconds`.
fn fuzz_one(target: &str, seconds: u64, logs: &Path) -> Result<String> {
    let log_path = logs.join(format!("{target}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = SystemTime::now();
    let status = cargo_fuzz()
        .args(["run", target, "--sanitizer", "none", "--"])
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("cannot start `cargo fuzz run`")?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        return Ok(summary(&text).unwrap_or("done").to_owned());
    }
    let artifacts = fuzz_dir().join("artifacts").join(target);
    match newest_artifact(&artifacts, started) {
        Some(artifact) => bail!(
            "fuzz target `{target}` failed ({status}): crashing input {}\n{}\n\
             replay: (cd {FUZZ_DIR} && cargo fuzz run --sanitizer none {target} {})\n\
             full log: {}",
            artifact.display(),
            cause(&text).unwrap_or_else(|| tail(&text, 30)),
            artifact.display(),
            log_path.display(),
        ),
        None => bail!(
            "fuzz target `{target}` failed ({status}) without an artifact; log: {}\n{}",
            log_path.display(),
            tail(&text, 30)
        ),
    }
}

/// Seeds the corpora, builds every target once and fuzzes each for
/// `seconds_per_target` seconds. Fails on the first target that finds a
/// crash, naming it and the crashing input.
pub fn run(seconds_per_target: u64) -> Result<()> {
    let started = Instant::now();
    ensure_cargo_fuzz()?;
    let targets = targets()?;

    announce("seed corpora (crates/kexec-core/fuzz/seed-corpus.sh)");
    run_cmd(Command::new("sh").arg(fuzz_dir().join("seed-corpus.sh")))?;

    announce("cargo fuzz build --sanitizer none");
    run_cmd(cargo_fuzz().args(["build", "--sanitizer", "none"]))?;

    let logs = fuzz_dir().join("target").join("xtask-logs");
    fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let n = targets.len();
    for (i, target) in targets.iter().enumerate() {
        announce(&format!(
            "fuzz {target} for {seconds_per_target} s ({}/{n})",
            i + 1
        ));
        let t = Instant::now();
        let summary = fuzz_one(target, seconds_per_target, &logs)?;
        println!("    {summary} ({:.1} s)", t.elapsed().as_secs_f64());
    }
    println!(
        "fuzzed {n} targets for {seconds_per_target} s each, no crash ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_a_manifest() {
        let manifest = r#"
[package]
name = "kexec-core-fuzz"

[dependencies]
libfuzzer-sys = "0.4"

[[bin]]
name = "image_header"
path = "fuzz_targets/image_header.rs"
test = false

[[bin]]
path = "fuzz_targets/elfcore.rs"
name = "elfcore"
"#;
        assert_eq!(parse_targets(manifest), ["image_header", "elfcore"]);
    }

    #[test]
    fn the_fuzz_crate_has_its_targets() {
        let targets = targets().unwrap();
        for t in ["image_header", "load_kernel", "iomem", "elfcore"] {
            assert!(targets.iter().any(|x| x == t), "{t} missing: {targets:?}");
        }
        for t in &targets {
            let source = fuzz_dir().join("fuzz_targets").join(format!("{t}.rs"));
            assert!(source.is_file(), "{}", source.display());
        }
    }

    #[test]
    fn libfuzzer_log_helpers() {
        let log = "INFO: seed\n#2 INITED\nDone 2081761 runs in 21 second(s)\n";
        assert_eq!(summary(log), Some("Done 2081761 runs in 21 second(s)"));
        assert_eq!(summary("==1== ERROR: libFuzzer: deadly signal\n"), None);
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        let crashed = "INFO: seed\nthread '<unnamed>' panicked at fuzz_targets/x.rs:5:9:\n\
                       boom\nnote: run with RUST_BACKTRACE=1\n==1== ERROR: libFuzzer: deadly signal\n";
        assert_eq!(
            cause(crashed).as_deref(),
            Some("thread '<unnamed>' panicked at fuzz_targets/x.rs:5:9:\nboom")
        );
        assert_eq!(cause("Done 5 runs in 1 second(s)\n"), None);
    }

    #[test]
    fn newest_artifact_is_the_fresh_one() {
        let dir = std::env::temp_dir().join(format!("xtask-fuzz-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let before = SystemTime::now() - std::time::Duration::from_secs(1);
        assert_eq!(newest_artifact(&dir, before), None);
        fs::write(dir.join("crash-abc"), b"x").unwrap();
        assert_eq!(newest_artifact(&dir, before), Some(dir.join("crash-abc")));
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert_eq!(newest_artifact(&dir, later), None);
        assert_eq!(newest_artifact(&dir.join("missing"), before), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
