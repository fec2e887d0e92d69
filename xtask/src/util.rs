//! Small process helpers shared by the xtask commands.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Print a progress line for a step a person is waiting on.
pub fn announce(step: &str) {
    println!("==> {step}");
}

/// A command's arguments, as strings (for tests and messages).
pub fn args_of(cmd: &Command) -> Vec<String> {
    cmd.get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// A command as a shell line (for messages).
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        s.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
            s.push('\'');
            s.push_str(&arg.replace('\'', "'\\''"));
            s.push('\'');
        } else {
            s.push_str(&arg);
        }
    }
    s
}

/// Run a command with inherited output; fail with the command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let what = describe(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// Run a command and return its standard output.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start `{what}`"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The full path of a program on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A `cargo` command (the one running xtask, when known).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map(PathBuf::from).unwrap_or(xtask)
}

/// Cargo's target directory for this workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The static arm64 Linux target of the guest binaries.
pub const GUEST_TARGET: &str = "aarch64-unknown-linux-musl";

/// Build `package` as a static arm64 binary (release) and return the path of
/// its executable `bin`.
pub fn build_static_arm64(package: &str, bin: &str) -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        package,
        "--target",
        GUEST_TARGET,
    ]))?;
    Ok(target_dir().join(GUEST_TARGET).join("release").join(bin))
}

/// `gzip -LEVEL -n` of the file `from` into `to` (`-n`: no name or time
/// stamp, so the output is reproducible).
pub fn gzip_file(from: &std::path::Path, to: &std::path::Path, level: u8) -> Result<()> {
    let out = Command::new("gzip")
        .arg(format!("-{level}"))
        .args(["-n", "-c"])
        .arg(from)
        .output()
        .context("cannot start gzip")?;
    if !out.status.success() {
        bail!("gzip {} failed", from.display());
    }
    std::fs::write(to, out.stdout).with_context(|| format!("writing {}", to.display()))
}
