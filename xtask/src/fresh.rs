//! `cargo xtask fresh-check`: the README's main command, run in a fresh
//! Debian 12 root, so an install step that setup forgot fails here and not on
//! a new user's machine.
//!
//! CI runs on a machine that keeps whatever a developer installed by hand; a
//! green CI there cannot see a missing `apt-get install`. This check builds a
//! minimal root with `mmdebstrap --variant=apt bookworm` plus only what "a
//! machine with Rust" implies (a C linker, git, CA certificates), binds the
//! host's Rust toolchain (`~/.rustup`, `~/.cargo`), `/proc`, `/sys` and
//! `/dev` into it, clones the repository there and runs `cargo xtask demo`.
//! Setup inside the root must install everything else.
//!
//! What is shared with the host, to save downloads, and why it cannot hide a
//! missing step: the apt archive directory (`.deb` files only: apt still
//! decides what to install) and kexec-rs's own downloaded `.deb`s (project
//! assets, resolved by the same apt queries). The Rust toolchain is the host's:
//! its rustup targets are therefore already present inside.
//!
//! Needs root (chroot, mounts); the mounts live in a private mount namespace
//! (`unshare --mount`), so they vanish when the check ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::host::{self, Need};
use crate::util::{announce, capture, run, workspace_root};

/// The Debian release of the fresh root (the one the README promises).
pub const RELEASE: &str = "bookworm";

/// Apt sources of the fresh root: what a Debian 12 installation has.
pub const SOURCES: [&str; 3] = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

/// Packages added to the `apt` variant: what "a machine with Rust" implies
/// (rustup needs a C linker to link, git to clone, CA certificates for https).
pub const WITH_RUST: [&str; 4] = ["gcc", "libc6-dev", "git", "ca-certificates"];

/// The command run inside the root, from the cloned repository.
pub const COMMAND: &str = "cargo xtask demo";

/// Where the check keeps its root and its apt archive cache.
pub fn work_dir() -> PathBuf {
    test_assets::cache_dir().join("fresh-check")
}

/// The `mmdebstrap` command that builds `root`, reusing `archives` for `.deb`s.
pub fn mmdebstrap_command(root: &Path, archives: &Path) -> Command {
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(["--variant=apt", "--mode=root", "--skip=download/empty"])
        .arg(format!("--include={}", WITH_RUST.join(",")))
        .arg(format!(
            "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives && \
             cp -a {}/. \"$1\"/var/cache/apt/archives/",
            archives.display()
        ))
        .arg(format!(
            "--customize-hook=cp -a \"$1\"/var/cache/apt/archives/. {}/",
            archives.display()
        ))
        .arg(RELEASE)
        .arg(root)
        .args(SOURCES);
    cmd
}

/// The shell script that mounts what the root shares with the host and runs
/// [`COMMAND`] in it (run inside `unshare --mount`).
pub fn inner_script(root: &Path, repo: &Path, rust: &RustHome, cache: &Path) -> String {
    let r = root.display();
    format!(
        r#"set -eu
mount --make-rprivate /
mount --rbind /dev {r}/dev
mount -t proc proc {r}/proc
mount --rbind /sys {r}/sys
mkdir -p {r}/root/.rustup {r}/root/.cargo {r}/src {r}/root/.cache/kexec-rs/debs
mount --bind {rustup} {r}/root/.rustup
mount --bind {cargo} {r}/root/.cargo
mount --bind {repo} {r}/src
mount -o remount,bind,ro {r}/src
mount --bind {archives} {r}/var/cache/apt/archives
mount --bind {debs} {r}/root/.cache/kexec-rs/debs
cp /etc/resolv.conf {r}/etc/resolv.conf
exec chroot {r} /usr/bin/env -i HOME=/root TERM=dumb \
  CARGO_HOME=/root/.cargo RUSTUP_HOME=/root/.rustup \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -euc 'git clone -q /src /root/kexec-rs && cd /root/kexec-rs && \
    echo "==> fresh root: $(git log -1 --format="%h %s") ; $(cat /etc/debian_version)" && \
    {COMMAND}'
"#,
        rustup = rust.rustup.display(),
        cargo = rust.cargo.display(),
        repo = repo.display(),
        archives = cache.join("apt-archives").display(),
        debs = test_assets::cache_dir().join("debs").display(),
    )
}

/// The host's Rust toolchain directories.
#[derive(Debug, Clone)]
pub struct RustHome {
    /// `$RUSTUP_HOME`, else `~/.rustup`.
    pub rustup: PathBuf,
    /// `$CARGO_HOME`, else `~/.cargo`.
    pub cargo: PathBuf,
}

