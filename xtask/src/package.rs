//! `cargo xtask package`: the Debian package `kexec-rs`, a drop-in for
//! kexec-tools' `kexec` on arm64.
//!
//! Built with `dpkg-deb --root-owner-group --build` (in every Debian) from a
//! staged root; `cargo deb` would add a dependency and nothing this needs.
//! The package holds:
//!
//! - `/usr/sbin/kexec`: the static `aarch64-unknown-linux-musl` release
//!   binary the QEMU scenarios run (`build_our_kexec`, not rebuilt), checked
//!   to be a static AArch64 ELF and stripped of its symbol table;
//! - `/usr/share/man/man8/kexec.8.gz` and one page per subcommand, and the
//!   bash, zsh and fish completions in Debian's directories, all generated
//!   from the clap definition by `crates/kexec/examples/ship-docs.rs`;
//! - `/usr/share/doc/kexec-rs/copyright` (with the statically linked crates
//!   and their licences, from `cargo tree`) and `changelog.gz`.
//!
//! It declares `Conflicts`, `Replaces` and `Provides: kexec-tools`, Debian
//! Policy 7.6.2's way for one package to take another's place: installing it
//! removes kexec-tools (both ship `kexec`). The `Provides` is versioned
//! ([`KEXEC_TOOLS_PROVIDES`]): an unversioned one satisfies only unversioned
//! dependencies, and a `Depends: kexec-tools (>= …)` (none in Debian 12 or 13
//! today: kdump-tools, kiwi-dracut-oem-dump and crash depend or suggest
//! without a version) would then leave kdump-tools uninstallable.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};

use crate::util::{announce, capture, cargo, run, target_dir, workspace_root, GUEST_TARGET};

/// The package's name.
pub const PACKAGE: &str = "kexec-rs";

/// The package's version: the workspace's (a native package).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The package's architecture.
pub const ARCH: &str = "arm64";

/// What the package provides in kexec-tools' place: the newest kexec-tools
/// Debian ships (13, "trixie": 1:2.0.29-2), with Debian's epoch `1:` (without
/// it every `(>= 1:…)` would fail), so `Depends: kexec-tools (>= 1:2.0.29)`
/// and anything older is satisfied. The command line follows kexec-tools
/// 2.0.25 to current (README, "Using kexec"); raise this with it.
pub const KEXEC_TOOLS_PROVIDES: &str = "kexec-tools (= 1:2.0.29)";

/// Where each file goes in the package (path in the root, mode), besides
/// the man pages: (generated file under `ship-docs`' `completions/`, path).
pub const COMPLETIONS: [(&str, &str); 3] = [
    ("kexec.bash", "usr/share/bash-completion/completions/kexec"),
    ("_kexec", "usr/share/zsh/vendor-completions/_kexec"),
    (
        "kexec.fish",
        "usr/share/fish/vendor_completions.d/kexec.fish",
    ),
];

/// The binary's path in the package.
pub const BINARY: &str = "usr/sbin/kexec";

/// The man pages' directory in the package.
pub const MAN_DIR: &str = "usr/share/man/man8";

/// The documentation directory in the package.
pub const DOC_DIR: &str = "usr/share/doc/kexec-rs";

/// Build the package: the release arm64 binary (shared with the QEMU
/// scenarios), the generated docs, the staged root; returns the `.deb`'s
/// path (`target/debian/kexec-rs_<version>_arm64.deb`).
pub fn build() -> Result<PathBuf> {
    let binary = crate::scenario::build_our_kexec()?;
    let bytes = fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    check_static_aarch64(&bytes).with_context(|| binary.display().to_string())?;
    let out = target_dir().join("debian");
    let stage = out.join("stage");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    let docs = stage.join("docs");
    announce("generating the man pages and shell completions from the CLI definition");
    run(cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "kexec",
            "--example",
            "ship-docs",
            "--",
        ])
        .arg(&docs))?;
    let root = stage.join("root");
    strip_into(&binary, &root.join(BINARY))?;
    let mut pages: Vec<PathBuf> = fs::read_dir(docs.join("man"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    pages.sort();
    for page in &pages {
        let name = page.file_name().context("man page name")?.to_string_lossy();
        gzip_to(page, &root.join(MAN_DIR).join(format!("{name}.gz")))?;
    }
    for (file, dest) in COMPLETIONS {
        install_file(
            &docs.join("completions").join(file),
            &root.join(dest),
            0o644,
        )?;
    }
    let doc = root.join(DOC_DIR);
    fs::create_dir_all(&doc)?;
    write_file(&doc.join("copyright"), &copyright()?, 0o644)?;
    let changelog = stage.join("changelog");
    write_file(&changelog, &changelog_entry()?, 0o644)?;
    gzip_to(&changelog, &doc.join("changelog.gz"))?;
    let debian = root.join("DEBIAN");
    fs::create_dir_all(&debian)?;
    let control = control(installed_size_kib(&root)?);
    write_file(&debian.join("control"), &control, 0o644)?;
    let md5sums = capture(
        Command::new("sh")
            .current_dir(&root)
            .args(["-c", "find usr -type f | LC_ALL=C sort | xargs md5sum"]),
    )?;
    write_file(&debian.join("md5sums"), &md5sums, 0o644)?;
    set_dir_modes(&root)?;
    let deb = out.join(format!("{PACKAGE}_{VERSION}_{ARCH}.deb"));
    let partial = out.join(format!("{PACKAGE}.deb.partial"));
    announce(&format!("dpkg-deb --build {}", deb.display()));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&root)
        .arg(&partial)
        .env("SOURCE_DATE_EPOCH", source_date_epoch()))?;
    fs::rename(&partial, &deb)?;
    Ok(deb)
}

