//! The Debian package (`cargo xtask package`, xtask/src/package.rs): its
//! control fields and files as `dpkg-deb` reads them, the packaged binary,
//! and an install into a clean arm64 root with `dpkg --root`, where dpkg
//! itself judges the Conflicts/Replaces/Provides.
//!
//! `#[ignore]`d in a plain `cargo test`: building the package builds the
//! release arm64 binary. `cargo xtask test` runs them (its "Debian package"
//! step, and again in the QEMU suite, where `ours_boots_kernel_b_on_one_cpu`
//! boots the packaged binary).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use xtask::package::{self, BINARY, COMPLETIONS, DOC_DIR, KEXEC_TOOLS_PROVIDES, MAN_DIR};
use xtask::scenario::WorkDir;
use xtask::util::which;

/// The package, built once per test binary.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| package::build().unwrap_or_else(|e| panic!("{e:#}")))
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()))
}

fn stdout(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `dpkg-deb --field` of `deb`: (field, value) in order.
fn fields(deb: &Path) -> Vec<(String, String)> {
    stdout(Command::new("dpkg-deb").arg("--field").arg(deb))
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
#[ignore = "builds the release arm64 binary; run by `cargo xtask test`"]
fn deb_control_declares_kexec_tools_replaced() {
    let f = fields(deb());
    let get = |k: &str| f.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("Package"), Some("kexec-rs"));
    assert_eq!(get("Version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(get("Architecture"), Some("arm64"));
    assert_eq!(get("Conflicts"), Some("kexec-tools"));
    assert_eq!(get("Replaces"), Some("kexec-tools"));
    assert_eq!(get("Provides"), Some(KEXEC_TOOLS_PROVIDES));
    // A static binary depends on nothing.
    assert_eq!(get("Depends"), None);
    let info = stdout(Command::new("dpkg-deb").arg("--info").arg(deb()));
    assert!(
        info.contains(" control ") && info.contains(" md5sums "),
        "{info}"
    );
}

#[test]
#[ignore = "builds the release arm64 binary; run by `cargo xtask test`"]
fn deb_contents_are_root_owned_in_debian_paths() {
    let listing = stdout(Command::new("dpkg-deb").arg("--contents").arg(deb()));
    // "-rwxr-xr-x root/root   2013432 2026-11-30 04:00 ./usr/sbin/kexec"
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0], cols[1], cols[5].trim_start_matches("./"))
        })
        .collect();
    let mode = |path: &str| {
        entries
            .iter()
            .find(|(_, _, p)| *p == path)
            .map(|(m, _, _)| *m)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
    };
    assert_eq!(mode(BINARY), "-rwxr-xr-x");
    assert_eq!(mode(&format!("{MAN_DIR}/kexec.8.gz")), "-rw-r--r--");
    for (_, path) in COMPLETIONS {
        assert_eq!(mode(path), "-rw-r--r--", "{path}");
    }
    for doc in ["copyright", "changelog.gz"] {
        assert_eq!(mode(&format!("{DOC_DIR}/{doc}")), "-rw-r--r--");
    }
    for (m, owner, path) in &entries {
        assert_eq!(*owner, "root/root", "{path}");
        assert!(path.is_empty() || path.starts_with("usr/"), "{path}");
        assert!(m.starts_with('d') || m.starts_with('-'), "{m} {path}");
    }
    // One man page per subcommand page ship-docs generated, each gzipped.
    let pages = entries
        .iter()
        .filter(|(_, _, p)| p.starts_with(MAN_DIR) && p.ends_with(".8.gz"))
        .count();
    assert!(pages >= 2, "{listing}");
}

#[test]
#[ignore = "builds the release arm64 binary; run by `cargo xtask test`"]
fn deb_binary_is_the_static_release_build_with_its_docs() {
    let dir = WorkDir::new("deb-x").unwrap();
    let binary = package::extract(deb(), &dir.0).unwrap();
    let bytes = std::fs::read(&binary).unwrap();
    package::check_static_aarch64(&bytes).unwrap();
    // A release build never reads the test seed (the `test-seed` feature is
    // off): the variable's name is not even in it.
    let needle = b"KEXEC_RS_TEST_SEED";
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "the packaged binary contains {}",
        String::from_utf8_lossy(needle)
    );
    let digest = package::embedded_purgatory_digest(&bytes).unwrap();
    assert_eq!(digest.len(), 64);
    if let Some(qemu) = which("qemu-aarch64").or_else(|| which("qemu-aarch64-static")) {
        let version = stdout(Command::new(qemu).arg(&binary).arg("--version"));
        assert!(
            version.contains(&format!("purgatory: sha256 {digest} (")),
            "{version}"
        );
        assert!(!version.contains("test build"), "{version}");
    }
    // The man page is roff that groff renders without a warning.
    let page = stdout(
        Command::new("gzip")
            .args(["-dc"])
            .arg(dir.0.join(MAN_DIR).join("kexec.8.gz")),
    );
    assert!(
        page.lines().any(|l| l.starts_with(".TH kexec 8 ")),
        "{page}"
    );
    if which("groff").is_some() {
        let out = output(
            Command::new("sh")
                .arg("-c")
                .arg("gzip -dc \"$1\" | groff -man -Tutf8 -ww -z")
                .arg("sh")
                .arg(dir.0.join(MAN_DIR).join("kexec.8.gz")),
        );
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }
    let bash = dir.0.join(COMPLETIONS[0].1);
    let out = output(Command::new("bash").arg("-n").arg(&bash));
    assert!(out.status.success(), "{out:?}");
}

