//! `cargo xtask fuzz`: every cargo-fuzz target of `crates/kexec-core/fuzz`
//! for a fixed time each, with seed corpora, dictionaries and a committed
//! minimised corpus.
//!
//! Steps of [`run`]: install cargo-fuzz if missing ([`ensure_cargo_fuzz`]),
//! write the seed corpora (`crates/kexec-core/fuzz/seed-corpus.sh`: synthetic
//! containers, the committed fixtures, and the first bytes of the downloaded
//! Debian kernels), build every target once (`cargo fuzz build --sanitizer
//! none`: stable Rust, no AddressSanitizer; kexec-core forbids `unsafe`, so
//! panics and assertion failures are what there is to find), then `cargo fuzz
//! run` each target for the given number of seconds on `corpus/<target>`
//! (scratch, where new inputs go) and `corpus-min/<target>` (committed), with
//! the target's dictionary ([`DICTIONARIES`]), and print a table of
//! [`RunStats`]: executions, executions per second, coverage before and after,
//! corpus size. libFuzzer's output goes to
//! `crates/kexec-core/fuzz/target/xtask-logs/<target>.log`; a failing target
//! stops the run with an error naming the target, the crashing input under
//! `crates/kexec-core/fuzz/artifacts/<target>/` and the command to replay it.
//!
//! [`update_corpus_min`] (`cargo xtask fuzz --update-corpus-min`) rebuilds the
//! committed corpus: it fuzzes from the commit-safe seeds only (no kernel
//! bytes) in a scratch directory, then lets libFuzzer's `-merge=1` keep the
//! inputs that add coverage.
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

/// The committed minimised corpus, one directory per target, under [`FUZZ_DIR`].
pub const CORPUS_MIN: &str = "corpus-min";

/// Each target's libFuzzer dictionary (`-dict=`), under [`FUZZ_DIR`]`/dict`:
/// magics, property names and keywords the parsers compare against.
pub const DICTIONARIES: &[(&str, &str)] = &[
    ("image_header", "kernel.dict"),
    ("decompress_gzip", "kernel.dict"),
    ("decompress_zstd", "kernel.dict"),
    ("decompress_xz", "kernel.dict"),
    ("decompress_lz4", "kernel.dict"),
    ("zboot", "kernel.dict"),
    ("pe_uki", "kernel.dict"),
    ("elf", "kernel.dict"),
    ("load_kernel", "kernel.dict"),
    ("fdt_chosen", "fdt.dict"),
    ("iomem", "iomem.dict"),
    ("cmdline", "cmdline.dict"),
    ("elfcore", "elfcore.dict"),
    ("vmcore", "vmcore.dict"),
    ("machine", "machine.dict"),
    ("boot_entry", "bootentry.dict"),
];

/// The dictionary of `target`, if it has one.
pub fn dictionary(target: &str) -> Option<PathBuf> {
    DICTIONARIES
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, file)| fuzz_dir().join("dict").join(file))
}

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

/// The panic (or libFuzzer error) line of a failed run and the line after
/// it, which holds the panic message.
fn cause(log: &str) -> Option<String> {
    let lines: Vec<_> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("panicked at") || l.contains("ERROR: libFuzzer"))?;
    Some(lines[at..lines.len().min(at + 2)].join("\n"))
}

/// What one libFuzzer run did, read from its log: the `INITED` and last
/// status lines (`cov:` edges, `ft:` features, `corp:` units/bytes) and the
/// `-print_final_stats=1` lines (`stat::number_of_executed_units`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Inputs executed.
    pub execs: u64,
    /// Average executions per second.
    pub execs_per_sec: u64,
    /// Coverage (edges, `cov:`) after loading the corpus, and at the end.
    pub cov: (u64, u64),
    /// Features (`ft:`) after loading the corpus, and at the end.
    pub ft: (u64, u64),
    /// Corpus at the end, as libFuzzer prints it (`units/bytes`).
    pub corpus: String,
    /// Inputs added to the corpus during the run.
    pub new_units: u64,
}

