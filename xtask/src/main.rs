//! `cargo xtask`: the project's automation entry point (see README.md).

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::scenario::KexecScenario;
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
    /// Install rustup targets, QEMU and cpio, and download the arm64 test assets.
    Setup,
    /// The main job: boot kernel A in QEMU and kexec into kernel B.
    Demo,
    /// Boot QEMU guests of several shapes and (re)write their sysroots under fixtures/sysroots.
    CaptureSysroots,
    /// Everything CI runs: setup, fmt, clippy, unit tests, QEMU end-to-end tests.
    Test {
        /// Skip the QEMU end-to-end suite.
        #[arg(long)]
        no_e2e: bool,
    },
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Setup => {
            xtask::prepare()?;
        }
        Cmd::Demo => demo()?,
        Cmd::CaptureSysroots => capture_sysroots()?,
        Cmd::Test { no_e2e } => test(no_e2e)?,
    }
    Ok(())
}

fn demo() -> Result<()> {
    let assets = xtask::prepare()?;
    announce(&format!(
        "demo: kernel A ({}) boots in QEMU (cortex-a57, 2 CPUs, 1 GiB) and kexecs into kernel B",
        assets.kernel.version
    ));
    println!(
        "    NOTE: our own loader is not finished yet, so this demo loads kernel B with the\n    \
         reference loader, Debian's kexec-tools, running inside kernel A."
    );
    let outcome = KexecScenario::default().run(&assets)?;
    println!("{}", outcome.timeline.summary());
    announce(&format!(
        "kernel B booted with {} in /proc/cmdline, the initrd's SHA-256 matched, all {} CPUs online",
        outcome.expected.marker, outcome.expected.cpus
    ));
    Ok(())
}

fn capture_sysroots() -> Result<()> {
    let assets = xtask::prepare()?;
    for fixture in xtask::capture::fixture_shapes() {
        let dest = xtask::util::workspace_root()
            .join("fixtures/sysroots")
            .join(fixture.name);
        announce(&format!("capturing {} ({:?})", fixture.name, fixture.shape));
        xtask::capture::capture_sysroot(&assets, &fixture.shape, &dest)?;
        println!("    {}", dest.display());
    }
    Ok(())
}

fn test(no_e2e: bool) -> Result<()> {
    let _assets: Assets = xtask::prepare()?;
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
    if no_e2e {
        return Ok(());
    }
    announce("QEMU end-to-end suite (cargo test -p xtask -- --ignored)");
    run(cargo()
        .args(["test", "-p", "xtask", "--", "--ignored", "--test-threads=1"])
        .env(test_assets::REQUIRE_ENV, "1"))?;
    Ok(())
}