/// A clean arm64 dpkg database under `root`: `arm64` is a known (foreign)
/// architecture there, so dpkg needs no `--force-architecture`.
fn clean_root(root: &Path) {
    let admin = root.join("var/lib/dpkg");
    for dir in ["info", "updates", "triggers"] {
        std::fs::create_dir_all(admin.join(dir)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    std::fs::write(admin.join("arch"), "arm64\n").unwrap();
}

/// `dpkg --root=ROOT ARGS…` (no maintainer scripts run: ours has none).
fn dpkg(root: &Path, args: &[&str], deb: Option<&Path>) -> Output {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("dpkg.log").display()))
        .arg("--force-not-root")
        .args(args);
    if let Some(deb) = deb {
        cmd.arg(deb);
    }
    output(&mut cmd)
}

/// A stand-in package with `fields` (after Package/Version/Architecture)
/// and one file, `usr/sbin/kexec` when `ships_kexec`.
fn fake_deb(dir: &Path, name: &str, version: &str, fields: &str, ships_kexec: bool) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: arm64\n\
             Maintainer: test <test@example.invalid>\n{fields}Description: stand-in\n for a test\n"
        ),
    )
    .unwrap();
    let file = if ships_kexec {
        "usr/sbin/kexec".to_owned()
    } else {
        format!("usr/share/doc/{name}/stand-in")
    };
    std::fs::create_dir_all(root.join(&file).parent().unwrap()).unwrap();
    std::fs::write(root.join(file), format!("{name}\n")).unwrap();
    let deb = dir.join(format!("{name}.deb"));
    stdout(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb),
    );
    deb
}

fn ok(out: &Output) -> bool {
    out.status.success()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[ignore = "builds the release arm64 binary; run by `cargo xtask test`"]
fn deb_installs_into_a_clean_arm64_root_and_takes_kexec_tools_place() {
    let work = WorkDir::new("deb-root").unwrap();
    let root = work.0.join("root");
    clean_root(&root);
    let out = dpkg(&root, &["-i"], Some(deb()));
    assert!(ok(&out), "{}", text(&out));
    for path in [
        BINARY,
        &format!("{MAN_DIR}/kexec.8.gz"),
        &format!("{DOC_DIR}/copyright"),
    ] {
        assert!(root.join(path).is_file(), "{path}");
    }
    for (_, path) in COMPLETIONS {
        assert!(root.join(path).is_file(), "{path}");
    }
    let status = stdout(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["-s", "kexec-rs"]),
    );
    for line in [
        "Status: install ok installed",
        "Conflicts: kexec-tools",
        "Replaces: kexec-tools",
        &format!("Provides: {KEXEC_TOOLS_PROVIDES}"),
    ] {
        assert!(status.lines().any(|l| l == line), "{line}:\n{status}");
    }

    // The versioned Provides satisfies a versioned dependency on kexec-tools
    // up to the version provided (no --force-depends) …
    let fakes = work.0.join("fakes");
    std::fs::create_dir_all(&fakes).unwrap();
    let kdump = fake_deb(
        &fakes,
        "kdump-tools",
        "1:1.10.7",
        "Depends: kexec-tools (>= 1:2.0.25)\n",
        false,
    );
    let out = dpkg(&root, &["-i"], Some(&kdump));
    assert!(ok(&out), "{}", text(&out));
    // … and not past it: dpkg really compares the version.
    let newer = fake_deb(
        &fakes,
        "needs-newer",
        "1",
        "Depends: kexec-tools (>= 1:2.0.30)\n",
        false,
    );
    let out = dpkg(&root, &["-i"], Some(&newer));
    assert!(!ok(&out), "{}", text(&out));
    assert!(
        text(&out).contains("kexec-tools (>= 1:2.0.30)"),
        "{}",
        text(&out)
    );

    // kexec-tools cannot be installed beside it (Conflicts) …
    let kexec_tools = fake_deb(&fakes, "kexec-tools", "1:2.0.25-3", "", true);
    let out = dpkg(&root, &["-i"], Some(&kexec_tools));
    assert!(!ok(&out), "{}", text(&out));
    for says in [
        "kexec-rs:arm64 conflicts with kexec-tools",
        "conflicting packages - not installing kexec-tools",
    ] {
        assert!(text(&out).contains(says), "{}", text(&out));
    }
    // … and where kexec-tools is installed, installing kexec-rs removes it
    // (Conflicts + Replaces) and takes over /usr/sbin/kexec.
    let other = work.0.join("other");
    clean_root(&other);
    let out = dpkg(&other, &["-i"], Some(&kexec_tools));
    assert!(ok(&out), "{}", text(&out));
    let out = dpkg(&other, &["-i"], Some(deb()));
    assert!(ok(&out), "{}", text(&out));
    assert!(
        text(&out).contains("will remove kexec-tools:arm64 in favour of kexec-rs:arm64"),
        "{}",
        text(&out)
    );
    let installed = dpkg(&other, &["-s", "kexec-tools"], None);
    assert!(
        !text(&installed).contains("Status: install ok installed"),
        "{}",
        text(&installed)
    );
    let ours = std::fs::read(other.join(BINARY)).unwrap();
    assert!(
        ours.starts_with(b"\x7fELF"),
        "/usr/sbin/kexec is still kexec-tools'"
    );
}
