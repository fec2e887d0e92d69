//! The test kernel: an arm64 kernel built from Debian's `linux-source-6.1`
//! with `kexec_file_load`, its PE signature check and lockdown, because
//! Debian's own arm64 kernels are built without `CONFIG_KEXEC_FILE`.
//!
//! `make allnoconfig` with `KCONFIG_ALLCONFIG` = the committed fragment
//! (xtask/kernel/kexec-file.config, plus `CONFIG_SYSTEM_TRUSTED_KEYS` naming a
//! throwaway certificate generated here), then `make olddefconfig`; every
//! option the fragment sets must come out as set, or the build stops naming
//! it. `make Image` runs under `nice` on every core.
//!
//! The result is cached outside the tree, in
//! `<cache>/test-kernel/<key>/`, where the key is a hash of the fragment, the
//! `linux-source-6.1` package version and [`RECIPE`]; a change to any of them
//! rebuilds, nothing else does:
//!
//! ```text
//! Image              the kernel as built (EFI stub, no signature)
//! Image.gz           the same, gzip'd (what `make Image.gz` makes)
//! Image.signed       signed by trusted.key (sbsign): the kernel trusts it
//! Image.wrong-signed signed by untrusted.key: a valid signature, untrusted key
//! trusted.crt/.key   the certificate built into the kernel's trusted keyring
//! untrusted.crt/.key a certificate the kernel does not know
//! config             the final .config
//! done               written last: the build's seconds
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::util::{announce, capture, run};

/// Debian's kernel source tarball (package `linux-source-6.1`).
pub const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// The Debian package that installs [`SOURCE_TARBALL`].
pub const SOURCE_PACKAGE: &str = "linux-source-6.1";
/// The top directory inside [`SOURCE_TARBALL`].
const SOURCE_TOP: &str = "linux-source-6.1";
/// The committed config fragment.
pub const FRAGMENT: &str = include_str!("../kernel/kexec-file.config");
/// Bumped when the build steps change what is produced (part of the cache key).
pub const RECIPE: &str = "kexec-rs test kernel recipe 1";
/// The cross compiler prefix (`gcc-aarch64-linux-gnu`).
pub const CROSS_COMPILE: &str = "aarch64-linux-gnu-";

/// The name scenarios use for the test kernel (`KexecScenario::kernel_a`,
/// `Hop::kernel`) instead of a Debian release.
pub const TEST_KERNEL: &str = "kexec-rs-test-kernel";

/// The built test kernel and its signed variants.
#[derive(Debug, Clone)]
pub struct TestKernel {
    /// The cache directory of this build.
    pub dir: PathBuf,
}

impl TestKernel {
    /// The kernel as built: an EFI-stub `Image` without a signature.
    pub fn image(&self) -> PathBuf {
        self.dir.join("Image")
    }
    /// [`Self::image`] gzip'd.
    pub fn image_gz(&self) -> PathBuf {
        self.dir.join("Image.gz")
    }
    /// Signed with the key whose certificate the kernel trusts.
    pub fn signed(&self) -> PathBuf {
        self.dir.join("Image.signed")
    }
    /// Signed with a key the kernel does not trust.
    pub fn wrong_signed(&self) -> PathBuf {
        self.dir.join("Image.wrong-signed")
    }
    /// The final kernel configuration.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }
    /// Its release (`uname -r`), from the build's `include/config/kernel.release`.
    pub fn release(&self) -> Result<String> {
        let file = self.dir.join("build/include/config/kernel.release");
        Ok(fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?
            .trim()
            .to_owned())
    }

    /// The test kernel as the harness boots kernels (its unsigned `Image`).
    pub fn as_kernel(&self) -> Result<test_assets::DebianKernel> {
        Ok(test_assets::DebianKernel {
            version: self.release()?,
            image: self.image(),
            config: self.config(),
        })
    }