impl RustHome {
    /// The directories of the running toolchain.
    pub fn from_env() -> Result<Self> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let dir = |var: &str, default: &str| -> Result<PathBuf> {
            let path = std::env::var_os(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(default)))
                .with_context(|| format!("neither ${var} nor $HOME is set"))?;
            if !path.is_dir() {
                bail!("{var}: {} is not a directory", path.display());
            }
            Ok(path)
        };
        Ok(Self {
            rustup: dir("RUSTUP_HOME", ".rustup")?,
            cargo: dir("CARGO_HOME", ".cargo")?,
        })
    }
}

/// Build the fresh root and run the demo in it; the root is removed on
/// success and kept for inspection on failure.
pub fn run_check() -> Result<()> {
    let started = Instant::now();
    if !host::is_root() {
        bail!(
            "fresh-check needs root (mmdebstrap --mode=root, chroot, mounts); \
             run it as root, or skip it with `cargo xtask test --no-fresh-check`"
        );
    }
    host::install(Need::Test)?;
    let repo = workspace_root();
    let dirty = capture(Command::new("git").arg("-C").arg(&repo).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))?;
    if !dirty.trim().is_empty() {
        println!(
            "    NOTE: uncommitted changes in {} are not part of the check (it clones HEAD)",
            repo.display()
        );
    }
    let rust = RustHome::from_env()?;
    let work = work_dir();
    let root = work.join("root");
    let archives = work.join("apt-archives");
    std::fs::create_dir_all(&archives)?;
    std::fs::create_dir_all(test_assets::cache_dir().join("debs"))?;
    remove_root(&root)?;

    announce(&format!(
        "fresh-check: a minimal Debian 12 root ({}) with only {} besides apt",
        root.display(),
        WITH_RUST.join(", ")
    ));
    run(&mut mmdebstrap_command(&root, &archives))?;
    let built = started.elapsed();

    announce(&format!(
        "fresh-check: `{COMMAND}` in the fresh root (host toolchain {} bound in)",
        rust.rustup.display()
    ));
    let script = inner_script(&root, &repo, &rust, &work);
    run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(&script))
    .with_context(|| {
        format!(
            "`{COMMAND}` failed in a fresh Debian 12 root: something it needs is not \
             installed by `cargo xtask setup` (the root is kept in {}; enter it with \
             `chroot {} /bin/bash`)",
            root.display(),
            root.display()
        )
    })?;
    remove_root(&root)?;
    announce(&format!(
        "fresh-check passed in {:.0} s (root built in {:.0} s)",
        started.elapsed().as_secs_f64(),
        built.as_secs_f64()
    ));
    Ok(())
}

/// Remove an earlier root, refusing if something is still mounted under it.
fn remove_root(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = root.to_string_lossy();
    if let Some(line) = mounts
        .lines()
        .find(|l| l.split(' ').nth(1).is_some_and(|m| m.starts_with(&*prefix)))
    {
        bail!(
            "{} still has a mount ({line}): unmount it first",
            root.display()
        );
    }
    std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_gets_only_apt_and_what_rust_implies() {
        let cmd = mmdebstrap_command(Path::new("/c/root"), Path::new("/c/apt-archives"));
        let args = crate::util::args_of(&cmd);
        assert_eq!(args[0], "--variant=apt");
        assert!(args.contains(&"--include=gcc,libc6-dev,git,ca-certificates".to_owned()));
        let at = args.iter().position(|a| a == RELEASE).unwrap();
        assert_eq!(args[at + 1], "/c/root");
        assert_eq!(&args[at + 2..], SOURCES);
        // Nothing of the project's own needs is pre-installed.
        for tool in host::HOST_TOOLS {
            assert!(!WITH_RUST.contains(&tool.package), "{}", tool.package);
        }
    }

    #[test]
    fn the_script_runs_the_demo_with_a_clean_environment() {
        let rust = RustHome {
            rustup: "/h/.rustup".into(),
            cargo: "/h/.cargo".into(),
        };
        let s = inner_script(Path::new("/r"), Path::new("/repo"), &rust, Path::new("/c"));
        assert!(
            s.contains("mount --bind /h/.rustup /r/root/.rustup\n"),
            "{s}"
        );
        assert!(s.contains("mount -o remount,bind,ro /r/src\n"), "{s}");
        assert!(
            s.contains("exec chroot /r /usr/bin/env -i HOME=/root"),
            "{s}"
        );
        assert!(s.trim_end().ends_with("cargo xtask demo'"), "{s}");
    }
}
