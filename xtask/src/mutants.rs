//! `cargo xtask mutants`: mutation testing of the pure core with
//! cargo-mutants (installed from crates.io when missing).
//!
//! cargo-mutants changes one expression at a time (a `==` into `!=`, a
//! function body into `Default::default()`, …), rebuilds and runs the tests;
//! a mutant no test notices ("missed") is a check that was never shown to
//! work. The code under test is split into [`GROUPS`], each with the test
//! targets that exercise it, so a mutant runs only the tests that can kill
//! it. Every missed mutant must be killed by a new test or listed, with the
//! reason it is equivalent, in [`ALLOW_FILE`]; anything else fails the run.
//!
//! Reports: `target/mutants/<group>/mutants.out/` (cargo-mutants' own:
//! `caught.txt`, `missed.txt`, `timeout.txt`, `unviable.txt`,
//! `outcomes.json`) and a summary table on stdout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::util::{announce, cargo, run, target_dir, which, workspace_root};

/// Mutants explained as equivalent (or otherwise not worth a test), one per
/// line: `<file>: <mutation>  # reason`, as cargo-mutants names them without
/// the line and column (which move with every edit).
pub const ALLOW_FILE: &str = "xtask/mutants-allow.txt";

/// Code under mutation and the test targets that exercise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Name on the command line and in the report.
    pub name: &'static str,
    /// Cargo package holding the files.
    pub package: &'static str,
    /// Files mutated (globs relative to the workspace root).
    pub files: &'static [&'static str],
    /// `cargo test` target selection for every mutant of the group (given to
    /// the build too, so a mutant rebuilds only these test binaries).
    pub tests: &'static [&'static str],
}

/// Every group, the plan's rule checker first (the part `cargo xtask test`
/// runs on every CI run).
pub const GROUPS: [Group; 15] = [
    Group {
        name: "plan-rules",
        package: "kexec-core",
        files: &["crates/kexec-core/src/plan/rules.rs"],
        tests: &["--lib", "--test=plan_rules"],
    },
    Group {
        name: "planner",
        package: "kexec-core",
        files: &[
            "crates/kexec-core/src/plan/place.rs",
            "crates/kexec-core/src/plan/builder.rs",
            "crates/kexec-core/src/plan/model.rs",
            "crates/kexec-core/src/digest.rs",
            "crates/kexec-core/src/purgatory.rs",
        ],
        tests: &[
            "--lib",
            "--test=plan_rules",
            "--test=plan_props",
            "--test=plan_inputs",
            "--test=plan_fdt_fixture",
            "--test=efi_stub_entry",
        ],
    },
    Group {
        name: "fdt",
        package: "kexec-core",
        files: &["crates/kexec-core/src/fdt/*.rs"],
        tests: &[
            "--lib",
            "--test=plan_fdt_fixture",
            "--test=plan_inputs",
            "--test=handover_props",
        ],
    },
    Group {
        name: "cmdline",
        package: "kexec-core",
        files: &["crates/kexec-core/src/cmdline.rs"],
        tests: &["--lib", "--test=plan_inputs"],
    },
    Group {
        name: "iomem",
        package: "kexec-core",
        files: &["crates/kexec-core/src/iomem/mod.rs"],
        tests: &["--lib", "--test=plan_inputs"],
    },
    Group {
        name: "elfcore",
        package: "kexec-core",
        files: &["crates/kexec-core/src/elfcore/*.rs"],
        tests: &["--lib"],
    },
    Group {
        name: "vmcore",
        package: "kexec-core",
        files: &[
            "crates/kexec-core/src/vmcore/mod.rs",
            "crates/kexec-core/src/vmcore/notes.rs",
            "crates/kexec-core/src/vmcore/vmcoreinfo.rs",
            "crates/kexec-core/src/vmcore/printk.rs",
            "crates/kexec-core/src/vmcore/summary.rs",
        ],
        tests: &["--lib", "--test=vmcore_props"],
    },
    Group {
        name: "cli",
        package: "kexec",
        files: &[
            "crates/kexec/src/cli/order.rs",
            "crates/kexec/src/cli/mod.rs",
            "crates/kexec/src/plan_input.rs",
            "crates/kexec/src/kfile.rs",
        ],
        tests: &["--lib"],
    },
    Group {
        name: "doctor",
        package: "kexec",
        files: &[
            "crates/kexec/src/doctor/checks.rs",
            "crates/kexec/src/doctor/kconfig.rs",
            "crates/kexec/src/doctor/security.rs",
            "crates/kexec/src/doctor/platform.rs",
            "crates/kexec/src/doctor/cpus.rs",
            "crates/kexec/src/firmware.rs",
            "crates/kexec/src/hints.rs",
        ],
        tests: &["--lib"],
    },
    Group {
        name: "bootentry",
        package: "kexec-core",
        files: &["crates/kexec-core/src/bootentry/*.rs"],
        tests: &["--lib", "--test=bootentry_props"],
    },
    Group {
        name: "machine",
        package: "kexec-core",
        files: &["crates/kexec-core/src/machine/*.rs"],
        tests: &["--lib", "--test=machine_props", "--test=plan_fuzz_seeds"],
    },
    Group {
        name: "handoff-params",
        package: "handoff",
        files: &["crates/handoff/src/params.rs"],
        tests: &["--lib"],
    },
    Group {
        name: "handoff-smp",
        package: "handoff",
        files: &["crates/handoff/src/smp.rs", "crates/handoff/src/verify.rs"],
        tests: &["--lib"],
    },
    Group {
        name: "cachesim-check",
        package: "cachesim",
        files: &["crates/cachesim/src/check.rs"],
        tests: &[
            "--lib",
            "--test=replays",
            "--test=sufficient",
            "--test=litmus",
            "--test=check_states",
        ],
    },
    Group {
        name: "purgatory-paths",
        package: "purgatory-image",
        files: &[
            "crates/purgatory-image/src/sequences.rs",
            "crates/purgatory-image/src/lang.rs",
        ],
        tests: &["--lib"],
    },
];

