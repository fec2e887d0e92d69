//! The crash kernel's checks of `/proc/vmcore` in the kdump scenario: our
//! `kexec vmcore info` and `kexec vmcore dmesg`, cross-checked with Debian's
//! makedumpfile and kexec-tools' `vmcore-dmesg` (in the guest base
//! initramfs), reported as markers and
//! judged here on the host by [`check_vmcore_reports`].
//!
//! Markers (stage of the crash kernel):
//! * `vmcore-info-rc`, `vmcore-info-release`, `vmcore-info-crashed`,
//!   `vmcore-info-cpus`: `kexec vmcore info`'s exit code and lines;
//! * `vmcore-dmesg-rc`, `vmcore-dmesg-lines`, `vmcore-dmesg-panic` (the last
//!   line holding `Kernel panic - not syncing`, timestamp included),
//!   `vmcore-dmesg-last`;
//! * `vmcore-dmesg-kt-rc`, `dmesg-vs-vmcore-dmesg` (`same`, or the first
//!   lines of `diff`): kexec-tools' `vmcore-dmesg /proc/vmcore` against
//!   ours, byte for byte;
//! * `makedumpfile-dmesg-rc`, `dmesg-vs-makedumpfile` (`same`, or the first
//!   lines of `diff`): `makedumpfile --dump-dmesg /proc/vmcore` against ours,
//!   byte for byte — `kexec vmcore dmesg` prints makedumpfile's format;
//! * `makedumpfile-dump-rc`, `makedumpfile-dump-size`: `makedumpfile -d 31
//!   -l /proc/vmcore /tmp/dumpfile` (all excludable pages excluded, LZO);
//! * `makedumpfile-elf-rc`, `makedumpfile-elf-size`, `vmcore-elf-dmesg-rc`,
//!   `elf-dump-vs-proc-vmcore`: `makedumpfile -E -d 31` writes an ELF dump
//!   file, and `kexec vmcore dmesg` of that file equals its output on
//!   `/proc/vmcore` (a dump file, not only the live view, is readable).

use anyhow::{bail, Context, Result};

use crate::qemu::Timeline;

/// The crash kernel's stage script (for [`crate::scenario::Hop::next_script`]).
pub const VMCORE_SCRIPT: &str = r#"
k=/bin/kexec-rs
# The dump files need more than rootfs's default half of the crash kernel's RAM.
mount -t tmpfs -o size=90% kxt-tmp /tmp
say meminfo "$(grep -E '^(MemTotal|MemAvailable):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
$k vmcore info /proc/vmcore >/tmp/info.txt 2>&1; say vmcore-info-rc $?
say vmcore-info-release "$(sed -n 's/^kernel release *//p' /tmp/info.txt)"
say vmcore-info-crashed "$(sed -n 's/^crashed *//p' /tmp/info.txt)"
say vmcore-info-cpus "$(sed -n 's/^CPUs *//p' /tmp/info.txt)"
sed 's/^/vmcore-info: /' /tmp/info.txt
$k vmcore dmesg /proc/vmcore >/tmp/ours.txt 2>/tmp/ours.err; say vmcore-dmesg-rc $? "$(head -c 300 /tmp/ours.err)"
say vmcore-dmesg-lines "$(wc -l </tmp/ours.txt)"
say vmcore-dmesg-panic "$(grep 'Kernel panic - not syncing' /tmp/ours.txt | tail -n 1)"
say vmcore-dmesg-last "$(tail -n 1 /tmp/ours.txt)"
vmcore-dmesg /proc/vmcore >/tmp/kt.txt 2>/tmp/kt.err
say vmcore-dmesg-kt-rc $? "$(tr '\n' ' ' </tmp/kt.err | head -c 300)"
if cmp -s /tmp/ours.txt /tmp/kt.txt; then say dmesg-vs-vmcore-dmesg same
else say dmesg-vs-vmcore-dmesg "differ: $(diff /tmp/ours.txt /tmp/kt.txt | head -n 6 | tr '\n' '|')"; fi
rm -f /tmp/kt.txt
makedumpfile --dump-dmesg /proc/vmcore /tmp/log.txt >/tmp/mdf.out 2>&1
say makedumpfile-dmesg-rc $? "$(tr '\n' ' ' </tmp/mdf.out | head -c 400)"
if cmp -s /tmp/ours.txt /tmp/log.txt; then say dmesg-vs-makedumpfile same
else say dmesg-vs-makedumpfile "differ: $(diff /tmp/ours.txt /tmp/log.txt | head -n 6 | tr '\n' '|')"; fi
rm -f /tmp/log.txt
makedumpfile --message-level 6 -d 31 -l /proc/vmcore /tmp/dumpfile >/tmp/mdf.out 2>&1
say makedumpfile-dump-rc $? "$(tr '\n' ' ' </tmp/mdf.out | head -c 400)"
say makedumpfile-dump-size "$(stat -c %s /tmp/dumpfile 2>/dev/null)"
rm -f /tmp/dumpfile
makedumpfile --message-level 6 -E -d 31 /proc/vmcore /tmp/elfdump >/tmp/mdf.out 2>&1
say makedumpfile-elf-rc $? "$(tr '\n' ' ' </tmp/mdf.out | head -c 400)"
say makedumpfile-elf-size "$(stat -c %s /tmp/elfdump 2>/dev/null)"
$k vmcore dmesg /tmp/elfdump >/tmp/elf.txt 2>/tmp/ours.err; say vmcore-elf-dmesg-rc $? "$(head -c 300 /tmp/ours.err)"
if cmp -s /tmp/ours.txt /tmp/elf.txt; then say elf-dump-vs-proc-vmcore same
else say elf-dump-vs-proc-vmcore "differ: $(diff /tmp/ours.txt /tmp/elf.txt | head -n 6 | tr '\n' '|')"; fi
rm -f /tmp/elfdump /tmp/elf.txt /tmp/ours.txt
"#;

