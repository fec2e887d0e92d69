//! The layout of the asset cache filled by `cargo xtask setup`.
//!
//! Kernel binaries are never committed: tests find the Debian arm64 kernels
//! that setup downloaded through this crate. The cache lives outside the
//! source tree, at `$KEXEC_RS_CACHE`, else `$XDG_CACHE_HOME/kexec-rs`, else
//! `$HOME/.cache/kexec-rs`:
//!
//! ```text
//! kernels/<version>/Image    uncompressed arm64 Image (Debian's vmlinuz)
//! kernels/<version>/config   the kernel's build configuration
//! kernels/default            the default kernel's version (the host release's)
//! guest/...                  busybox, kexec-tools and initramfs parts
//! ```
//!
//! Tests that need a real kernel call [`debian_kernels`]. When the assets are
//! missing they are skipped with a message, unless `KEXEC_RS_REQUIRE_ASSETS=1`
//! (set by `cargo xtask test`), in which case missing assets are a failure.
//!
//! [`synthetic`] holds what tests make themselves (a synthetic Image, scratch
//! directories) and finds the committed sysroot fixtures; [`pe`] builds
//! PE files (UKIs, zboot containers).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod pe;
pub mod synthetic;

use std::path::{Path, PathBuf};

/// Environment variable that overrides the cache directory.
pub const CACHE_ENV: &str = "KEXEC_RS_CACHE";
/// Environment variable that turns missing assets into test failures.
pub const REQUIRE_ENV: &str = "KEXEC_RS_REQUIRE_ASSETS";

/// The asset cache directory (it may not exist yet).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("kexec-rs");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache").join("kexec-rs")
}

/// Directory holding the kernels, one sub-directory per version.
pub fn kernels_dir() -> PathBuf {
    cache_dir().join("kernels")
}

/// A downloaded Debian arm64 kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianKernel {
    /// Kernel release, e.g. `6.1.0-56-arm64`.
    pub version: String,
    /// The uncompressed arm64 `Image` (Debian ships it as `vmlinuz`).
    pub image: PathBuf,
    /// The build configuration (`/boot/config-<version>`).
    pub config: PathBuf,
}

impl DebianKernel {
    /// The kernel stored under `dir` (`kernels/<version>`), if complete.
    pub fn from_dir(dir: &Path) -> Option<Self> {
        let version = dir.file_name()?.to_str()?.to_owned();
        let image = dir.join("Image");
        let config = dir.join("config");
        (image.is_file() && config.is_file()).then_some(Self {
            version,
            image,
            config,
        })
    }
}

/// Every downloaded kernel, sorted by version.
pub fn installed_kernels() -> Vec<DebianKernel> {
    let mut kernels: Vec<DebianKernel> = std::fs::read_dir(kernels_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| DebianKernel::from_dir(&entry.path()))
        .collect();
    kernels.sort_by(|a, b| a.version.cmp(&b.version));
    kernels
}

/// File under [`kernels_dir`] naming the default kernel (the host release's).
pub const DEFAULT_KERNEL_FILE: &str = "default";

/// Record which downloaded kernel is the default one.
pub fn set_default_kernel(version: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(kernels_dir())?;
    std::fs::write(
        kernels_dir().join(DEFAULT_KERNEL_FILE),
        format!("{version}\n"),
    )
}

/// The default kernel (the one of the host's Debian release), if downloaded.
pub fn default_kernel() -> Option<DebianKernel> {
    let name = std::fs::read_to_string(kernels_dir().join(DEFAULT_KERNEL_FILE)).ok()?;
    DebianKernel::from_dir(&kernels_dir().join(name.trim()))
}

/// Whether missing assets must fail the test run.
pub fn assets_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The downloaded Debian kernels for a test.
///
/// Returns an empty list (after printing why) when none are installed and
/// assets are not required; panics with instructions when they are.
pub fn debian_kernels() -> Vec<DebianKernel> {
    let kernels = installed_kernels();
    if kernels.is_empty() {
        let msg = format!(
            "no Debian arm64 kernels under {}; run `cargo xtask setup`",
            kernels_dir().display()
        );
        assert!(!assets_required(), "{msg}");
        eprintln!("skipping: {msg}");
    }
    kernels
}