/// The group with this name.
pub fn group(name: &str) -> Result<Group> {
    GROUPS
        .iter()
        .copied()
        .find(|g| g.name == name)
        .with_context(|| {
            let names: Vec<_> = GROUPS.iter().map(|g| g.name).collect();
            format!("no mutants group {name:?}; groups: {}", names.join(", "))
        })
}

/// What one group's run found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Mutants tested (caught + missed + timeout; unviable ones did not build).
    pub tested: usize,
    /// Killed by a test.
    pub caught: usize,
    /// Made a test time out (counted as killed).
    pub timeout: usize,
    /// Did not compile (not counted).
    pub unviable: usize,
    /// Survived, but explained in [`ALLOW_FILE`].
    pub allowed: Vec<String>,
    /// Survived with no explanation: the run fails.
    pub unexplained: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// A mutant's name without its `:line:col`, the key of [`ALLOW_FILE`].
pub fn stable_name(line: &str) -> String {
    let line = line.trim();
    // "path/file.rs:12:34: replace ..." -> "path/file.rs: replace ..."
    let mut parts = line.splitn(4, ':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(l), Some(c), Some(rest))
            if l.chars().all(|ch| ch.is_ascii_digit())
                && c.chars().all(|ch| ch.is_ascii_digit()) =>
        {
            format!("{file}:{rest}")
        }
        _ => line.to_owned(),
    }
}

/// The allow-list: stable mutant name -> reason.
pub fn parse_allow_list(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line
            .split_once("  # ")
            .with_context(|| format!("{ALLOW_FILE}:{}: no `  # reason`", i + 1))?;
        if reason.trim().len() < 10 {
            bail!("{ALLOW_FILE}:{}: the reason must say why", i + 1);
        }
        out.insert(stable_name(name), reason.trim().to_owned());
    }
    Ok(out)
}

/// Sort a group's `missed.txt` lines into allowed and unexplained.
pub fn judge(missed: &str, allow: &BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
    let (mut allowed, mut unexplained) = (Vec::new(), Vec::new());
    for line in missed.lines().filter(|l| !l.trim().is_empty()) {
        let name = stable_name(line);
        if allow.contains_key(&name) {
            allowed.push(name);
        } else {
            unexplained.push(line.trim().to_owned());
        }
    }
    (allowed, unexplained)
}