/// What the crash kernel found in `/proc/vmcore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmcoreReport {
    /// Lines of `kexec vmcore dmesg`.
    pub dmesg_lines: usize,
    /// The panic line, as ours printed it and kernel A's console showed it.
    pub panic_line: String,
    /// Bytes of makedumpfile's `-d 31 -l` dump.
    pub dumpfile_bytes: u64,
}

/// Which independent readers judge the dump. kexec-tools' `vmcore-dmesg`
/// (Debian 12's 2.0.25) reads the log through the ELF header's virtual
/// addresses and VMCOREINFO alone, so it reads every kernel's dump.
/// makedumpfile walks the crashed kernel's page tables and does not support
/// Debian 13's 6.12, built with 52-bit virtual addresses on 4 KiB pages
/// (LPA2): Debian 12's 1.7.2, Debian 13's 1.7.6 and Debian unstable's 1.7.8
/// all stop with "calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not
/// supported", "makedumpfile Failed." (tried in the crash kernel, 2026-11-30;
/// makedumpfile/makedumpfile issue #18 reports the same on Debian's
/// kdump-tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// `vmcore-dmesg` and makedumpfile (its log, `-d 31` and ELF dumps).
    Makedumpfile,
    /// `vmcore-dmesg` only; makedumpfile's reports are printed, not judged.
    VmcoreDmesg,
}