    /// Seconds the build took (recorded when it finished).
    pub fn build_seconds(&self) -> Option<f64> {
        fs::read_to_string(self.dir.join("done"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The options the fragment sets (`CONFIG_X=value` lines), in order.
pub fn wanted_options(fragment: &str) -> Vec<(&str, &str)> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .collect()
}

/// The wanted options a final `.config` does not have, each as a message
/// naming the option, what was wanted and what the configuration has.
pub fn missing_options(wanted: &[(&str, &str)], config: &str) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|&(name, value)| {
            let line = format!("{name}={value}");
            if config.lines().any(|l| l == line) {
                return None;
            }
            let unset = format!("# {name} is not set");
            let has = config
                .lines()
                .find(|l| l.starts_with(&format!("{name}=")) || **l == unset)
                .unwrap_or("nothing (its dependencies are not met)");
            Some(format!("{line} wanted, the configuration has {has}"))
        })
        .collect()
}

/// The cache key: fragment, source package version and recipe.
pub fn cache_key(fragment: &str, source_version: &str) -> String {
    let mut h = Sha256::new();
    for part in [RECIPE, source_version, fragment] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where every build lives.
pub fn root() -> PathBuf {
    test_assets::cache_dir().join("test-kernel")
}

/// The installed `linux-source-6.1` version.
pub fn source_version() -> Result<String> {
    let v = capture(Command::new("dpkg-query").args(["-W", "-f", "${Version}", SOURCE_PACKAGE]))
        .with_context(|| {
            format!(
                "{SOURCE_PACKAGE} is not installed; `cargo xtask test` installs it \
                 (or: apt-get install --no-install-recommends {SOURCE_PACKAGE})"
            )
        })?;
    Ok(v.trim().to_owned())
}

/// The built test kernel for the current fragment and source, without building.
pub fn cached() -> Result<TestKernel> {
    let dir = root().join(cache_key(FRAGMENT, &source_version()?));
    if !dir.join("done").is_file() {
        bail!(
            "the test kernel is not built ({} has no `done`): run `cargo xtask test-kernel`",
            dir.display()
        );
    }
    Ok(TestKernel { dir })
}

/// The test kernel, built if the cache does not have it for the current
/// fragment and source version.
pub fn ensure() -> Result<TestKernel> {
    let version = source_version()?;
    let key = cache_key(FRAGMENT, &version);
    let dir = root().join(&key);
    let kernel = TestKernel { dir: dir.clone() };
    if let Some(secs) = kernel.build_seconds() {
        announce(&format!(
            "test kernel ({SOURCE_PACKAGE} {version}, key {key}) cached in {} (built in {secs:.0} s)",
            dir.display()
        ));
        return Ok(kernel);
    }
    announce(&format!(
        "building the test kernel ({SOURCE_PACKAGE} {version}, key {key}) in {}",
        dir.display()
    ));
    let start = Instant::now();
    let src = extract_source(&version)?;
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    make_certificates(&dir)?;
    let build = dir.join("build");
    configure(&src, &build, FRAGMENT, &dir.join("trusted.crt"))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    announce(&format!("make -j{jobs} Image (nice -n 10)"));
    run(make(&src, &build).arg(format!("-j{jobs}")).arg("Image"))?;
    finish(&build, &dir)?;
    let secs = start.elapsed().as_secs_f64();
    fs::write(dir.join("done"), format!("{secs:.1}\n"))?;
    println!(
        "    test kernel built in {secs:.0} s: {}",
        kernel.image().display()
    );
    remove_other_builds(&key)?;
    Ok(kernel)
}

/// `make` in the source tree, building into `build`, under `nice`.
fn make(src: &Path, build: &Path) -> Command {
    let mut cmd = Command::new("nice");
    cmd.args(["-n", "10", "make", "-s", "-C"])
        .arg(src)
        .arg(format!("O={}", build.display()))
        .arg("ARCH=arm64")
        .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"))
        // Reproducible enough, and no host name in the binary.
        .env("KBUILD_BUILD_USER", "kexec-rs")
        .env("KBUILD_BUILD_HOST", "xtask");
    cmd
}

/// The extracted source, shared by every build of the same version.
fn extract_source(version: &str) -> Result<PathBuf> {
    let dir = root().join(format!("src-{version}"));
    let tree = dir.join(SOURCE_TOP);
    if dir.join("extracted").is_file() {
        return Ok(tree);
    }
    announce(&format!(
        "extracting {SOURCE_TARBALL} into {}",
        dir.display()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    run(Command::new("tar")
        .arg("-xJf")
        .arg(SOURCE_TARBALL)
        .arg("-C")
        .arg(&dir))?;
    if !tree.join("Makefile").is_file() {
        bail!("{SOURCE_TARBALL} has no {SOURCE_TOP}/Makefile");
    }
    fs::write(dir.join("extracted"), "")?;
    Ok(tree)
}

/// The trusted and the untrusted throwaway certificates (RSA, SHA-256,
/// code signing), generated for this build only.
fn make_certificates(dir: &Path) -> Result<()> {
    announce("generating the throwaway trusted and untrusted test certificates (openssl)");
    for name in ["trusted", "untrusted"] {
        run(Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes",
            ])
            .args(["-days", "36500", "-subj"])
            .arg(format!("/CN=kexec-rs {name} test key/"))
            .args(["-addext", "keyUsage=digitalSignature"])
            .args(["-addext", "extendedKeyUsage=codeSigning"])
            .arg("-keyout")
            .arg(dir.join(format!("{name}.key")))
            .arg("-out")
            .arg(dir.join(format!("{name}.crt")))
            .stderr(std::process::Stdio::null()))?;
    }
    Ok(())
}

/// The extracted `linux-source-6.1` tree (extracted into the cache if not yet).
pub fn source_tree() -> Result<PathBuf> {
    extract_source(&source_version()?)
}

/// allnoconfig + `fragment` (+ `CONFIG_SYSTEM_TRUSTED_KEYS` = `trusted`) in
/// `build`, olddefconfig, and the check that every option the fragment sets
/// came out set (else an error naming each missing option).
pub fn configure(src: &Path, build: &Path, fragment: &str, trusted: &Path) -> Result<()> {
    fs::create_dir_all(build)?;
    let fragment = format!(
        "{fragment}\nCONFIG_SYSTEM_TRUSTED_KEYS=\"{}\"\n",
        trusted.display()
    );
    let all = build.join("allconfig");
    fs::write(&all, &fragment)?;
    announce(
        "make allnoconfig (KCONFIG_ALLCONFIG = xtask/kernel/kexec-file.config) and olddefconfig",
    );
    run(make(src, build)
        .arg(format!("KCONFIG_ALLCONFIG={}", all.display()))
        .arg("allnoconfig"))?;
    run(make(src, build).arg("olddefconfig"))?;
    let config_path = build.join(".config");
    let config = fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let missing = missing_options(&wanted_options(&fragment), &config);
    if !missing.is_empty() {
        bail!(
            "the test kernel's configuration ({}) lacks what xtask/kernel/kexec-file.config \
             asks for:\n    {}\nhint: add the option's dependencies to the fragment \
             (`make menuconfig` in that build shows them)",
            config_path.display(),
            missing.join("\n    ")
        );
    }
    Ok(())
}

/// Copy the Image out, gzip it, sign it with both keys, check the
/// signatures with `sbverify`, keep the configuration.
fn finish(build: &Path, dir: &Path) -> Result<()> {
    let image = dir.join("Image");
    fs::copy(build.join("arch/arm64/boot/Image"), &image)
        .with_context(|| format!("copying the Image out of {}", build.display()))?;
    fs::copy(build.join(".config"), dir.join("config"))?;
    let gz = fs::File::create(dir.join("Image.gz"))?;
    run(Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .arg(&image)
        .stdout(gz))?;
    for (name, key) in [
        ("Image.signed", "trusted"),
        ("Image.wrong-signed", "untrusted"),
    ] {
        announce(&format!("sbsign --key {key}.key {name}"));
        run(Command::new("sbsign")
            .arg("--key")
            .arg(dir.join(format!("{key}.key")))
            .arg("--cert")
            .arg(dir.join(format!("{key}.crt")))
            .arg("--output")
            .arg(dir.join(name))
            .arg(&image))?;
        run(Command::new("sbverify")
            .arg("--cert")
            .arg(dir.join(format!("{key}.crt")))
            .arg(dir.join(name)))?;
    }
    Ok(())
}

/// Builds of other keys are stale: remove them (and sources of other versions).
fn remove_other_builds(key: &str) -> Result<()> {
    let version = source_version()?;
    for entry in fs::read_dir(root())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let keep = name == key || name == format!("src-{version}");
        if !keep && entry.path().is_dir() {
            println!("    removing the stale build {}", entry.path().display());
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_wants_what_the_guests_need() {
        let wanted = wanted_options(FRAGMENT);
        for name in [
            "CONFIG_KEXEC",
            "CONFIG_KEXEC_FILE",
            "CONFIG_KEXEC_SIG",
            "CONFIG_KEXEC_IMAGE_VERIFY_SIG",
            "CONFIG_SECURITY_LOCKDOWN_LSM",
            "CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE",
            "CONFIG_SYSTEM_TRUSTED_KEYRING",
            "CONFIG_CRASH_DUMP",
            "CONFIG_PROC_VMCORE",
            "CONFIG_PROC_KCORE",
            "CONFIG_SERIAL_AMBA_PL011_CONSOLE",
            "CONFIG_BLK_DEV_INITRD",
            "CONFIG_MAGIC_SYSRQ",
        ] {
            assert!(wanted.contains(&(name, "y")), "{name}");
        }
        // The trusted certificate is generated per build, never committed.
        assert!(!wanted
            .iter()
            .any(|(n, _)| *n == "CONFIG_SYSTEM_TRUSTED_KEYS"));
    }

    #[test]
    fn a_missing_option_is_named_with_what_the_config_has() {
        let wanted = [("CONFIG_A", "y"), ("CONFIG_B", "y"), ("CONFIG_C", "\"x\"")];
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"y\"\n";
        assert_eq!(
            missing_options(&wanted, config),
            [
                "CONFIG_B=y wanted, the configuration has # CONFIG_B is not set",
                "CONFIG_C=\"x\" wanted, the configuration has CONFIG_C=\"y\"",
            ]
        );
        assert_eq!(
            missing_options(&[("CONFIG_D", "y")], config),
            ["CONFIG_D=y wanted, the configuration has nothing (its dependencies are not met)"]
        );
        // A prefix is not the option.
        assert_eq!(
            missing_options(&[("CONFIG_A", "y")], "CONFIG_AB=y\n").len(),
            1
        );
        assert!(missing_options(&wanted[..1], config).is_empty());
    }

    #[test]
    fn the_key_changes_with_the_fragment_and_the_source_version() {
        let k = cache_key("CONFIG_A=y\n", "6.1.1-1");
        assert_eq!(k.len(), 16);
        assert_eq!(k, cache_key("CONFIG_A=y\n", "6.1.1-1"));
        assert_ne!(k, cache_key("CONFIG_A=n\n", "6.1.1-1"));
        assert_ne!(k, cache_key("CONFIG_A=y\n", "6.1.1-2"));
        // Parts are length-prefixed: moving text between them changes the key.
        assert_ne!(cache_key("ab", "c"), cache_key("b", "ac"));
    }
}
