//! The guest side of the end-to-end tests: initramfs images for kernel A and B.
//!
//! A guest initramfs is a concatenation of `newc` cpio archives, which the
//! kernel unpacks in order (Documentation/driver-api/early-userspace/buffer-format.rst):
//! a gzip'd *base* (busybox, kexec-tools and makedumpfile with their
//! libraries, and `/init`) that
//! setup builds once, followed by a per-run uncompressed *stage* archive that
//! carries the stage script (`/stage/<name>.sh`) and its payload files (the
//! next kernel, its initrd, …).
//!
//! `/init` reports progress on the console as marker lines,
//! `@@kxt <stage> <key> <value…>`, which the harness parses. Every boot reports
//! `boot` (kernel release), `cmdline`, `cpus` (the online CPU list), `iomem`
//! (its System RAM, Crash kernel, Kernel code and Kernel data lines, `;`
//! separated), in a crash kernel `vmcore` (size) and `vmcore-magic` (first 4
//! bytes in hex) and, when
//! the kernel kept its initrd (`retain_initrd`), `initrd-sha256` (computed by
//! the `kxt-probe` helper from crates/guest-probe); then it runs
//! the stage script named by `kxt.stage=` on the command line, reports `end`
//! and powers off.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::setup::{find_library, Assets, GUEST_PROGRAMS};
use crate::util::{announce, capture};

/// The `/init` of every guest.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
stage=$(sed -n 's/.*kxt\.stage=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$stage" ] || stage=none
say() { echo "@@kxt $stage $*"; }
fail() { say error "$*"; poweroff -f; }
say boot "$(uname -r)"
say cmdline "$(cat /proc/cmdline)"
say cpus "$(cat /sys/devices/system/cpu/online)"
say ktext "$(grep -m1 ' _stext$' /proc/kallsyms | cut -d' ' -f1)"
case " $(cat /proc/cmdline) " in *" retain_initrd "*)
  say initrd-sha256 "$(kxt-probe initrd-sha256 2>&1)";;
esac
say iomem "$(grep -E ' : (System RAM|Crash kernel|Kernel code|Kernel data)$' /proc/iomem | sed 's/^ *//' | tr '\n' ';')"
if [ -e /proc/vmcore ]; then
  say vmcore "$(stat -c %s /proc/vmcore)"
  say vmcore-magic "$(head -c 4 /proc/vmcore | od -An -tx1 | tr -d ' \n')"
fi
if [ -f "/stage/$stage.sh" ]; then
  . "/stage/$stage.sh"
fi
say end
poweroff -f
"#;

/// Path of the base initramfs inside the cache, named after what goes into
/// it (the `/init` script, the program list and kxt-probe's source, with
/// the kexec-sys module it reads /proc/vmcore with), so that checkouts with
/// different guests sharing one cache never overwrite each other's base.
pub fn base_initramfs(assets: &Assets) -> PathBuf {
    use sha2::{Digest, Sha256};
    let mut recipe = Sha256::new();
    recipe.update(INIT);
    for (package, program) in GUEST_PROGRAMS {
        recipe.update(format!("\0{package}\0{program}"));
    }
    // kxt-probe's source: a checkout whose probe differs gets its own base.
    recipe.update(include_str!("../../crates/guest-probe/src/main.rs"));
    recipe.update(include_str!("../../crates/guest-probe/Cargo.toml"));
    // and the kexec-sys module its `vmcore-read` runs.
    recipe.update(include_str!("../../crates/kexec-sys/src/mapped.rs"));
    let digest = recipe.finalize();
    let key: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    assets
        .root
        .join("guest")
        .join(format!("base-{key}.cpio.gz"))
}

/// Build the base initramfs (busybox, kexec-tools with its libraries, `/init`).
pub fn build_base(assets: &Assets) -> Result<PathBuf> {
    announce("building the guest base initramfs (busybox, kexec-tools, makedumpfile, /init)");
    let out = base_initramfs(assets);
    // Staged beside its own output: checkouts sharing the cache build
    // different bases without emptying each other's staging directory.
    let stage = out.with_extension("staging");
    let _ = fs::remove_dir_all(&stage);
    for dir in ["bin", "sbin", "lib/aarch64-linux-gnu", "stage", "payload"] {
        fs::create_dir_all(stage.join(dir))?;
    }
    let src = &assets.guest_root;
    copy_file(&src.join("bin/busybox"), &stage.join("bin/busybox"), 0o755)?;
    copy_file(&build_probe()?, &stage.join("bin/kxt-probe"), 0o755)?;
    for (package, program) in GUEST_PROGRAMS {
        let from = src.join(program);
        if !from.is_file() {
            bail!("{package}'s {program} missing: run `cargo xtask setup`");
        }
        copy_file(&from, &stage.join(program), 0o755)?;
        for lib in needed_closure(src, &from)? {
            let from = find_library(src, &lib).with_context(|| format!("missing {lib}"))?;
            copy_file(
                &from,
                &stage.join("lib/aarch64-linux-gnu").join(&lib),
                0o644,
            )?;
        }
    }
    // The program interpreter, at the absolute path recorded in the binary.
    let program_headers = capture(
        Command::new("readelf")
            .arg("-l")
            .arg(src.join("sbin/kexec")),
    )?;
    let interp = program_headers
        .lines()
        .find_map(|l| l.split("program interpreter: ").nth(1))
        .and_then(|s| s.strip_suffix(']'))
        .context("kexec has no program interpreter")?;
    let interp_rel = interp.trim_start_matches('/');
    let interp_src = [interp_rel, &format!("usr/{interp_rel}")]
        .iter()
        .map(|p| src.join(p))
        .find(|p| p.exists())
        .with_context(|| format!("program interpreter {interp} not in the arm64 packages"))?;
    copy_file(&interp_src, &stage.join(interp_rel), 0o755)?;
    write_file(&stage.join("init"), INIT.as_bytes(), 0o755)?;
    let cpio = pack_cpio(&stage)?;
    let gz = gzip(&cpio)?;
    fs::write(&out, gz)?;
    fs::remove_dir_all(&stage)?;
    println!("    {}", out.display());
    Ok(out)
}