/// The cargo-mutants command for `group`, writing under `out`; `in_diff`
/// limits it to mutants on lines a diff touches.
///
/// The unmutated tests run first (`--baseline=run`): they must pass, and
/// their time sets each mutant's timeout (cargo-mutants: 5x, at least 20 s)
/// unless `timeout` is given, so a slow suite is never mistaken for a
/// mutant that hangs.
pub fn command(group: &Group, out: &Path, in_diff: Option<&Path>, timeout: Option<u64>) -> Command {
    let mut cmd = cargo();
    // cargo-mutants builds a copy of the tree; one target directory kept
    // across groups and runs, in the cache outside the tree (so a fresh
    // clone reuses it too), saves rebuilding every dependency each time:
    // only the workspace's crates rebuild (plan-rules: 96 s warm, 262 s cold).
    cmd.current_dir(workspace_root())
        .env(
            "CARGO_TARGET_DIR",
            test_assets::cache_dir().join("mutants-target"),
        )
        .args([
            "mutants",
            "--no-shuffle",
            "--colors=never",
            "--baseline=run",
            // The copy leaves out what .gitignore names: without this it
            // takes every build directory in the tree (the fuzz crate's
            // release build is about 600 MB after `cargo xtask test`'s
            // fuzzing step), and a CI run ran out of disk copying it.
            "--gitignore=true",
        ])
        .args(["--package", group.package])
        .arg("--output")
        .arg(out);
    if let Some(t) = timeout {
        cmd.arg(format!("--timeout={t}"));
    }
    for file in group.files {
        cmd.args(["--file", file]);
    }
    for test in group.tests {
        cmd.arg(format!("--cargo-arg={test}"));
    }
    if let Some(diff) = in_diff {
        cmd.arg("--in-diff").arg(diff);
    }
    cmd
}

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// Locks the target directory every checkout's runs share (see
/// [`command`]) for as long as the returned file is open: two runs at once,
/// from two clones or worktrees, would rebuild each other's artifacts
/// between a mutant's build and its tests. A second run waits, saying so.
fn lock_shared_target() -> Result<std::fs::File> {
    let path = test_assets::cache_dir().join("mutants-target.lock");
    std::fs::create_dir_all(test_assets::cache_dir())?;
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    if file.try_lock().is_err() {
        announce(&format!(
            "waiting for another `cargo xtask mutants` to finish (lock {})",
            path.display()
        ));
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}

/// Run the groups; fails if any mutant survives unexplained.
pub fn run_groups(
    groups: &[Group],
    in_diff: Option<&str>,
    timeout: Option<u64>,
) -> Result<Vec<(Group, Tally)>> {
    if which("cargo-mutants").is_none() {
        announce("installing cargo-mutants from crates.io");
        run(cargo().args(["install", "--locked", "cargo-mutants"]))?;
    }
    let allow_path = workspace_root().join(ALLOW_FILE);
    let allow_text = std::fs::read_to_string(&allow_path)
        .with_context(|| format!("reading {}", allow_path.display()))?;
    let allow = parse_allow_list(&allow_text)?;
    let diff_file = match in_diff {
        Some(base) => Some(write_diff(base)?),
        None => None,
    };
    let _shared_target = lock_shared_target()?;
    let mut results = Vec::new();
    for group in groups {
        let out = target_dir().join("mutants").join(group.name);
        std::fs::create_dir_all(&out)?;
        announce(&format!(
            "mutants: {} ({}; tests {})",
            group.name,
            group.files.join(", "),
            group.tests.join(" ")
        ));
        let started = Instant::now();
        // cargo-mutants exits non-zero when mutants are missed; the lists decide.
        let status = command(group, &out, diff_file.as_deref(), timeout)
            .status()
            .context("starting cargo mutants")?;
        let dir = out.join("mutants.out");
        if !dir.join("outcomes.json").is_file() {
            bail!(
                "cargo mutants failed ({status}) without a report in {}",
                dir.display()
            );
        }
        let missed = std::fs::read_to_string(dir.join("missed.txt")).unwrap_or_default();
        let (allowed, unexplained) = judge(&missed, &allow);
        let tally = Tally {
            caught: count_lines(&dir.join("caught.txt")),
            timeout: count_lines(&dir.join("timeout.txt")),
            unviable: count_lines(&dir.join("unviable.txt")),
            tested: count_lines(&dir.join("caught.txt"))
                + count_lines(&dir.join("timeout.txt"))
                + allowed.len()
                + unexplained.len(),
            allowed,
            unexplained,
            seconds: started.elapsed().as_secs_f64(),
        };
        results.push((*group, tally));
    }
    println!("{}", summary(&results));
    let unexplained: Vec<&String> = results.iter().flat_map(|(_, t)| &t.unexplained).collect();
    if !unexplained.is_empty() {
        let list: Vec<String> = unexplained.iter().map(|s| format!("    {s}")).collect();
        bail!(
            "{} mutant(s) survived that no test kills and {ALLOW_FILE} does not explain:\n{}\n\
             hint: add a test that fails for each, or list it in {ALLOW_FILE} with the reason \
             it is equivalent",
            unexplained.len(),
            list.join("\n")
        );
    }
    Ok(results)
}

/// The summary table.
pub fn summary(results: &[(Group, Tally)]) -> String {
    let mut s = String::from(
        "| group | tested | caught | timeout | allowed | unexplained | unviable | time |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (g, t) in results {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} s |\n",
            g.name,
            t.tested,
            t.caught,
            t.timeout,
            t.allowed.len(),
            t.unexplained.len(),
            t.unviable,
            t.seconds
        ));
    }
    s
}

