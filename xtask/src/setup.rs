//! `cargo xtask setup`: install what a fresh Debian/Ubuntu machine lacks.
//!
//! Idempotent. Steps, each announced with a `==>` line:
//! 1. rustup targets for the static arm64 CLI and the bare-metal purgatory;
//! 2. host tools from Debian packages ([`crate::host::HOST_TOOLS`]: QEMU, cpio,
//!    binutils' `readelf`), without their Recommends;
//! 3. arm64 packages fetched with `apt-get download` (after
//!    `dpkg --add-architecture arm64`): the current Debian arm64 kernel (its ABI
//!    resolved from the `linux-image-arm64` metapackage, never hard-coded),
//!    `busybox-static`, and the [`GUEST_PROGRAMS`] (`kexec-tools`,
//!    `makedumpfile`) with every arm64 library they need (found through
//!    `Depends` and verified with `readelf -d`);
//! 4. the extracted kernel `Image` and the guest root file system parts;
//! 5. a smoke boot of that kernel in QEMU ([`crate::host::smoke_boot`]).
//!
//! Everything goes to the cache directory of [`test_assets::cache_dir`],
//! outside the source tree.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::host::{self, Need};
use crate::util::{announce, capture, run};

/// Where setup puts everything.
#[derive(Debug, Clone)]
pub struct Assets {
    /// The cache root.
    pub root: PathBuf,
    /// The kernel that setup resolved (kernel A and B by default).
    pub kernel: test_assets::DebianKernel,
    /// The guest's root file system parts (busybox, kexec-tools and its libraries).
    pub guest_root: PathBuf,
}

impl Assets {
    /// The assets already in the cache, without installing anything.
    pub fn existing() -> Result<Self> {
        let root = test_assets::cache_dir();
        let kernel = test_assets::default_kernel().with_context(|| {
            format!(
                "no default arm64 kernel in {}: run `cargo xtask setup` first",
                test_assets::kernels_dir().display()
            )
        })?;
        let guest_root = root.join("guest").join("root");
        let programs = GUEST_PROGRAMS.iter().map(|(_, p)| *p);
        if std::iter::once("bin/busybox")
            .chain(programs)
            .any(|p| !guest_root.join(p).is_file())
        {
            bail!(
                "guest files missing in {}: run `cargo xtask setup` first",
                guest_root.display()
            );
        }
        Ok(Self {
            root,
            kernel,
            guest_root,
        })
    }

    /// Every downloaded kernel other than the default one.
    pub fn other_kernels(&self) -> Vec<test_assets::DebianKernel> {
        test_assets::installed_kernels()
            .into_iter()
            .filter(|k| k.version != self.kernel.version)
            .collect()
    }

    /// The kernel with this release name, if downloaded.
    pub fn kernel_named(&self, version: &str) -> Result<test_assets::DebianKernel> {
        test_assets::DebianKernel::from_dir(&test_assets::kernels_dir().join(version)).with_context(
            || format!("kernel {version} is not in the cache: run `cargo xtask setup`"),
        )
    }
}

/// The dynamically linked arm64 programs of the guest: (Debian package, the
/// program's path in it). kexec-tools is the reference loader, makedumpfile
/// and kexec-tools' `vmcore-dmesg` the reference vmcore readers (the kdump
/// scenarios check `kexec vmcore` against them).
pub const GUEST_PROGRAMS: [(&str, &str); 3] = [
    ("kexec-tools", "sbin/kexec"),
    ("kexec-tools", "sbin/vmcore-dmesg"),
    ("makedumpfile", "usr/bin/makedumpfile"),
];