/// The number after `key` (e.g. `cov: `) in a libFuzzer status line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    line[at..].split_whitespace().next()
}

/// The value of a `stat::NAME: VALUE` line.
fn final_stat(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| {
            l.strip_prefix("stat::")?
                .strip_prefix(name)?
                .strip_prefix(':')
        })
        .find_map(|v| v.trim().parse().ok())
}

/// Parses a libFuzzer log (see [`RunStats`]); `None` if it has no status line.
pub fn parse_stats(log: &str) -> Option<RunStats> {
    let status: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(" cov: "))
        .collect();
    let last = status.last()?;
    let first = status.iter().find(|l| l.contains("INITED")).unwrap_or(last);
    let num = |line: &str, key| field(line, key).and_then(|v| v.parse().ok()).unwrap_or(0);
    let execs = final_stat(log, "number_of_executed_units")
        .or_else(|| last[1..].split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(RunStats {
        execs,
        execs_per_sec: final_stat(log, "average_exec_per_sec").unwrap_or(0),
        cov: (num(first, "cov: "), num(last, "cov: ")),
        ft: (num(first, "ft: "), num(last, "ft: ")),
        corpus: field(last, "corp: ").unwrap_or("?").to_owned(),
        new_units: final_stat(log, "new_units_added").unwrap_or(0),
    })
}

/// The table `cargo xtask fuzz` prints: one row per target.
pub fn stats_table(rows: &[(String, RunStats)]) -> String {
    let mut out = format!(
        "{:<16} {:>10} {:>8} {:>16} {:>16} {:>6} {:>12}\n",
        "target", "execs", "exec/s", "cov (new)", "ft (new)", "+units", "corpus"
    );
    for (target, s) in rows {
        let grown = |(a, b): (u64, u64)| format!("{b} (+{})", b.saturating_sub(a));
        out.push_str(&format!(
            "{:<16} {:>10} {:>8} {:>16} {:>16} {:>6} {:>12}\n",
            target,
            s.execs,
            s.execs_per_sec,
            grown(s.cov),
            grown(s.ft),
            s.new_units,
            s.corpus
        ));
    }
    out
}

