//! `cargo xtask`: the project's automation entry point (see README.md).

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::scenario::{KexecScenario, Loader};
use xtask::setup::Assets;
use xtask::util::{announce, cargo, run};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "kexec-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install rustup targets, QEMU and cpio, download the arm64 test assets, smoke-boot QEMU.
    Setup {
        /// Only report what is missing (and smoke-boot QEMU if it can); install nothing.
        /// Exits 1 when something is missing.
        #[arg(long)]
        check: bool,
    },
    /// The main job: boot kernel A in QEMU and kexec into kernel B.
    Demo {
        /// Which loader runs inside kernel A.
        #[arg(long, value_enum, default_value_t = DemoLoader::Ours)]
        with: DemoLoader,
    },
    /// Benchmark our loader against kexec-tools in QEMU; writes target/bench.{md,json}.
    Bench {
        /// Repetitions per case (medians are reported).
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Size of the large initrd's extra payload, MiB (0: no large-initrd rows).
        #[arg(long, default_value_t = 200)]
        large_initrd_mib: u32,
        /// Only the `-i` rows (no verification).
        #[arg(long)]
        unverified_only: bool,
        /// Load with `-d` and copy both loaders' output (segment layout) to the console log.
        #[arg(long)]
        show_layout: bool,
        /// Extra arguments for kexec-tools' `-l` (experiments, e.g. `--serial=ttyAMA0`).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        kexec_tools_args: String,
        /// Extra arguments for our `-l` (experiments, e.g. `--mem-min=0x42000000`).
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        ours_args: String,
        /// Skip the kdump rows.
        #[arg(long, conflicts_with = "kdump_only")]
        no_kdump: bool,
        /// Only kexec-tools (while our loader cannot boot yet).
        #[arg(long)]
        reference_only: bool,
        /// Only the kdump rows (`-p`, then a panic).
        #[arg(long)]
        kdump_only: bool,
        /// The guests' CPU counts (every case on each; with more than one, ours also hashing
        /// on one CPU in the purgatory).
        #[arg(long, value_delimiter = ',', default_value = "2")]
        cpus: Vec<u32>,
    },
    /// Boot QEMU guests of several shapes and (re)write their sysroots under fixtures/sysroots.
    CaptureSysroots {
        /// Capture only these fixtures (by name; default: all).
        #[arg(long)]
        only: Vec<String>,
    },
    /// Build the Debian package (target/debian/kexec-rs_<version>_arm64.deb): the static arm64
    /// release binary as /usr/sbin/kexec, man pages and shell completions generated from the CLI.
    Package,
    /// Everything CI runs: setup, fmt, clippy, unit tests, brief fuzzing, QEMU end-to-end tests.
    Test {
        /// Skip the QEMU end-to-end suite.
        #[arg(long)]
        no_e2e: bool,
        /// Skip `fresh-check` (the demo in a fresh Debian 12 root; needs root).
        #[arg(long)]
        no_fresh_check: bool,
        /// Skip mutation testing of the plan's rule checker.
        #[arg(long)]
        no_mutants: bool,
        /// Seconds each fuzz target runs (0 skips fuzzing).
        #[arg(long, default_value_t = 15)]
        fuzz_seconds: u64,
    },
    /// Build (or find in the cache) the arm64 test kernel with KEXEC_FILE, KEXEC_SIG and
    /// lockdown, from Debian's linux-source-6.1; installs the packages it needs.
    TestKernel,
    /// Run `cargo xtask demo` from a clone of HEAD in a fresh Debian 12 root (mmdebstrap), to
    /// prove setup installs everything the demo needs. Needs root.
    FreshCheck,
    /// Mutation-test the pure core with cargo-mutants (groups in xtask/src/mutants.rs); fails
    /// on a surviving mutant not explained in xtask/mutants-allow.txt.
    Mutants {
        /// Groups to run (default: all). `plan-rules` is the one `cargo xtask test` runs.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Only mutants on lines changed since the merge base with this git ref.
        #[arg(long)]
        in_diff: Option<String>,
        /// Seconds a mutant's tests may run before it counts as a timeout (killed);
        /// default: 5 times the unmutated tests' time, at least 20 s.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Run every fuzz target of crates/kexec-core/fuzz (installs cargo-fuzz if missing) and
    /// print executions, executions per second and coverage per target.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Instead: rebuild the committed corpus-min/<target> from seeds without kernel bytes,
        /// fuzzing each target for --seconds first.
        #[arg(long, conflicts_with = "campaign")]
        update_corpus_min: bool,
        /// Instead: a campaign of this many minutes on every CPU, each target given the time
        /// it needs to reach --goal executions at the rate a short probe measured.
        #[arg(long, value_name = "MINUTES")]
        campaign: Option<u64>,
        /// Executions every target must reach in a --campaign.
        #[arg(long, default_value_t = 10_000_000, requires = "campaign")]
        goal: u64,
    },
}