/// `dpkg -x DEB DIR`: unpack the package's files into `dir` (no install);
/// returns the path of the packaged binary there.
pub fn extract(deb: &Path, dir: &Path) -> Result<PathBuf> {
    run(Command::new("dpkg").arg("-x").arg(deb).arg(dir))?;
    Ok(dir.join(BINARY))
}

/// The SHA-256 (hex) of the purgatory embedded in `binary` (a release
/// arm64 `kexec`): the release build's `build.rs` output whose blob is in
/// the binary, whose digest is in the binary (what `--version` prints), and
/// whose blob hashes to that digest.
pub fn embedded_purgatory_digest(binary: &[u8]) -> Result<String> {
    let build = target_dir().join(GUEST_TARGET).join("release/build");
    let contains = |needle: &[u8]| binary.windows(needle.len()).any(|w| w == needle);
    for entry in fs::read_dir(&build).with_context(|| build.display().to_string())? {
        let out = entry?.path().join("out");
        let (Ok(hex), Ok(blob)) = (
            fs::read_to_string(out.join("purgatory.sha256")),
            fs::read(out.join("purgatory.bin")),
        ) else {
            continue;
        };
        if !contains(hex.as_bytes()) || !contains(&blob) {
            continue;
        }
        let actual = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&blob));
        if actual != hex {
            bail!(
                "{}: the embedded digest {hex} is not the blob's ({actual})",
                out.display()
            );
        }
        return Ok(hex);
    }
    bail!(
        "no purgatory built under {} is embedded with its digest in this binary",
        build.display()
    )
}

/// The `DEBIAN/control` file.
pub fn control(installed_size_kib: u64) -> String {
    format!(
        "Package: {PACKAGE}\n\
         Version: {VERSION}\n\
         Architecture: {ARCH}\n\
         Maintainer: kexec-rs developers <kexec-rs@example.invalid>\n\
         Installed-Size: {installed_size_kib}\n\
         Section: admin\n\
         Priority: optional\n\
         Conflicts: kexec-tools\n\
         Replaces: kexec-tools\n\
         Provides: {KEXEC_TOOLS_PROVIDES}\n\
         Description: kexec for arm64, in Rust: boot a new kernel from the running one\n \
         A drop-in for kexec-tools' kexec on arm64 (kexec -l, -p, -e, -u, -s, --status),\n \
         used by systemctl kexec and kdump-tools as kexec-tools is. It verifies what it\n \
         boots in its purgatory at cache speed, reads crash dumps (kexec vmcore) and\n \
         explains itself (--dry-run, --json). A static binary: it depends on nothing.\n"
    )
}

