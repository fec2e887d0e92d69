//! The command line's decisions, and every row of docs/compat.md: each row
//! names a command and what ours does with it in a checked form; the test
//! parses the command as a shell would and compares.

use super::*;
use crate::failure::EXIT_BAD_INPUT;

/// Parse `argv` (without the program name) or panic.
fn parsed(argv: &[&str]) -> Parsed {
    parse_from(std::iter::once("kexec").chain(argv.iter().copied()))
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
}

/// A short, stable description of what an action does (the form the
/// compatibility table's last column is written in).
fn summary(action: &Action<'_>) -> String {
    match action {
        Action::Immediate { what, .. } => match what {
            Immediate::Help => "help".into(),
            Immediate::Version => "version".into(),
            Immediate::PrintCkrSize => "print-ckr-size".into(),
        },
        Action::Kexec(k) => kexec_summary(k),
        Action::Capture { .. } => "capture-sysroot".into(),
        Action::Sim(_) => "sim".into(),
        Action::Boot(_) => "boot".into(),
        Action::Vmcore { .. } => "vmcore".into(),
        Action::Doctor(_) => "doctor".into(),
    }
}

fn mode(m: LoadMode) -> &'static str {
    match m {
        LoadMode::Normal => "normal",
        LoadMode::Crash => "crash",
    }
}

fn kexec_summary(k: &Kexec<'_>) -> String {
    let call = match k.syscall {
        Syscall::Run(c) | Syscall::DryRun { call: c, .. } => c,
    };
    let via = match call {
        Call::Auto => "auto",
        Call::KexecLoad => "kexec_load",
        Call::KexecFileLoad => "kexec_file_load",
    };
    if k.status {
        return format!("status {}", mode(k.mode));
    }
    let mut parts = Vec::new();
    if k.unload {
        parts.push(format!("unload {} via {via}", mode(k.mode)));
    }
    if let Some(l) = &k.load {
        let mut s = format!("load {} {} via {via}", mode(k.mode), l.kernel.display());
        let i = &l.input;
        if let Some(p) = i.initrd {
            s.push_str(&format!(", initrd {}", p.display()));
        }
        if i.reuse_cmdline {
            s.push_str(", reuse-cmdline");
        }
        if let Some(a) = i.append {
            s.push_str(&format!(", append {:?}", String::from_utf8_lossy(a)));
        }
        if let Some(d) = i.dtb {
            s.push_str(&format!(", dtb {}", d.display()));
        }
        if i.purgatory.no_verify {
            s.push_str(", no-checks");
        }
        if !i.window.is_everything() {
            s.push_str(&format!(
                ", window {:#x}..={:#x}",
                i.window.min, i.window.max
            ));
        }
        if let Some(t) = i.kernel_type {
            s.push_str(&format!(", type {t:?}"));
        }
        if let Some(t) = i.serial {
            s.push_str(&format!(", serial {t}"));
        }
        if i.no_cma {
            s.push_str(", no-cma");
        }
        parts.push(s);
    }
    match k.after {
        After::Nothing => {}
        After::Shutdown => parts.push("shutdown".into()),
        After::Exec { sync, ifdown } => parts.push(format!(
            "exec ({}, {})",
            if sync { "sync" } else { "no sync" },
            if ifdown { "ifdown" } else { "no ifdown" }
        )),
    }
    if k.debug {
        parts.push("debug".into());
    } else if k.verbose {
        parts.push("verbose".into());
    }
    if let Syscall::DryRun { json, .. } = k.syscall {
        parts.push(if json { "dry-run json" } else { "dry-run" }.into());
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join("; ")
    }
}

/// What `argv` leads to, as the table writes it: the summary, `refused:
/// PROBLEM` or `usage error: CLAP MESSAGE`.
fn outcome(argv: &[String]) -> String {
    match parse_from(std::iter::once("kexec".to_owned()).chain(argv.iter().cloned())) {
        Err(e) => format!("usage error: {}", e.render()),
        Ok(p) => match p.action() {
            Ok(a) => summary(&a),
            Err(f) => format!("refused: {}", f.problem),
        },
    }
}