/// Loader choice for the demo.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DemoLoader {
    /// Debian's kexec-tools (the reference).
    KexecTools,
    /// Our kexec from crates/kexec.
    Ours,
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Setup { check: false } => {
            xtask::prepare()?;
        }
        Cmd::Setup { check: true } => {
            if !xtask::host::check(xtask::host::Need::Test)? {
                anyhow::bail!(
                    "something is missing: `cargo xtask setup` installs it \
                     (`cargo xtask test` also installs the [test only] tools)"
                );
            }
        }
        Cmd::Demo { with } => demo(with)?,
        Cmd::Bench {
            reps,
            large_initrd_mib,
            unverified_only,
            show_layout,
            kexec_tools_args,
            ours_args,
            no_kdump,
            reference_only,
            kdump_only,
            cpus,
        } => bench(
            reps,
            large_initrd_mib,
            (unverified_only, show_layout),
            (&kexec_tools_args, &ours_args),
            reference_only,
            (kdump_only, no_kdump),
            &cpus,
        )?,
        Cmd::CaptureSysroots { only } => capture_sysroots(&only)?,
        Cmd::Package => {
            xtask::setup::install_rust_targets()?;
            let deb = xtask::package::build()?;
            announce(&format!(
                "built {}: install it on arm64 Debian with `dpkg -i`",
                deb.display()
            ));
        }
        Cmd::Test {
            no_e2e,
            no_fresh_check,
            no_mutants,
            fuzz_seconds,
        } => test(no_e2e, no_fresh_check, no_mutants, fuzz_seconds)?,
        Cmd::FreshCheck => xtask::fresh::run_check()?,
        Cmd::TestKernel => {
            xtask::host::install(xtask::host::Need::Test)?;
            xtask::kbuild::ensure()?;
        }
        Cmd::Mutants {
            groups,
            in_diff,
            timeout,
        } => {
            let groups = if groups.is_empty() {
                xtask::mutants::GROUPS.to_vec()
            } else {
                groups
                    .iter()
                    .map(|g| xtask::mutants::group(g))
                    .collect::<Result<Vec<_>>>()?
            };
            xtask::mutants::run_groups(&groups, in_diff.as_deref(), timeout)?;
        }
        Cmd::Fuzz {
            campaign: Some(minutes),
            goal,
            ..
        } => xtask::fuzz_campaign::run(minutes, goal)?,
        Cmd::Fuzz {
            seconds,
            update_corpus_min: false,
            ..
        } => xtask::fuzz::run(seconds)?,
        Cmd::Fuzz {
            seconds,
            update_corpus_min: true,
            ..
        } => xtask::fuzz::update_corpus_min(seconds)?,
    }
    Ok(())
}

fn demo(with: DemoLoader) -> Result<()> {
    let assets = xtask::prepare()?;
    let loader = match with {
        DemoLoader::KexecTools => Loader::KexecTools,
        DemoLoader::Ours => Loader::Ours,
    };
    announce(&format!(
        "demo: kernel A ({}) boots in QEMU (cortex-a57, 2 CPUs, 1 GiB); {loader} inside it kexecs into kernel B",
        assets.kernel.version
    ));
    if loader == Loader::KexecTools {
        println!(
            "    NOTE: this runs the reference loader, Debian's kexec-tools, inside kernel A."
        );
    }
    let outcome = KexecScenario::single(loader, 2).run(&assets)?;
    announce("timeline (host seconds since QEMU started)");
    for line in &outcome.timeline.lines {
        let t = &line.text;
        let interesting = t.contains("Booting Linux on physical CPU")
            || t.contains("kexec_core: Starting new kernel")
            || t.contains("purgatory:")
            || t.contains("@@kxt");
        if interesting {
            println!(
                "  {:8.2}s  {}",
                line.at.as_secs_f64(),
                t.trim_start_matches("@@kxt ")
            );
        }
    }
    for e in &outcome.expected {
        announce(&format!(
            "kernel {} booted with {} in /proc/cmdline, the initrd's SHA-256 matched, all {} CPUs online",
            e.stage,
            e.markers.join(" "),
            e.cpus
        ));
    }
    Ok(())
}

