//! The host side of setup: which Debian packages the project needs and why,
//! installing them (`cargo xtask setup`), reporting what is missing without
//! installing (`cargo xtask setup --check`), and the smoke boot that proves
//! QEMU on this host can start the downloaded kernel.
//!
//! A fresh Debian machine has only what `Priority: required` brings; Debian's
//! Recommends are never installed here (`--no-install-recommends`), so every
//! program the harness starts must be listed in [`HOST_TOOLS`].

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::qemu::{self, Console};
use crate::util::{announce, capture, run, which};

/// Rust targets the project builds for (rustup adds them).
pub const RUST_TARGETS: [&str; 2] = ["aarch64-unknown-linux-musl", "aarch64-unknown-none"];

/// Who needs a host tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `cargo xtask demo` (and everything else): installed by every setup.
    Demo,
    /// Only `cargo xtask test` (installed by it, not by the demo's setup).
    Test,
}

/// A program the harness runs, the Debian package that provides it, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostTool {
    /// Program looked up on `PATH`, or (starting with `/`) a file that
    /// must exist (a source tarball, a header).
    pub program: &'static str,
    /// Debian package that installs it.
    pub package: &'static str,
    /// Who needs it.
    pub need: Need,
    /// Why (README.md repeats this; a test checks the README lists each package).
    pub why: &'static str,
}

/// Every host program the harness starts that a fresh Debian machine with
/// Rust lacks. (gzip, dpkg-deb, apt-get, unshare, chroot, tar, perl-base are
/// `Essential`; gcc and libc6-dev come with Rust.)
pub const HOST_TOOLS: [HostTool; 17] = [
    HostTool {
        program: qemu::QEMU,
        package: "qemu-system-arm",
        need: Need::Demo,
        why: "runs the arm64 guests (TCG); without its Recommends (ipxe-qemu, UEFI \
              firmware, GUI): guests start with `-nic none`",
    },
    HostTool {
        program: qemu::UEFI_FIRMWARE,
        package: "qemu-efi-aarch64",
        need: Need::Test,
        why: "the UEFI firmware (EDK II ArmVirtQemu) the UEFI and ACPI guests boot through",
    },
    HostTool {
        program: "cpio",
        package: "cpio",
        need: Need::Demo,
        why: "packs the guests' initramfs",
    },
    HostTool {
        program: "readelf",
        package: "binutils",
        need: Need::Demo,
        why: "checks that kexec-tools:arm64 has every shared library it needs in the guest",
    },
    HostTool {
        program: "mmdebstrap",
        package: "mmdebstrap",
        need: Need::Test,
        why: "builds the fresh Debian 12 root of `cargo xtask fresh-check`",
    },
    HostTool {
        program: "mount",
        package: "mount",
        need: Need::Test,
        why: "bind-mounts the toolchain, /proc and /dev into that root",
    },
    HostTool {
        program: crate::kbuild::SOURCE_TARBALL,
        package: "linux-source-6.1",
        need: Need::Test,
        why: "the source of the test kernel built with KEXEC_FILE, KEXEC_SIG and lockdown \
              (Debian's arm64 kernels lack KEXEC_FILE)",
    },
    HostTool {
        program: "aarch64-linux-gnu-gcc",
        package: "gcc-aarch64-linux-gnu",
        need: Need::Test,
        why: "cross-compiles that test kernel",
    },
    HostTool {
        program: "make",
        package: "make",
        need: Need::Test,
        why: "runs the kernel's build",
    },
    HostTool {
        program: "bc",
        package: "bc",
        need: Need::Test,
        why: "the kernel's build computes constants with it",
    },
    HostTool {
        program: "flex",
        package: "flex",
        need: Need::Test,
        why: "the kernel's Kconfig and dtc lexers",
    },
    HostTool {
        program: "bison",
        package: "bison",
        need: Need::Test,
        why: "the kernel's Kconfig and dtc parsers",
    },
    HostTool {
        program: "/usr/include/openssl/pem.h",
        package: "libssl-dev",
        need: Need::Test,
        why: "the kernel's certs/extract-cert and scripts/sign-file (the trusted test key)",
    },
    HostTool {
        program: "openssl",
        package: "openssl",
        need: Need::Test,
        why: "generates the throwaway test certificates the test kernel trusts (or not)",
    },
    HostTool {
        program: "sbsign",
        package: "sbsigntool",
        need: Need::Test,
        why: "signs the test Image (PE/Authenticode) for KEXEC_IMAGE_VERIFY_SIG",
    },
    HostTool {
        program: "ip",
        package: "iproute2",
        need: Need::Test,
        why: "puts a veth pair in a network namespace for the ifdown test (kexec-sys)",
    },
    HostTool {
        program: "xz",
        package: "xz-utils",
        need: Need::Test,
        why: "unpacks the kernel source tarball",
    },
];