/// Words of a command as a POSIX shell splits them (single and double
/// quotes, backslash in double quotes), enough for the table's commands.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        _ => cur.push(c),
                    }
                }
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[test]
fn shell_words_splits_like_sh() {
    assert_eq!(
        shell_words(r#"kexec --append="a  b" '--x=""' c"d"e "#),
        vec!["kexec", "--append=a  b", "--x=\"\"", "cde"]
    );
    assert_eq!(shell_words(r#"--append """#), vec!["--append", ""]);
}

/// The rows of docs/compat.md's tables whose first cell is a `kexec ...`
/// command and whose last cell is the checked outcome, in backticks.
fn compat_rows() -> Vec<(String, String)> {
    let doc = include_str!("../../../../docs/compat.md");
    doc.lines()
        .filter(|l| l.starts_with("| `kexec"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            let strip = |c: &str| {
                c.strip_prefix('`')
                    .and_then(|c| c.strip_suffix('`'))
                    .unwrap_or_else(|| panic!("cell not in backticks: {c:?} in {l}"))
                    .replace("\\|", "|")
            };
            (strip(cells[0]), strip(cells[cells.len() - 1]))
        })
        .collect()
}

#[test]
fn every_row_of_the_compatibility_table_holds() {
    let rows = compat_rows();
    assert!(rows.len() >= 80, "only {} rows read", rows.len());
    let mut wrong = Vec::new();
    for (command, expected) in &rows {
        let words = shell_words(command);
        assert_eq!(words[0], "kexec", "{command}");
        let got = outcome(&words[1..]);
        let ok = match expected.strip_suffix("…") {
            Some(prefix) => got.starts_with(prefix),
            None => got == *expected,
        };
        if !ok {
            wrong.push(format!(
                "{command}\n    table: {expected}\n    ours:  {got}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_table_check_fails_on_a_wrong_row() {
    // The comparison itself: a row claiming the wrong outcome is caught.
    let got = outcome(&["-l".into(), "Image".into()]);
    assert_eq!(got, "load normal Image via auto");
    assert_ne!(got, "load crash Image via auto");
}

#[test]
fn every_option_of_kexec_tools_has_a_row() {
    // kexec-tools 2.0.29's options (kexec/kexec.h KEXEC_OPTIONS and the
    // arm64 arch options) and the later --no-cma: each must appear in a
    // checked row.
    let rows = compat_rows();
    let commands: Vec<&str> = rows.iter().map(|(c, _)| c.as_str()).collect();
    for option in [
        "-h",
        "--help",
        "-v",
        "--version",
        "-f",
        "--force",
        "-i",
        "--no-checks",
        "-x",
        "--no-ifdown",
        "-y",
        "--no-sync",
        "-l",
        "--load",
        "-u",
        "--unload",
        "-e",
        "--exec",
        "-t",
        "--type",
        "-p",
        "--load-panic",
        "-s",
        "--kexec-file-syscall",
        "-c",
        "--kexec-syscall",
        "-a",
        "--kexec-syscall-auto",
        "-d",
        "--debug",
        "-S",
        "--status",
        "--mem-min",
        "--mem-max",
        "--reuseinitrd",
        "--load-preserve-context",
        "--load-jump-back-helper",
        "--entry",
        "--print-ckr-size",
        "--load-live-update",
        "--exec-live-update",
        "--hotplug",
        "--append",
        "--command-line",
        "--dtb",
        "--initrd",
        "--ramdisk",
        "--reuse-cmdline",
        "--serial",
        "--no-cma",
    ] {
        assert!(
            commands.iter().any(|c| shell_words(c)
                .iter()
                .any(|w| w == option || w.starts_with(&format!("{option}=")))),
            "no row uses {option}"
        );
    }
}

#[test]
fn refusals_are_bad_input_and_name_the_problem() {
    for argv in [
        &["-l", "Image", "--sysroot", "sr"][..],
        &["-e", "Image"],
        &["-p", "-f", "Image"],
        &["-l"],
        &["-l", "Image", "extra"],
        &["--hotplug", "-p", "Image"],
    ] {
        let f = parsed(argv).action().expect_err("refused");
        assert_eq!(f.code, EXIT_BAD_INPUT, "{argv:?}");
        assert!(!f.hint.is_empty(), "{argv:?}");
    }
}

#[test]
fn the_plan_input_carries_every_plan_option() {
    let p = parsed(&[
        "-l",
        "Image",
        "--initrd",
        "initrd.img",
        "--append",
        "a=1",
        "--command-line",
        "b",
        "--reuse-cmdline",
        "--dtb",
        "board.dtb",
        "-i",
        "--purgatory-no-caches",
        "--mem-min=0x40000000",
        "--mem-max",
        "017777777777",
        "-t",
        "Image",
        "--serial=ttyAMA0",
        "--no-cma",
    ]);
    let Ok(Action::Kexec(Kexec { load: Some(l), .. })) = p.action() else {
        panic!("{p:?}");
    };
    assert_eq!(
        l.input,
        PlanInput {
            initrd: Some(Path::new("initrd.img")),
            // The last of --append/--command-line wins (kexec-tools).
            append: Some(b"b"),
            reuse_cmdline: true,
            dtb: Some(Path::new("board.dtb")),
            purgatory: PurgatoryOptions {
                no_verify: true,
                no_caches: true,
                ..PurgatoryOptions::default()
            },
            window: crate::plan_input::MemWindow {
                min: 0x4000_0000,
                max: 0x7fff_ffff
            },
            kernel_type: Some(crate::plan_input::KernelType::Image),
            serial: Some("ttyAMA0"),
            no_cma: true,
        }
    );
    let p = parsed(&["-l", "Image", "--purgatory-soft-sha256"]);
    let Ok(Action::Kexec(Kexec { load: Some(l), .. })) = p.action() else {
        panic!();
    };
    assert_eq!(
        l.input.purgatory,
        PurgatoryOptions {
            force_soft_sha256: true,
            ..PurgatoryOptions::default()
        }
    );
    let p = parsed(&["-l", "Image", "--purgatory-one-cpu"]);
    let Ok(Action::Kexec(Kexec { load: Some(l), .. })) = p.action() else {
        panic!();
    };
    assert_eq!(
        l.input.purgatory,
        PurgatoryOptions {
            one_cpu: true,
            ..PurgatoryOptions::default()
        }
    );
}

#[test]
fn append_bytes_that_are_not_utf8_pass_through() {
    use std::os::unix::ffi::OsStrExt;
    let arg = std::ffi::OsStr::from_bytes(b"--append=root=LABEL=caf\xe9");
    let p = parse_from([
        std::ffi::OsStr::new("kexec"),
        "-l".as_ref(),
        "Image".as_ref(),
        arg,
    ])
    .unwrap();
    let Ok(Action::Kexec(Kexec { load: Some(l), .. })) = p.action() else {
        panic!();
    };
    assert_eq!(l.input.append, Some(&b"root=LABEL=caf\xe9"[..]));
}

#[test]
fn bad_addresses_are_refused_with_the_option_named() {
    for (arg, name) in [
        ("--mem-min=0x1g", "--mem-min"),
        ("--mem-max=12k", "--mem-max"),
    ] {
        let f = parsed(&["-l", "Image", arg]).action().unwrap_err();
        assert!(f.problem.contains(name), "{f}");
    }
    assert_eq!(crate::plan_input::parse_c_number("0x10"), Some(16));
    assert_eq!(crate::plan_input::parse_c_number("010"), Some(8));
    assert_eq!(crate::plan_input::parse_c_number("10"), Some(10));
    assert_eq!(crate::plan_input::parse_c_number("0"), Some(0));
    assert_eq!(crate::plan_input::parse_c_number("08"), None);
    assert_eq!(crate::plan_input::parse_c_number(""), None);
}

#[test]
fn subcommands() {
    let doctor = crate::doctor::DoctorArgs {
        json: true,
        sysroot: Some("sr".into()),
    };
    assert_eq!(
        parsed(&["doctor", "--json", "--sysroot", "sr"]).action(),
        Ok(Action::Doctor(&doctor))
    );
    assert_eq!(
        parsed(&["capture-sysroot", "out"]).action(),
        Ok(Action::Capture {
            from: Sysroot::live(),
            dir: Path::new("out")
        })
    );
    assert_eq!(
        parsed(&["capture-sysroot", "--from", "sr", "out"]).action(),
        Ok(Action::Capture {
            from: Sysroot::at(Path::new("sr")),
            dir: Path::new("out")
        })
    );
    let p = parsed(&["sim", "Image", "-p", "--seeds", "2"]);
    assert!(matches!(p.action(), Ok(Action::Sim(_))), "{p:?}");
    let p = parsed(&["boot", "fedora", "--dry-run", "--esp", "/efi"]);
    assert!(matches!(p.action(), Ok(Action::Boot(_))), "{p:?}");
    assert_eq!(
        parsed(&["vmcore", "info"]).action(),
        Ok(Action::Vmcore {
            file: Path::new("/proc/vmcore"),
            report: Report::Info { json: false }
        })
    );
    assert_eq!(
        parsed(&["vmcore", "info", "--json", "dump"]).action(),
        Ok(Action::Vmcore {
            file: Path::new("dump"),
            report: Report::Info { json: true }
        })
    );
    assert_eq!(
        parsed(&["vmcore", "dmesg", "dump"]).action(),
        Ok(Action::Vmcore {
            file: Path::new("dump"),
            report: Report::Dmesg
        })
    );
    for argv in [
        &["capture-sysroot", "out", "-l"][..],
        &["vmcore", "dmesg", "--json"],
        &["vmcore", "info", "a", "b"],
        &["vmcore"],
        &["boot", "--list", "-e"],
        &["boot", "a", "b"],
    ] {
        assert!(
            parse_from(std::iter::once("kexec").chain(argv.iter().copied())).is_err(),
            "{argv:?}"
        );
    }
}

#[test]
fn status_and_print_ckr_size_may_read_a_sysroot() {
    let p = parsed(&["-S", "--sysroot", "sr"]);
    let Ok(Action::Kexec(k)) = p.action() else {
        panic!()
    };
    assert_eq!(k.root, Sysroot::at(Path::new("sr")));
    assert_eq!(
        parsed(&["--print-ckr-size", "--sysroot", "sr"]).action(),
        Ok(Action::Immediate {
            what: Immediate::PrintCkrSize,
            root: Sysroot::at(Path::new("sr"))
        })
    );
}

#[test]
fn the_command_is_kexecs() {
    let c = command();
    assert_eq!(c.get_name(), "kexec");
    assert!(c
        .get_arguments()
        .any(|a| a.get_long() == Some("load-panic")));
}

#[test]
fn svg_needs_a_dry_run_and_a_load() {
    for argv in [
        &["-l", "Image", "--svg", "m.svg"][..],
        &["-u", "--dry-run", "--svg", "m.svg"],
        &["-S", "--dry-run", "--svg", "m.svg"],
    ] {
        let f = parsed(argv).action().expect_err("refused");
        assert!(f.problem.starts_with("--svg draws"), "{argv:?}: {f}");
    }
    let p = parsed(&["-l", "Image", "--dry-run", "--svg", "m.svg"]);
    let Ok(Action::Kexec(Kexec { load: Some(l), .. })) = p.action() else {
        panic!("{p:?}");
    };
    assert_eq!(l.svg, Some(Path::new("m.svg")));
}