/// Whether `bytes` is a static AArch64 Linux executable: ELF64 little
/// endian, `EM_AARCH64`, an executable (`ET_EXEC`, or `ET_DYN` for a static
/// PIE), no program interpreter (`PT_INTERP`) and no `DT_NEEDED` library.
pub fn check_static_aarch64(bytes: &[u8]) -> Result<()> {
    let header = elf::FileHeader64::<object::Endianness>::parse(bytes)
        .map_err(|e| anyhow::anyhow!("not an ELF64 file: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| anyhow::anyhow!("ELF endianness: {e}"))?;
    if endian != object::Endianness::Little {
        bail!("big-endian ELF: arm64 Debian is little endian");
    }
    let machine = header.e_machine(endian);
    if machine != elf::EM_AARCH64 {
        bail!(
            "ELF machine {machine}, not EM_AARCH64 ({})",
            elf::EM_AARCH64
        );
    }
    let kind = header.e_type(endian);
    if kind != elf::ET_EXEC && kind != elf::ET_DYN {
        bail!("ELF type {kind} is not an executable");
    }
    let segments = header
        .program_headers(endian, bytes)
        .map_err(|e| anyhow::anyhow!("program headers: {e}"))?;
    for segment in segments {
        match segment.p_type(endian) {
            elf::PT_INTERP => bail!("has a program interpreter (PT_INTERP): dynamically linked"),
            elf::PT_DYNAMIC => {
                let entries = segment
                    .dynamic(endian, bytes)
                    .map_err(|e| anyhow::anyhow!("dynamic segment: {e}"))?
                    .unwrap_or_default();
                if entries.iter().any(|d| d.d_tag(endian) == elf::DT_NEEDED) {
                    bail!("needs shared libraries (DT_NEEDED): dynamically linked");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `Installed-Size`: the files' sizes, each rounded up to KiB (as
/// dpkg-gencontrol counts them), and one KiB per directory.
fn installed_size_kib(root: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            1 + installed_size_kib(&entry.path())?
        } else {
            meta.len().div_ceil(1024)
        };
    }
    Ok(total)
}

/// `copyright` in Debian's machine-readable format (DEP-5), with the crates
/// linked into the binary and their licences, as `cargo tree` lists them
/// for the arm64 target.
fn copyright() -> Result<String> {
    let tree = capture(cargo().current_dir(workspace_root()).args([
        "tree",
        "--quiet",
        "-p",
        "kexec",
        "-e",
        "normal,no-proc-macro",
        "--target",
        GUEST_TARGET,
        "--prefix",
        "none",
        "--format",
        "{p}\t{l}",
    ]))?;
    let mut crates: Vec<String> = tree
        .lines()
        .filter(|l| !l.contains(" (/") && !l.contains("(*)") && !l.trim().is_empty())
        .map(|l| {
            let (name, licence) = l.split_once('\t').unwrap_or((l, "?"));
            format!(" {name}: {}", licence.trim())
        })
        .collect();
    crates.sort();
    crates.dedup();
    let mut text = String::from(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: kexec-rs\n\
         \n\
         Files: *\n\
         Copyright: the kexec-rs developers\n\
         License: MIT or Apache-2.0\n\
         Comment: /usr/sbin/kexec is statically linked with these Rust crates\n \
         (name, version: licence):\n",
    );
    for line in &crates {
        let _ = writeln!(text, "{line}");
    }
    text.push_str(
        "\nLicense: Apache-2.0\n \
         On Debian systems, the full text of the Apache License, Version 2.0 is\n \
         in /usr/share/common-licenses/Apache-2.0.\n\
         \n\
         License: MIT\n \
         Permission is hereby granted, free of charge, to any person obtaining a copy\n \
         of this software and associated documentation files (the \"Software\"), to\n \
         deal in the Software without restriction, including without limitation the\n \
         rights to use, copy, modify, merge, publish, distribute, sublicense, and/or\n \
         sell copies of the Software, and to permit persons to whom the Software is\n \
         furnished to do so, subject to the following conditions:\n \
         .\n \
         The above copyright notice and this permission notice shall be included in\n \
         all copies or substantial portions of the Software.\n \
         .\n \
         THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR\n \
         IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,\n \
         FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE\n \
         AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER\n \
         LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING\n \
         FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS\n \
         IN THE SOFTWARE.\n",
    );
    Ok(text)
}

/// The commit the package is built from and its date (RFC 2822), or, outside
/// a git checkout, `SOURCE_DATE_EPOCH`'s.
fn commit() -> (String, String) {
    let git = |format: &str| {
        capture(Command::new("git").current_dir(workspace_root()).args([
            "log",
            "-1",
            &format!("--format={format}"),
        ]))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    };
    match (git("%h"), git("%aD")) {
        (Some(hash), Some(date)) => (format!("commit {hash}"), date),
        _ => (
            "a source tree outside git".to_owned(),
            capture(Command::new("date").args([
                "-R",
                "-u",
                "-d",
                &format!("@{}", source_date_epoch()),
            ]))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned()),
        ),
    }
}

/// `SOURCE_DATE_EPOCH` (reproducible builds), else the commit's time, else 0.
fn source_date_epoch() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| {
            capture(Command::new("git").current_dir(workspace_root()).args([
                "log",
                "-1",
                "--format=%ct",
            ]))
            .ok()
        })
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0".to_owned())
}

/// A one-entry Debian changelog for this native package.
fn changelog_entry() -> Result<String> {
    let (what, date) = commit();
    Ok(format!(
        "{PACKAGE} ({VERSION}) unstable; urgency=medium\n\n  \
         * Built by `cargo xtask package` from {what}.\n\n \
         -- kexec-rs developers <kexec-rs@example.invalid>  {date}\n"
    ))
}

/// Copy `binary` without its symbol table (Debian Policy 10.1: binaries are
/// stripped), with the toolchain's `rust-objcopy` (LLVM's, which reads every
/// target; the host's binutils know only the host's).
fn strip_into(binary: &Path, to: &Path) -> Result<()> {
    let sysroot = capture(Command::new("rustc").args(["--print", "sysroot"]))?;
    let host = capture(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host")?;
    let objcopy = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-objcopy");
    if !objcopy.is_file() {
        bail!(
            "{} not found (it comes with rustc); hint: rustup update",
            objcopy.display()
        );
    }
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    run(Command::new(&objcopy)
        .arg("--strip-all")
        .arg(binary)
        .arg(to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn install_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// `gzip -9n` (no name or time stamp: reproducible), as Debian compresses
/// man pages and changelogs.
fn gzip_to(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    crate::util::gzip_file(from, to, 9)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Every directory 0755, whatever the umask.
fn set_dir_modes(dir: &Path) -> Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            set_dir_modes(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_declares_the_replacement() {
        let c = control(2600);
        for field in [
            "Package: kexec-rs\n",
            "Architecture: arm64\n",
            "Conflicts: kexec-tools\n",
            "Replaces: kexec-tools\n",
            "Provides: kexec-tools (= 1:2.0.29)\n",
            "Installed-Size: 2600\n",
        ] {
            assert!(c.contains(field), "{field}");
        }
        // Every continuation line of the description starts with a space.
        let description = c.split_once("Description: ").unwrap().1;
        assert!(description.lines().skip(1).all(|l| l.starts_with(' ')));
    }

    /// A minimal ELF64 header, program headers of `segments`' types and, for
    /// a `PT_DYNAMIC` one, a dynamic table of `dynamic` tags (then `DT_NULL`).
    fn elf(
        machine: elf::Machine,
        kind: elf::FileType,
        segments: &[elf::ProgramType],
        dynamic: &[elf::DynamicTag],
    ) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // ELFDATA2LSB
        b[6] = 1; // EV_CURRENT
        b[16..18].copy_from_slice(&kind.0.to_le_bytes());
        b[18..20].copy_from_slice(&machine.0.to_le_bytes());
        b[20..24].copy_from_slice(&1u32.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        let count = u16::try_from(segments.len()).unwrap();
        b[56..58].copy_from_slice(&count.to_le_bytes());
        let table = 64 + 56 * segments.len() as u64;
        let table_len = 16 * (dynamic.len() as u64 + 1);
        for &p_type in segments {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&p_type.0.to_le_bytes());
            if p_type == elf::PT_DYNAMIC {
                ph[8..16].copy_from_slice(&table.to_le_bytes()); // p_offset
                ph[32..40].copy_from_slice(&table_len.to_le_bytes()); // p_filesz
            }
            b.extend(ph);
        }
        for &tag in dynamic.iter().chain(&[elf::DT_NULL]) {
            b.extend(tag.0.to_le_bytes());
            b.extend(0u64.to_le_bytes());
        }
        b
    }

    #[test]
    fn only_a_static_aarch64_executable_passes() {
        let (arm, load, dynamic) = (elf::EM_AARCH64, elf::PT_LOAD, elf::PT_DYNAMIC);
        check_static_aarch64(&elf(arm, elf::ET_EXEC, &[load], &[])).unwrap();
        // A static PIE: a dynamic table (for its own relocations), no library.
        let relative = elf::DT_RELA;
        check_static_aarch64(&elf(arm, elf::ET_DYN, &[load, dynamic], &[relative])).unwrap();
        let err = |b: Vec<u8>| check_static_aarch64(&b).unwrap_err().to_string();
        let needed = elf::DT_NEEDED;
        assert!(
            err(elf(arm, elf::ET_DYN, &[load, dynamic], &[relative, needed])).contains("DT_NEEDED")
        );
        assert!(err(elf(elf::EM_X86_64, elf::ET_EXEC, &[], &[])).contains("not EM_AARCH64"));
        assert!(err(elf(arm, elf::ET_REL, &[], &[])).contains("not an executable"));
        assert!(err(elf(arm, elf::ET_DYN, &[elf::PT_INTERP], &[])).contains("PT_INTERP"));
        assert!(err(b"#!/bin/sh\n".to_vec()).contains("not an ELF64"));
    }
}