/// `git diff BASE` of the working tree into a file for `--in-diff`.
fn write_diff(base: &str) -> Result<PathBuf> {
    let merge_base =
        crate::util::capture(Command::new("git").current_dir(workspace_root()).args([
            "merge-base",
            base,
            "HEAD",
        ]))?;
    let diff = crate::util::capture(
        Command::new("git")
            .current_dir(workspace_root())
            .args(["diff", merge_base.trim()]),
    )?;
    let path = target_dir().join("mutants").join("in.diff");
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(&path, diff)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_line_and_column() {
        assert_eq!(
            stable_name("crates/kexec-core/src/plan/rules.rs:123:45: replace == with != in LoadPlan::check_rule"),
            "crates/kexec-core/src/plan/rules.rs: replace == with != in LoadPlan::check_rule"
        );
        assert_eq!(stable_name("no position here"), "no position here");
    }

    #[test]
    fn allow_list_needs_a_reason_and_judges_by_stable_name() {
        let allow = parse_allow_list(
            "# comment\n\ncrates/a.rs: replace f -> bool with true  # f is only a debug assertion\n",
        )
        .unwrap();
        let (allowed, unexplained) = judge(
            "crates/a.rs:1:2: replace f -> bool with true\ncrates/a.rs:3:4: replace g with ()\n",
            &allow,
        );
        assert_eq!(allowed, ["crates/a.rs: replace f -> bool with true"]);
        assert_eq!(unexplained, ["crates/a.rs:3:4: replace g with ()"]);
        assert!(parse_allow_list("crates/a.rs: x").is_err());
        assert!(parse_allow_list("crates/a.rs: x  # why").is_err());
    }

    #[test]
    fn every_group_names_files_that_exist_and_tests_that_exist() {
        let root = workspace_root();
        for g in GROUPS {
            for f in g.files {
                let dir = root.join(Path::new(f).parent().unwrap());
                assert!(dir.is_dir(), "{}: {f}", g.name);
                if !f.contains('*') {
                    assert!(root.join(f).is_file(), "{}: {f}", g.name);
                }
            }
            let crate_dir = root.join("crates").join(g.package);
            for t in g.tests {
                if let Some(name) = t.strip_prefix("--test=") {
                    assert!(
                        crate_dir.join("tests").join(format!("{name}.rs")).is_file(),
                        "{}: {t}",
                        g.name
                    );
                }
            }
        }
        assert_eq!(GROUPS[0].name, "plan-rules");
        assert!(group("nope").is_err());
    }

    #[test]
    fn the_tree_copy_leaves_out_ignored_build_directories() {
        let cmd = command(&GROUPS[0], Path::new("out"), None, None);
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
        assert!(args.iter().any(|a| a == "--gitignore=true"), "{args:?}");
        // What the copy then leaves out: every build directory in the tree.
        let ignore = std::fs::read_to_string(workspace_root().join(".gitignore")).unwrap();
        for pattern in ["/target", "**/fuzz/target", "**/fuzz/corpus"] {
            assert!(ignore.lines().any(|l| l == pattern), "{pattern}");
        }
    }
}