/// `corpus/<target>` (scratch: new inputs go there) and the committed
/// `corpus-min/<target>`, created if missing.
pub(crate) fn corpora(target: &str) -> Result<Vec<PathBuf>> {
    let dirs = vec![
        fuzz_dir().join("corpus").join(target),
        fuzz_dir().join(CORPUS_MIN).join(target),
    ];
    for dir in &dirs {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(dirs)
}

/// `cargo fuzz run TARGET CORPORA… -- LIBFUZZER_ARGS…` with the target's
/// dictionary.
fn run_command(target: &str, corpora: &[PathBuf], libfuzzer_args: &[String]) -> Command {
    let mut cmd = cargo_fuzz();
    cmd.args(["run", "--sanitizer", "none", target])
        .args(corpora)
        .arg("--")
        .args(libfuzzer_args);
    if let Some(dict) = dictionary(target) {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd
}

/// Fuzzes one (already built) target for `seconds` on `corpora` (the
/// first receives new inputs).
pub(crate) fn fuzz_one(
    target: &str,
    seconds: u64,
    corpora: &[PathBuf],
    logs: &Path,
) -> Result<RunStats> {
    let log_path = logs.join(format!("{target}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = SystemTime::now();
    let args = [
        format!("-max_total_time={seconds}"),
        format!("-timeout={INPUT_TIMEOUT_SECS}"),
        "-print_final_stats=1".to_owned(),
    ];
    let status = run_command(target, corpora, &args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("cannot start `cargo fuzz run`")?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        return Ok(parse_stats(&text).unwrap_or_default());
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

/// Writes the seed corpora under `corpus` (`seed-corpus.sh`), with the
/// kernel-derived seeds unless `kernels` is false.
pub(crate) fn seed(corpus: &Path, kernels: bool) -> Result<()> {
    let mut cmd = Command::new("sh");
    cmd.arg(fuzz_dir().join("seed-corpus.sh"))
        .env("KEXEC_RS_FUZZ_CORPUS", corpus);
    if !kernels {
        cmd.arg("--no-kernels");
    }
    run_cmd(&mut cmd)
}

/// Builds every target once; returns the log directory.
pub(crate) fn build() -> Result<PathBuf> {
    announce("cargo fuzz build --sanitizer none");
    run_cmd(cargo_fuzz().args(["build", "--sanitizer", "none"]))?;
    let logs = fuzz_dir().join("target").join("xtask-logs");
    fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    Ok(logs)
}

/// Seeds the corpora, builds every target once and fuzzes each for
/// `seconds_per_target` seconds, then prints the [`stats_table`]. Fails on
/// the first target that finds a crash, naming it and the crashing input.
pub fn run(seconds_per_target: u64) -> Result<()> {
    let started = Instant::now();
    ensure_cargo_fuzz()?;
    let targets = targets()?;

    announce("seed corpora (crates/kexec-core/fuzz/seed-corpus.sh)");
    seed(&fuzz_dir().join("corpus"), true)?;
    let logs = build()?;

    let n = targets.len();
    let mut rows = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        announce(&format!(
            "fuzz {target} for {seconds_per_target} s ({}/{n})",
            i + 1
        ));
        let t = Instant::now();
        let stats = fuzz_one(target, seconds_per_target, &corpora(target)?, &logs)?;
        println!(
            "    {} runs, {}/s, cov {} ft {} ({:.1} s)",
            stats.execs,
            stats.execs_per_sec,
            stats.cov.1,
            stats.ft.1,
            t.elapsed().as_secs_f64()
        );
        rows.push((target.clone(), stats));
    }
    print!("{}", stats_table(&rows));
    println!(
        "fuzzed {n} targets for {seconds_per_target} s each, no crash ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Rebuilds the committed `corpus-min/<target>` of every target: seeds
/// without kernel bytes go to a scratch corpus, each target is fuzzed there
/// for `seconds_per_target` (with the old minimised corpus read-only), and
/// `-merge=1` keeps the inputs of the scratch and old corpora that add
/// coverage; `prune` keeps it small.
pub fn update_corpus_min(seconds_per_target: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let targets = targets()?;
    let scratch = fuzz_dir().join("target").join("cmin");
    let _ = fs::remove_dir_all(&scratch);
    announce("seed corpora without kernel bytes (seed-corpus.sh --no-kernels)");
    seed(&scratch.join("seeds"), false)?;
    let logs = build()?;
    for target in &targets {
        let min = fuzz_dir().join(CORPUS_MIN).join(target);
        let seeds = scratch.join("seeds").join(target);
        let found = scratch.join("found").join(target);
        let old = scratch.join("old").join(target);
        for dir in [&min, &seeds, &found, &scratch.join("old")] {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::rename(&min, &old).with_context(|| format!("cannot move {}", min.display()))?;
        fs::create_dir_all(&min)?;
        announce(&format!(
            "fuzz {target} for {seconds_per_target} s from the seeds"
        ));
        let inputs = [found.clone(), seeds, old];
        fuzz_one(target, seconds_per_target, &inputs, &logs)?;
        announce(&format!("merge into {CORPUS_MIN}/{target}"));
        let mut merge = run_command(
            target,
            &[std::slice::from_ref(&min), &inputs[..]].concat(),
            &["-merge=1".to_owned(), format!("-max_len={MAX_MIN_INPUT}")],
        );
        let log = File::create(logs.join(format!("{target}-merge.log")))?;
        merge.stdout(log.try_clone()?).stderr(log);
        run_cmd(&mut merge)?;
        prune(&min)?;
        let (n, bytes) = dir_size(&min)?;
        println!("    {CORPUS_MIN}/{target}: {n} inputs, {bytes} bytes");
    }
    Ok(())
}

/// Largest input kept in the committed corpus, bytes.
pub const MAX_MIN_INPUT: u64 = 8 * 1024;

/// Bytes the committed corpus may hold per target (16 targets: the whole
/// committed corpus stays under 2.4 MiB; 1.9 MiB at present).
pub const MIN_CORPUS_BUDGET: u64 = 150 * 1024;

/// Keeps `dir` within [`MAX_MIN_INPUT`] per input and [`MIN_CORPUS_BUDGET`]
/// in all, dropping the largest inputs first.
fn prune(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        files.push((entry.metadata()?.len(), entry.path()));
    }
    files.sort();
    let mut total = 0;
    for (len, path) in files {
        if len > MAX_MIN_INPUT || total + len > MIN_CORPUS_BUDGET {
            fs::remove_file(&path)?;
        } else {
            total += len;
        }
    }
    Ok(())
}

/// Number of files and bytes in `dir`.
fn dir_size(dir: &Path) -> Result<(usize, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        bytes += entry?.metadata()?.len();
        n += 1;
    }
    Ok((n, bytes))
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
        for t in [
            "image_header",
            "load_kernel",
            "iomem",
            "elfcore",
            "vmcore",
            "boot_entry",
        ] {
            assert!(targets.iter().any(|x| x == t), "{t} missing: {targets:?}");
        }
        for t in &targets {
            let source = fuzz_dir().join("fuzz_targets").join(format!("{t}.rs"));
            assert!(source.is_file(), "{}", source.display());
        }
    }

    #[test]
    fn libfuzzer_log_helpers() {
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
    fn stats_from_a_libfuzzer_log() {
        let log = "INFO: Seed: 1\n\
                   #2\tINITED cov: 120 ft: 300 corp: 5/2048b exec/s: 0 rss: 40Mb\n\
                   #1024\tNEW    cov: 125 ft: 320 corp: 6/2100b lim: 4096 exec/s: 512 rss: 41Mb\n\
                   #40000\tDONE   cov: 130 ft: 355 corp: 9/3Kb lim: 4096 exec/s: 2000 rss: 42Mb\n\
                   Done 40000 runs in 20 second(s)\n\
                   stat::number_of_executed_units: 40000\n\
                   stat::average_exec_per_sec:     2000\n\
                   stat::new_units_added:          4\n";
        let stats = parse_stats(log).unwrap();
        assert_eq!(
            stats,
            RunStats {
                execs: 40000,
                execs_per_sec: 2000,
                cov: (120, 130),
                ft: (300, 355),
                corpus: "9/3Kb".into(),
                new_units: 4,
            }
        );
        let table = stats_table(&[("iomem".into(), stats)]);
        assert!(
            table.lines().nth(1).unwrap().contains("130 (+10)"),
            "{table}"
        );
        assert_eq!(parse_stats("no status\n"), None);
    }

    #[test]
    fn every_target_has_a_dictionary_file_and_committed_corpus_is_small() {
        for target in targets().unwrap() {
            let dict = dictionary(&target).unwrap_or_else(|| panic!("{target}: no dictionary"));
            assert!(dict.is_file(), "{}", dict.display());
        }
        let min = fuzz_dir().join(CORPUS_MIN);
        let mut total = 0;
        for dir in fs::read_dir(&min).into_iter().flatten() {
            let dir = dir.unwrap().path();
            let mut target_total = 0;
            for file in fs::read_dir(&dir).unwrap() {
                let len = file.unwrap().metadata().unwrap().len();
                assert!(len <= MAX_MIN_INPUT, "{}", dir.display());
                target_total += len;
                total += len;
            }
            assert!(target_total <= MIN_CORPUS_BUDGET, "{}", dir.display());
        }
        assert!(total < 2 << 20, "{CORPUS_MIN} holds {total} bytes");
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