/// Whether `tool` is on this host (a program on `PATH`, or an absolute file).
pub fn present(tool: &HostTool) -> bool {
    if tool.program.starts_with('/') {
        Path::new(tool.program).is_file()
    } else {
        which(tool.program).is_some()
    }
}

/// The tools `need` requires: the demo's always, the test's as well for `Need::Test`.
pub fn tools_for(need: Need) -> impl Iterator<Item = &'static HostTool> {
    HOST_TOOLS
        .iter()
        .filter(move |t| t.need == Need::Demo || need == Need::Test)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    capture(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// The packages of the tools `need` requires that are not on `PATH`.
pub fn missing_packages(need: Need) -> Vec<&'static str> {
    let missing: BTreeSet<&str> = tools_for(need)
        .filter(|t| !present(t))
        .map(|t| t.package)
        .collect();
    missing.into_iter().collect()
}

/// Install the packages of the tools `need` requires (as root), or stop with
/// the exact `sudo apt-get` line.
pub fn install(need: Need) -> Result<()> {
    let names: Vec<&str> = tools_for(need).map(|t| t.program).collect();
    announce(&format!("checking host tools ({})", names.join(", ")));
    if which("apt-get").is_none() {
        bail!("apt-get not found: setup needs a Debian or Ubuntu host");
    }
    let list = missing_packages(need);
    if list.is_empty() {
        return Ok(());
    }
    let line = format!(
        "apt-get install -y --no-install-recommends {}",
        list.join(" ")
    );
    if !is_root() {
        bail!("missing host packages; install them with:\n    sudo apt-get update && sudo {line}");
    }
    println!("    installing {}", list.join(" "));
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&list)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The line the kernel prints first (with `earlycon`).
pub const SMOKE_LINE: &str = "Booting Linux on physical CPU";

/// How long the smoke boot may take to print [`SMOKE_LINE`] (under TCG it
/// takes about a second; the bound allows a busy 2-core host).
pub const SMOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The smoke boot's QEMU command: the `virt` machine every scenario uses,
/// `kernel` with no initrd, its console on the PL011 from the first line.
pub fn smoke_command(qemu: &Path, kernel: &Path) -> Command {
    let mut cmd = qemu::virt_command(qemu, &[], "cortex-a57", 256);
    cmd.arg("-no-reboot")
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyAMA0 earlycon panic=-1"]);
    cmd
}

/// Boot `kernel` in QEMU until it prints its first line, so a host that
/// cannot run the demo is told here, with QEMU's own error, and not later by
/// a scenario.
pub fn smoke_boot(kernel: &Path) -> Result<Duration> {
    announce(&format!(
        "smoke boot: {} -M virt -kernel {} must print `{SMOKE_LINE}` within {} s",
        qemu::QEMU,
        kernel.display(),
        SMOKE_TIMEOUT.as_secs()
    ));
    let mut console = Console::start_command(smoke_command(Path::new(qemu::QEMU), kernel))?;
    let line = console
        .expect_line(SMOKE_LINE, SMOKE_TIMEOUT)
        .with_context(|| {
            format!(
                "QEMU cannot boot the test kernel on this host, so neither the demo nor the \
             tests can run.\nhint: run the command by hand to see QEMU's error:\n    {}",
                crate::util::describe(&smoke_command(Path::new(qemu::QEMU), kernel))
            )
        })?;
    println!(
        "    kernel printed its first line after {:.1} s: {}",
        line.at.as_secs_f64(),
        line.text.trim()
    );
    Ok(line.at)
}