fn bench(
    reps: usize,
    large_mib: u32,
    (unverified_only, show_layout): (bool, bool),
    extra_args: (&str, &str),
    reference_only: bool,
    (kdump_only, no_kdump): (bool, bool),
    cpus: &[u32],
) -> Result<()> {
    let assets = xtask::prepare()?;
    let loaders: &[Loader] = if reference_only {
        &[Loader::KexecTools]
    } else {
        &[Loader::KexecTools, Loader::Ours]
    };
    let rows = if kdump_only {
        Vec::new()
    } else {
        let select = xtask::bench::Selection {
            loaders,
            large_mib,
            unverified_only,
            show_layout,
            extra_args,
            cpus,
        };
        xtask::bench::run(&assets, select, reps)?
    };
    let kdump = if no_kdump {
        Vec::new()
    } else {
        let ours = xtask::scenario::build_our_kexec()?;
        let work = xtask::scenario::WorkDir::new("bench-kdump")?;
        xtask::bench_kdump::run(&assets, loaders, reps, &ours, &work)?
    };
    let mut table = xtask::bench::markdown(&rows);
    table.push_str(&xtask::bench_loads::markdown(&xtask::bench::load_rows(
        &rows,
    )));
    table.push_str(&xtask::bench_phases::markdown(&xtask::bench::phase_rows(
        &rows,
    )));
    if !kdump.is_empty() {
        table.push_str(&xtask::bench_kdump::markdown(&kdump));
    }
    // The cost model is of the verifying purgatory.
    if !unverified_only {
        table.push_str(&xtask::bench::cost_model_section(&assets)?);
    }
    let dir = xtask::util::target_dir();
    std::fs::write(dir.join("bench.md"), &table)?;
    let json = format!(
        "{{\"schema\":3,\"rows\":{},\"kdump\":{}}}\n",
        xtask::bench::json(&rows),
        xtask::bench_kdump::json(&kdump)
    );
    std::fs::write(dir.join("bench.json"), json)?;
    println!("{table}");
    announce(&format!(
        "wrote {0}/bench.md and {0}/bench.json",
        dir.display()
    ));
    Ok(())
}

fn capture_sysroots(only: &[String]) -> Result<()> {
    let shapes = xtask::capture::fixture_shapes();
    if let Some(unknown) = only.iter().find(|n| !shapes.iter().any(|s| s.name == *n)) {
        anyhow::bail!("no fixture shape {unknown} (see xtask/src/capture.rs fixture_shapes)");
    }
    let assets = xtask::prepare()?;
    let wanted = shapes
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name));
    for fixture in wanted {
        let dest = xtask::util::workspace_root()
            .join("fixtures/sysroots")
            .join(fixture.name);
        announce(&format!("capturing {} ({:?})", fixture.name, fixture.shape));
        xtask::capture::capture_sysroot(&assets, &fixture.shape, &dest)?;
        println!("    {}", dest.display());
    }
    Ok(())
}

fn test(no_e2e: bool, no_fresh_check: bool, no_mutants: bool, fuzz_seconds: u64) -> Result<()> {
    let _assets: Assets = xtask::prepare()?;
    if !no_fresh_check || !no_e2e {
        xtask::host::install(xtask::host::Need::Test)?;
    }
    announce("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    announce("cargo clippy --workspace --all-targets -- -D warnings");
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    announce("cargo test --workspace");
    run(cargo()
        .args(["test", "--workspace"])
        .env(test_assets::REQUIRE_ENV, "1"))?;
    // Reuses the release arm64 binary the QEMU suite runs; the QEMU suite
    // runs these tests again (seconds, all built) and boots the package's
    // binary in one scenario.
    announce("Debian package: cargo xtask package, then dpkg checks (cargo test -p xtask --test package)");
    run(cargo().args([
        "test",
        "-p",
        "xtask",
        "--test",
        "package",
        "--",
        "--ignored",
    ]))?;
    if fuzz_seconds > 0 {
        xtask::fuzz::run(fuzz_seconds)?;
    }
    if !no_mutants {
        xtask::mutants::run_groups(&[xtask::mutants::GROUPS[0]], None, None)?;
    }
    if !no_e2e {
        xtask::kbuild::ensure()?;
        e2e()?;
    }
    if !no_fresh_check {
        xtask::fresh::run_check()?;
    }
    Ok(())
}

fn e2e() -> Result<()> {
    announce("QEMU end-to-end suite (cargo test -p xtask --test '*' -- --ignored)");
    run(cargo()
        .args([
            "test",
            "-p",
            "xtask",
            "--test",
            "*",
            "--",
            "--ignored",
            "--test-threads=1",
        ])
        .env(test_assets::REQUIRE_ENV, "1"))?;
    Ok(())
}