/// Run every setup step.
pub fn setup() -> Result<Assets> {
    install_rust_targets()?;
    host::install(Need::Demo)?;
    let root = test_assets::cache_dir();
    let debs = root.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    enable_arm64_packages()?;

    announce("resolving the current Debian arm64 kernel from linux-image-arm64");
    let mut apt = AptRecords::default();
    let kernel_pkg = current_kernel_package(&mut apt)?;
    let kernel_deb = download(&mut apt, &debs, &kernel_pkg)?;
    let kernel = extract_kernel(&root, &kernel_deb)?;
    println!(
        "    kernel {} -> {}",
        kernel.version,
        kernel.image.display()
    );

    test_assets::set_default_kernel(&kernel.version)?;

    announce(&format!(
        "resolving the Debian {SECOND_RELEASE} arm64 kernel (a second kernel version)"
    ));
    let mut second =
        AptRecords::isolated(&root.join(format!("apt-{SECOND_RELEASE}")), SECOND_RELEASE)?;
    let second_pkg = current_kernel_package(&mut second)?;
    let second_deb = download(&mut second, &debs, &second_pkg)?;
    let second_kernel = extract_kernel(&root, &second_deb)?;
    println!(
        "    kernel {} -> {}",
        second_kernel.version,
        second_kernel.image.display()
    );

    let guest_root = root.join("guest").join("root");
    let busybox_deb = download(&mut apt, &debs, "busybox-static")?;
    extract_into(&busybox_deb, &guest_root)?;

    for (package, program) in GUEST_PROGRAMS {
        announce(&format!(
            "resolving {package}:arm64 and the arm64 libraries it needs"
        ));
        let packages = library_closure(&mut apt, package)?;
        for pkg in &packages {
            let deb = download(&mut apt, &debs, pkg)?;
            extract_into(&deb, &guest_root)?;
        }
        check_shared_libraries(&guest_root, &guest_root.join(program))?;
        println!(
            "    {package} with {} packages, all NEEDED libraries present",
            packages.len()
        );
    }
    announce(&format!("assets ready in {}", root.display()));
    host::smoke_boot(&kernel.image)?;
    Ok(Assets {
        root,
        kernel,
        guest_root,
    })
}