/// `cargo xtask setup --check`: report, without installing anything, what
/// `need` requires and this host lacks; `Ok(false)` when something is missing.
pub fn check(need: Need) -> Result<bool> {
    let mut ok = true;
    let mut report = |item: &str, present: bool, fix: &str| {
        if present {
            println!("    ok       {item}");
        } else {
            println!("    MISSING  {item}: {fix}");
            ok = false;
        }
    };
    announce("rustup targets");
    let installed =
        capture(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    for target in RUST_TARGETS {
        let present = installed.lines().any(|l| l.trim() == target);
        report(target, present, &format!("rustup target add {target}"));
    }
    announce("host tools (Debian packages, installed without their Recommends)");
    for tool in tools_for(need) {
        report(
            &format!(
                "{}{} ({}): {}",
                if tool.need == Need::Test {
                    "[test only] "
                } else {
                    ""
                },
                tool.program,
                tool.package,
                tool.why
            ),
            present(tool),
            &format!("apt-get install --no-install-recommends {}", tool.package),
        );
    }
    announce("arm64 test assets");
    let foreign =
        capture(Command::new("dpkg").arg("--print-foreign-architectures")).unwrap_or_default();
    report(
        "dpkg foreign architecture arm64",
        foreign.lines().any(|l| l.trim() == "arm64"),
        "dpkg --add-architecture arm64 && apt-get update",
    );
    let kernel = test_assets::default_kernel();
    report(
        &format!(
            "default arm64 kernel in {}",
            test_assets::kernels_dir().display()
        ),
        kernel.is_some(),
        "cargo xtask setup",
    );
    report(
        "a second arm64 kernel version",
        test_assets::installed_kernels().len() >= 2,
        "cargo xtask setup",
    );
    if need == Need::Test {
        report(
            &format!(
                "[test only] the test kernel (KEXEC_FILE, KEXEC_SIG, lockdown) in {}",
                crate::kbuild::root().display()
            ),
            crate::kbuild::cached().is_ok(),
            "cargo xtask test-kernel (cargo xtask test builds it too)",
        );
    }
    let guest = test_assets::cache_dir().join("guest/root");
    report(
        &format!("guest busybox and kexec-tools in {}", guest.display()),
        guest.join("bin/busybox").is_file() && guest.join("sbin/kexec").is_file(),
        "cargo xtask setup",
    );
    match kernel {
        Some(k) if which(qemu::QEMU).is_some() => {
            if let Err(e) = smoke_boot(&k.image) {
                println!("{e:#}");
                ok = false;
            }
        }
        _ => println!("    (smoke boot skipped: needs QEMU and the kernel)"),
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_names_every_host_package_and_why() {
        let readme = std::fs::read_to_string(crate::util::workspace_root().join("README.md"))
            .expect("README.md");
        for tool in HOST_TOOLS {
            assert!(
                readme.contains(&format!("`{}`", tool.package)),
                "README.md does not list the Debian package `{}` ({})",
                tool.package,
                tool.why
            );
        }
    }

    #[test]
    fn test_tools_include_the_demo_tools_and_not_the_reverse() {
        let demo: Vec<_> = tools_for(Need::Demo).map(|t| t.package).collect();
        let test: Vec<_> = tools_for(Need::Test).map(|t| t.package).collect();
        assert!(demo.contains(&"qemu-system-arm") && !demo.contains(&"mmdebstrap"));
        assert!(demo.iter().all(|p| test.contains(p)) && test.contains(&"mmdebstrap"));
    }

    #[test]
    fn smoke_boot_has_no_nic_and_an_early_console() {
        let args = crate::util::args_of(&smoke_command(Path::new("q"), Path::new("/k/Image")));
        assert_eq!(
            args.join(" "),
            "-M virt -cpu cortex-a57 -m 256 -nic none -nographic -no-reboot \
             -kernel /k/Image -append console=ttyAMA0 earlycon panic=-1"
        );
    }
}