/// Build the static arm64 `kxt-probe` helper and return its path.
fn build_probe() -> Result<PathBuf> {
    announce("building kxt-probe for aarch64-unknown-linux-musl");
    crate::util::build_static_arm64("guest-probe", "kxt-probe")
}

/// Every NEEDED library of `binary`, recursively, by soname.
fn needed_closure(root: &Path, binary: &Path) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut todo = vec![binary.to_path_buf()];
    while let Some(file) = todo.pop() {
        let dynamic = capture(Command::new("readelf").arg("-d").arg(&file))?;
        for line in dynamic.lines().filter(|l| l.contains("(NEEDED)")) {
            let Some(lib) = line.rsplit('[').next().and_then(|s| s.strip_suffix(']')) else {
                continue;
            };
            if out.iter().any(|l| l == lib) {
                continue;
            }
            out.push(lib.to_owned());
            if let Some(path) = find_library(root, lib) {
                todo.push(path);
            }
        }
    }
    Ok(out)
}

fn copy_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_file(to, &bytes, mode)
}

fn write_file(to: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(to, bytes).with_context(|| format!("writing {}", to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Pack a directory as a `newc` cpio archive, owned by root.
fn pack_cpio(dir: &Path) -> Result<Vec<u8>> {
    let list = capture(Command::new("find").arg(".").current_dir(dir))?;
    let mut child = Command::new("cpio")
        .args(["-o", "-H", "newc", "--owner=0:0", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cpio (run `cargo xtask setup`)")?;
    let mut stdin = child.stdin.take().context("cpio stdin")?;
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut sorted: Vec<&str> = list.lines().collect();
        sorted.sort_unstable();
        stdin.write_all(sorted.join("\n").as_bytes())
    });
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("cpio writer thread panicked"))??;
    if !out.status.success() {
        bail!("cpio failed ({})", out.status);
    }
    Ok(out.stdout)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .args(["-n", "-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start gzip")?;
    let mut stdin = child.stdin.take().context("gzip stdin")?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer thread panicked"))??;
    if !out.status.success() {
        bail!("gzip failed ({})", out.status);
    }
    Ok(out.stdout)
}

/// One stage of a scenario: the script `/init` runs and the files it uses.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    /// Stage name, passed to the kernel as `kxt.stage=<name>`.
    pub name: String,
    /// Shell snippet sourced by `/init` (it may call `say KEY VALUE` and `fail MSG`).
    pub script: String,
    /// Files placed in the guest: (absolute guest path, contents).
    pub files: Vec<(String, FileSource)>,
}

/// Where the bytes of a guest file come from.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// A host file.
    Host(PathBuf),
    /// Literal bytes.
    Bytes(Vec<u8>),
}

/// Write the initramfs for one stage: base archive followed by the stage's archive.
pub fn stage_initramfs(assets: &Assets, stage: &Stage, out: &Path) -> Result<()> {
    let dir = out.with_extension("staging");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    write_file(
        &dir.join("stage").join(format!("{}.sh", stage.name)),
        stage.script.as_bytes(),
        0o644,
    )?;
    for (guest_path, source) in &stage.files {
        let to = dir.join(guest_path.trim_start_matches('/'));
        match source {
            FileSource::Host(from) => {
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent)?;
                }
                if fs::hard_link(from, &to).is_err() {
                    fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
                }
            }
            FileSource::Bytes(bytes) => write_file(&to, bytes, 0o644)?,
        }
    }
    let base = base_initramfs(assets);
    let mut image = fs::read(&base)
        .with_context(|| format!("{} missing: run `cargo xtask setup`", base.display()))?;
    // An uncompressed archive must start 4-byte aligned; zeros between
    // archives are skipped by the kernel's unpacker.
    image.resize(image.len().next_multiple_of(4), 0);
    image.extend(pack_cpio(&dir)?);
    fs::write(out, image).with_context(|| format!("writing {}", out.display()))?;
    fs::remove_dir_all(&dir)?;
    Ok(())
}