/// Judges the markers of [`VMCORE_SCRIPT`] printed by stage `crash`, whose
/// crashed kernel was stage `crashed`: our commands succeeded, `info` names
/// the crashed kernel's release and the crashing task's note, the panic line
/// of our log is a line the crashed kernel printed on its console, and
/// kexec-tools' `vmcore-dmesg` printed our log byte for byte; with
/// [`Reference::Makedumpfile`], also every makedumpfile run succeeded, its
/// log is ours byte for byte, its dump is non-empty and our log of its ELF
/// dump file is our log of `/proc/vmcore`.
pub fn check_vmcore_reports(
    t: &Timeline,
    crashed: &str,
    crash: &str,
    reference: Reference,
) -> Result<VmcoreReport> {
    let get = |key: &str| {
        t.marker(crash, key)
            .map(|m| m.value.as_str())
            .with_context(|| format!("the crash kernel never reported `{key}`"))
    };
    let with_reference = reference == Reference::Makedumpfile;
    let reference_rcs = [
        "makedumpfile-dmesg-rc",
        "makedumpfile-dump-rc",
        "makedumpfile-elf-rc",
        "vmcore-elf-dmesg-rc",
    ];
    let ours_rcs = ["vmcore-info-rc", "vmcore-dmesg-rc", "vmcore-dmesg-kt-rc"];
    let reference_rcs = if with_reference {
        &reference_rcs[..]
    } else {
        &[]
    };
    for &key in ours_rcs.iter().chain(reference_rcs) {
        let value = get(key)?;
        if value.split_whitespace().next() != Some("0") {
            bail!("{key}: {value} (want 0)");
        }
    }
    let release = t
        .marker(crashed, "boot")
        .map(|m| m.value.as_str())
        .context("the crashed kernel never reported `boot`")?;
    let info_release = get("vmcore-info-release")?;
    if info_release != release {
        bail!(
            "`kexec vmcore info` says release {info_release:?}, the crashed kernel was {release}"
        );
    }
    let crashed_cpu = get("vmcore-info-crashed")?;
    if !crashed_cpu.starts_with("NT_PRSTATUS note ") {
        bail!("`kexec vmcore info` did not name the crashing CPU's note: {crashed_cpu}");
    }
    let same = get("dmesg-vs-vmcore-dmesg")?;
    if same != "same" {
        bail!("`kexec vmcore dmesg` and kexec-tools' `vmcore-dmesg` differ: {same}");
    }
    if with_reference {
        let same = get("dmesg-vs-makedumpfile")?;
        if same != "same" {
            bail!("`kexec vmcore dmesg` and `makedumpfile --dump-dmesg` differ: {same}");
        }
        let same = get("elf-dump-vs-proc-vmcore")?;
        if same != "same" {
            bail!(
                "`kexec vmcore dmesg` of makedumpfile's ELF dump differs from /proc/vmcore's: {same}"
            );
        }
    }
    let dmesg_lines: usize = get("vmcore-dmesg-lines")?
        .trim()
        .parse()
        .context("vmcore-dmesg-lines")?;
    let panic_line = get("vmcore-dmesg-panic")?;
    if !panic_line.contains("] Kernel panic - not syncing: sysrq triggered crash") {
        bail!("no sysrq panic line in `kexec vmcore dmesg`: {panic_line:?}");
    }
    // The crashed kernel printed that record on its console, timestamp and all.
    let on_console = t
        .lines
        .iter()
        .any(|l| l.text.trim_end().ends_with(panic_line) && !l.text.contains("@@kxt"));
    if !on_console {
        bail!("the crashed kernel's console has no line {panic_line:?}");
    }
    let mut dumpfile_bytes = 0;
    if with_reference {
        dumpfile_bytes = get("makedumpfile-dump-size")?
            .parse()
            .context("makedumpfile-dump-size")?;
        if dumpfile_bytes == 0 {
            bail!("makedumpfile wrote an empty dump file");
        }
    }
    Ok(VmcoreReport {
        dmesg_lines,
        panic_line: panic_line.to_owned(),
        dumpfile_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANIC: &str = "[   25.123456] Kernel panic - not syncing: sysrq triggered crash";

    fn lines() -> Vec<String> {
        [
            "@@kxt a boot 6.1.0-57-arm64",
            PANIC,
            "@@kxt b vmcore-info-rc 0",
            "@@kxt b vmcore-info-release 6.1.0-57-arm64",
            "@@kxt b vmcore-info-crashed NT_PRSTATUS note 0 (pid 1, the panicking task)",
            "@@kxt b vmcore-dmesg-rc 0",
            "@@kxt b vmcore-dmesg-lines 812",
            &format!("@@kxt b vmcore-dmesg-panic {PANIC}"),
            "@@kxt b makedumpfile-dmesg-rc 0 The dmesg log is saved to /tmp/log.txt.",
            "@@kxt b dmesg-vs-makedumpfile same",
            "@@kxt b makedumpfile-dump-rc 0",
            "@@kxt b makedumpfile-dump-size 31457280",
            "@@kxt b makedumpfile-elf-rc 0",
            "@@kxt b vmcore-elf-dmesg-rc 0",
            "@@kxt b elf-dump-vs-proc-vmcore same",
            "@@kxt b vmcore-dmesg-kt-rc 0",
            "@@kxt b dmesg-vs-vmcore-dmesg same",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn check(lines: &[String]) -> Result<VmcoreReport> {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        check_vmcore_reports(
            &Timeline::from_text(&refs),
            "a",
            "b",
            Reference::Makedumpfile,
        )
    }

    #[test]
    fn without_the_reference_its_failures_do_not_count() {
        let mut l = lines();
        for (i, line) in [
            (8, "@@kxt b makedumpfile-dmesg-rc 1 makedumpfile Failed."),
            (9, "@@kxt b dmesg-vs-makedumpfile differ: "),
            (10, "@@kxt b makedumpfile-dump-rc 1"),
            (11, "@@kxt b makedumpfile-dump-size "),
            (12, "@@kxt b makedumpfile-elf-rc 1"),
        ] {
            l[i] = line.to_owned();
        }
        let refs: Vec<&str> = l.iter().map(String::as_str).collect();
        let t = Timeline::from_text(&refs);
        check_vmcore_reports(&t, "a", "b", Reference::VmcoreDmesg).unwrap();
        assert!(check_vmcore_reports(&t, "a", "b", Reference::Makedumpfile).is_err());
        // Our own failures, and vmcore-dmesg's verdict, still count.
        for (i, line) in [
            (5, "@@kxt b vmcore-dmesg-rc 2"),
            (16, "@@kxt b dmesg-vs-vmcore-dmesg differ: 1c1"),
        ] {
            let mut l = l.clone();
            l[i] = line.to_owned();
            let refs: Vec<&str> = l.iter().map(String::as_str).collect();
            let t = Timeline::from_text(&refs);
            assert!(check_vmcore_reports(&t, "a", "b", Reference::VmcoreDmesg).is_err());
        }
    }

    #[test]
    fn a_good_report_passes() {
        let r = check(&lines()).unwrap();
        assert_eq!((r.dmesg_lines, r.dumpfile_bytes), (812, 31_457_280));
        assert_eq!(r.panic_line, PANIC);
    }

    /// Each check fails on its own: replace line `index` with `line`.
    #[test]
    fn each_check_fails() {
        for (index, line, want) in [
            (2, "@@kxt b vmcore-info-rc 2", "vmcore-info-rc: 2"),
            (5, "@@kxt b vmcore-dmesg-rc 1 bad", "vmcore-dmesg-rc: 1 bad"),
            (
                8,
                "@@kxt b makedumpfile-dmesg-rc 1",
                "makedumpfile-dmesg-rc",
            ),
            (10, "@@kxt b makedumpfile-dump-rc 1", "makedumpfile-dump-rc"),
            (3, "@@kxt b vmcore-info-release 6.12", "release \"6.12\""),
            (4, "@@kxt b vmcore-info-crashed unknown", "did not name"),
            (
                9,
                "@@kxt b dmesg-vs-makedumpfile differ: 1c1",
                "differ: 1c1",
            ),
            (6, "@@kxt b vmcore-dmesg-lines x", "vmcore-dmesg-lines"),
            (
                7,
                "@@kxt b vmcore-dmesg-panic [ 1.0] hello",
                "no sysrq panic line",
            ),
            (
                1,
                "[   25.123457] Kernel panic - not syncing: sysrq triggered crash",
                "console has no line",
            ),
            (11, "@@kxt b makedumpfile-dump-size 0", "empty dump file"),
            (
                11,
                "@@kxt b other 0",
                "never reported `makedumpfile-dump-size`",
            ),
            (0, "@@kxt a other", "never reported `boot`"),
            (
                12,
                "@@kxt b makedumpfile-elf-rc 1",
                "makedumpfile-elf-rc: 1",
            ),
            (
                13,
                "@@kxt b vmcore-elf-dmesg-rc 2 x",
                "vmcore-elf-dmesg-rc: 2 x",
            ),
            (
                14,
                "@@kxt b elf-dump-vs-proc-vmcore differ: 3d2",
                "ELF dump differs",
            ),
            (
                15,
                "@@kxt b vmcore-dmesg-kt-rc 1 vmcore-dmesg: bad",
                "vmcore-dmesg-kt-rc: 1 vmcore-dmesg: bad",
            ),
            (
                16,
                "@@kxt b dmesg-vs-vmcore-dmesg differ: 5c5",
                "`vmcore-dmesg` differ: differ: 5c5",
            ),
        ] {
            let mut l = lines();
            l[index] = line.to_owned();
            let err = check(&l).unwrap_err().to_string();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}