/// Add the rustup targets the static `kexec` and the purgatory need (idempotent).
pub fn install_rust_targets() -> Result<()> {
    announce("checking rustup targets");
    let installed = capture(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("rustup is required (https://rustup.rs)")?;
    for target in host::RUST_TARGETS {
        if !installed.lines().any(|l| l.trim() == target) {
            println!("    adding {target}");
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    Ok(())
}

fn enable_arm64_packages() -> Result<()> {
    announce("checking that apt knows arm64 packages");
    let foreign = capture(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    let known = foreign.lines().any(|l| l.trim() == "arm64");
    if !known {
        if !host::is_root() {
            bail!(
                "apt does not list arm64 packages; enable them with:\n    \
                 sudo dpkg --add-architecture arm64 && sudo apt-get update"
            );
        }
        run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
    }
    if !known
        || AptRecords::default()
            .get("linux-image-arm64", "Depends")
            .is_err()
    {
        println!("    apt-get update");
        run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    Ok(())
}

/// arm64 package records from the apt cache, fetched in batches (one
/// `apt-cache show` costs about a second, whatever the number of packages).
#[derive(Debug, Default)]
struct AptRecords {
    records: HashMap<String, String>,
    /// Extra `-o` options: empty for the host's apt, or an isolated
    /// configuration (another Debian release, see [`AptRecords::isolated`]).
    options: Vec<String>,
}

/// The Debian release whose kernel is downloaded as a second test kernel.
pub const SECOND_RELEASE: &str = "trixie";

impl AptRecords {
    /// apt limited to one Debian release's arm64 packages, with its own
    /// lists under `dir`, so the host's sources and packages are untouched.
    /// Signatures are checked against the host's Debian archive keyring.
    fn isolated(dir: &Path, release: &str) -> Result<Self> {
        let lists = dir.join("lists");
        let cache = dir.join("cache");
        fs::create_dir_all(lists.join("partial"))?;
        fs::create_dir_all(cache.join("archives/partial"))?;
        let sources = dir.join("sources.list");
        fs::write(
            &sources,
            format!(
                "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
                 http://deb.debian.org/debian {release} main\n"
            ),
        )?;
        let options = [
            format!("Dir::Etc::SourceList={}", sources.display()),
            "Dir::Etc::SourceParts=/nonexistent".to_owned(),
            format!("Dir::State::Lists={}", lists.display()),
            format!("Dir::Cache={}", cache.display()),
            "APT::Architecture=arm64".to_owned(),
            "APT::Architectures=arm64".to_owned(),
            "APT::Sandbox::User=root".to_owned(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_owned(), o])
        .collect();
        let apt = Self {
            records: HashMap::new(),
            options,
        };
        let have_lists = fs::read_dir(&lists)?.flatten().any(|e| e.path().is_file());
        if !have_lists {
            apt.update()?;
        }
        Ok(apt)
    }

    fn update(&self) -> Result<()> {
        println!("    apt-get update");
        run(Command::new("apt-get")
            .args(&self.options)
            .args(["update", "-q"]))
    }

    /// Load the records of every package in `pkgs` not loaded yet.
    fn fetch<S: AsRef<str>>(&mut self, pkgs: &[S]) -> Result<()> {
        let missing: Vec<String> = pkgs
            .iter()
            .map(|p| p.as_ref().to_owned())
            .filter(|p| !self.records.contains_key(p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        // Unknown (e.g. virtual) packages make apt-cache fail but it still
        // prints the records it found.
        let out = Command::new("apt-cache")
            .args(&self.options)
            .args(["show", "--no-all-versions"])
            .args(missing.iter().map(|p| format!("{p}:arm64")))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .context("cannot start apt-cache")?;
        for record in String::from_utf8_lossy(&out.stdout).split("\n\n") {
            let name = record.lines().find_map(|l| l.strip_prefix("Package:"));
            if let Some(name) = name {
                self.records
                    .entry(name.trim().to_owned())
                    .or_insert_with(|| record.to_owned());
            }
        }
        for p in missing {
            self.records.entry(p).or_default();
        }
        Ok(())
    }

    /// One field of a fetched record.
    fn field(&self, pkg: &str, field: &str) -> Result<String> {
        let record = self
            .records
            .get(pkg)
            .filter(|r| !r.is_empty())
            .with_context(|| format!("apt-cache has no record for {pkg}:arm64"))?;
        let prefix = format!("{field}:");
        record
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_owned()))
            .with_context(|| format!("{pkg}:arm64 has no {field} field"))
    }

    /// One field of a package's record, fetching it if needed.
    fn get(&mut self, pkg: &str, field: &str) -> Result<String> {
        self.fetch(&[pkg])?;
        self.field(pkg, field)
    }
}

/// The package names in a Debian `Depends` value (first of each alternative).
fn depends_names(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .filter_map(|alt| alt.split('|').next())
        .filter_map(|dep| dep.split_whitespace().next())
        .map(|name| name.split(':').next().unwrap_or(name).to_owned())
        .collect()
}

fn current_kernel_package(apt: &mut AptRecords) -> Result<String> {
    let depends = apt.get("linux-image-arm64", "Depends")?;
    depends_names(&depends)
        .into_iter()
        .find(|name| name.starts_with("linux-image-") && name.ends_with("-arm64"))
        .with_context(|| format!("no linux-image-*-arm64 in linux-image-arm64 Depends: {depends}"))
}

/// `pkg` and every `Multi-Arch: same` package it depends on, recursively:
/// the arm64 shared libraries (and their data packages) a binary needs.
fn library_closure(apt: &mut AptRecords, pkg: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::from([pkg.to_owned()]);
    let mut level = vec![pkg.to_owned()];
    while !level.is_empty() {
        apt.fetch(&level)?;
        let deps: Vec<String> = level
            .iter()
            .filter_map(|p| apt.field(p, "Depends").ok())
            .flat_map(|d| depends_names(&d))
            .collect();
        apt.fetch(&deps)?;
        level = deps
            .into_iter()
            .filter(|d| apt.field(d, "Multi-Arch").is_ok_and(|v| v == "same"))
            .filter(|d| out.insert(d.clone()))
            .collect();
    }
    Ok(out)
}

/// Download `pkg:arm64` into `dir` unless that version is already there.
fn download(apt: &mut AptRecords, dir: &Path, pkg: &str) -> Result<PathBuf> {
    let version = apt.get(pkg, "Version")?;
    let file = dir.join(format!("{pkg}_{}_arm64.deb", version.replace(':', "%3a")));
    if file.is_file() {
        println!(
            "    have {}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        return Ok(file);
    }
    println!("    downloading {pkg}:arm64 {version}");
    let fetch = || {
        run(Command::new("apt-get")
            .args(&apt.options)
            .args(["download", "-qq", "-o", "APT::Sandbox::User=root"])
            .arg(format!("{pkg}:arm64"))
            .current_dir(dir))
    };
    if fetch().is_err() {
        println!("    retrying after apt-get update");
        if apt.options.is_empty() {
            run(Command::new("apt-get").args(["update", "-q"]))?;
        } else {
            apt.update()?;
        }
        fetch()?;
    }
    if !file.is_file() {
        bail!(
            "apt-get download {pkg}:arm64 did not produce {}",
            file.display()
        );
    }
    Ok(file)
}

fn extract_into(deb: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))
}

fn extract_kernel(root: &Path, deb: &Path) -> Result<test_assets::DebianKernel> {
    let tmp = root.join("tmp-kernel");
    let _ = fs::remove_dir_all(&tmp);
    extract_into(deb, &tmp)?;
    let boot = tmp.join("boot");
    let vmlinuz = fs::read_dir(&boot)
        .with_context(|| format!("{} has no /boot", deb.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .with_context(|| format!("{} has no /boot/vmlinuz-*", deb.display()))?;
    let name = vmlinuz
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let version = name.trim_start_matches("vmlinuz-").to_owned();
    let dest = test_assets::kernels_dir().join(&version);
    fs::create_dir_all(&dest)?;
    let image = fs::read(&vmlinuz)?;
    if image.get(56..60) != Some(b"ARM\x64".as_slice()) {
        bail!(
            "{}: not an uncompressed arm64 Image (no ARM\\x64 magic at offset 56)",
            vmlinuz.display()
        );
    }
    fs::write(dest.join("Image"), image)?;
    fs::copy(boot.join(format!("config-{version}")), dest.join("config"))
        .with_context(|| format!("{} has no config-{version}", deb.display()))?;
    fs::remove_dir_all(&tmp)?;
    test_assets::DebianKernel::from_dir(&dest).context("kernel extraction incomplete")
}

/// Check, with `readelf -d`, that every NEEDED library of `binary` (and of
/// those libraries, recursively) is present under `root`.
pub fn check_shared_libraries(root: &Path, binary: &Path) -> Result<()> {
    let mut todo = vec![binary.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(file) = todo.pop() {
        let dynamic = capture(Command::new("readelf").arg("-d").arg(&file))?;
        for line in dynamic.lines().filter(|l| l.contains("(NEEDED)")) {
            let lib = line
                .rsplit('[')
                .next()
                .and_then(|s| s.strip_suffix(']'))
                .with_context(|| format!("unexpected readelf line: {line}"))?
                .to_owned();
            if !seen.insert(lib.clone()) {
                continue;
            }
            let found = find_library(root, &lib).with_context(|| {
                format!(
                    "{} needs {lib}, which no downloaded arm64 package provides",
                    file.display()
                )
            })?;
            todo.push(found);
        }
    }
    Ok(())
}

/// Where a shared library sits in the extracted arm64 tree.
pub fn find_library(root: &Path, soname: &str) -> Option<PathBuf> {
    [
        "lib/aarch64-linux-gnu",
        "usr/lib/aarch64-linux-gnu",
        "lib",
        "usr/lib",
    ]
    .iter()
    .map(|dir| root.join(dir).join(soname))
    .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_names_takes_first_alternative_and_drops_versions() {
        let names = depends_names(
            "libc6 (>= 2.34), zlib1g (>= 1:1.2.2.3), debconf (>= 0.5) | debconf-2.0, libfoo:any",
        );
        assert_eq!(names, ["libc6", "zlib1g", "debconf", "libfoo"]);
    }
}
