//! The new kernel's command line, as kexec-tools builds it.
//!
//! * `--command-line S` and `--append S` mean the same thing; several are
//!   joined with a space, in order.
//! * `--reuse-cmdline` starts from the running kernel's `/proc/cmdline`,
//!   dropping `BOOT_IMAGE=` (kexec(8): "The BOOT_IMAGE parameter is also
//!   stripped") and, for a crash load, `crashkernel=` (kexec(8): "When a panic
//!   kernel is loaded, it strips the crashkernel parameter automatically").
//!   We also drop `initrd=` (a boot-loader path for the EFI stub, meaningless
//!   to the kexec'd kernel, which gets its initrd through `/chosen`) and
//!   `elfcorehdr=` (only valid in the crash kernel that was given it): two
//!   deliberate differences from kexec-tools.
//! * The appended text follows the reused one, separated by a space.
//! * The result plus its NUL must fit in `COMMAND_LINE_SIZE` (2048 on arm64,
//!   arch/arm64/include/uapi/asm/setup.h), see [`crate::layout`].
//!
//! With none of these options the new kernel keeps the `bootargs` of the
//! device tree it is given ([`build`] returns `None`), as kexec-tools does.

use thiserror::Error;

use crate::layout::COMMAND_LINE_SIZE;

/// Parameters `--reuse-cmdline` always drops.
pub(crate) const REUSE_DROPPED: [&str; 3] = ["BOOT_IMAGE", "initrd", "elfcorehdr"];
/// Parameters `--reuse-cmdline` drops for a crash (`-p`) load.
pub(crate) const REUSE_DROPPED_ON_CRASH: [&str; 1] = ["crashkernel"];

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line plus its NUL exceeds `COMMAND_LINE_SIZE`.
    #[error("command line is {len} bytes; arm64 accepts at most {max} (COMMAND_LINE_SIZE {size} including the NUL)", max = COMMAND_LINE_SIZE - 1, size = COMMAND_LINE_SIZE)]
    TooLong {
        /// Length in bytes, without the NUL.
        len: usize,
    },
    /// The command line holds a NUL byte, which would truncate it.
    #[error("command line contains a NUL byte at offset {offset}")]
    ContainsNul {
        /// Byte offset of the first NUL.
        offset: usize,
    },
}

impl Error {
    /// What the user can do about it, in a few words (the CLI prints it as
    /// the hint).
    pub const fn hint(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "shorten it",
            Self::ContainsNul { .. } => "remove the NUL byte",
        }
    }
}

/// Splits a command line into parameters at unquoted whitespace
/// (a double-quoted value may hold spaces, as in init/main.c `next_arg`).
pub fn split_params(cmdline: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in cmdline.char_indices() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                out.push(&cmdline[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&cmdline[s..]);
    }
    out
}

/// The name of a parameter: the part before `=`.
fn param_name(param: &str) -> &str {
    param.split_once('=').map_or(param, |(name, _)| name)
}

/// The running kernel's command line (the text of `/proc/cmdline`) with the
/// parameters `--reuse-cmdline` drops removed.
///
/// ```
/// use kexec_core::cmdline::reused;
/// let old = "BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=256M quiet\n";
/// assert_eq!(reused(old, false), "root=/dev/vda1 crashkernel=256M quiet");
/// assert_eq!(reused(old, true), "root=/dev/vda1 quiet");
/// ```
pub fn reused(proc_cmdline: &str, crash: bool) -> String {
    let text = proc_cmdline.trim_end_matches(['\n', '\0']);
    split_params(text)
        .into_iter()
        .filter(|p| {
            let name = param_name(p);
            !(REUSE_DROPPED.contains(&name) || crash && REUSE_DROPPED_ON_CRASH.contains(&name))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks the arm64 length limit and the absence of NUL bytes.
pub fn validate(cmdline: &str) -> Result<(), Error> {
    if let Some(offset) = cmdline.bytes().position(|b| b == 0) {
        return Err(Error::ContainsNul { offset });
    }
    if cmdline.len() + 1 > COMMAND_LINE_SIZE {
        return Err(Error::TooLong { len: cmdline.len() });
    }
    Ok(())
}

/// Builds the new command line: the reused one (already passed through
/// [`reused`]), then every `--append`/`--command-line` text, joined by single
/// spaces. `None` when neither was given: keep the device tree's `bootargs`.
///
/// ```
/// use kexec_core::cmdline::build;
/// let line = build(Some("root=/dev/vda1"), &["console=ttyAMA0".into()]).unwrap();
/// assert_eq!(line.as_deref(), Some("root=/dev/vda1 console=ttyAMA0"));
/// assert_eq!(build(None, &[]).unwrap(), None);
/// ```
pub fn build(reused: Option<&str>, append: &[String]) -> Result<Option<String>, Error> {
    if reused.is_none() && append.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = reused
        .into_iter()
        .chain(append.iter().map(String::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let line = parts.join(" ");
    validate(&line)?;
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes() {
        assert_eq!(
            split_params("  a=1 b=\"x y\"   c "),
            vec!["a=1", "b=\"x y\"", "c"]
        );
    }

    #[test]
    fn reuse_drops_boot_image_initrd_and_elfcorehdr() {
        let old = "BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=UUID=1234 ro initrd=\\initrd.img elfcorehdr=0x7f000000 quiet\n";
        assert_eq!(reused(old, false), "root=UUID=1234 ro quiet");
    }

    #[test]
    fn reuse_keeps_crashkernel_for_normal_load_only() {
        let old = "root=/dev/vda1 crashkernel=256M";
        assert_eq!(reused(old, false), "root=/dev/vda1 crashkernel=256M");
        assert_eq!(reused(old, true), "root=/dev/vda1");
    }

    #[test]
    fn reuse_then_append() {
        let line = build(
            Some("root=/dev/vda1 ro"),
            &["maxcpus=1".into(), "reset_devices".into()],
        )
        .unwrap();
        assert_eq!(
            line.as_deref(),
            Some("root=/dev/vda1 ro maxcpus=1 reset_devices")
        );
    }

    #[test]
    fn empty_reuse_and_no_append_is_an_empty_line() {
        assert_eq!(build(Some(""), &[]).unwrap().as_deref(), Some(""));
    }

    #[test]
    fn length_limit() {
        let ok = "a".repeat(COMMAND_LINE_SIZE - 1);
        assert!(validate(&ok).is_ok());
        let long = "a".repeat(COMMAND_LINE_SIZE);
        assert_eq!(
            validate(&long),
            Err(Error::TooLong {
                len: COMMAND_LINE_SIZE
            })
        );
        assert_eq!(
            build(None, &[long]),
            Err(Error::TooLong {
                len: COMMAND_LINE_SIZE
            })
        );
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(validate("ab\0c"), Err(Error::ContainsNul { offset: 2 }));
    }

    #[test]
    fn hint_follows_the_error() {
        assert_eq!(
            Error::TooLong {
                len: COMMAND_LINE_SIZE
            }
            .hint(),
            "shorten it"
        );
        assert_eq!(
            Error::ContainsNul { offset: 2 }.hint(),
            "remove the NUL byte"
        );
    }

    // init/main.c and lib/cmdline.c `next_arg`: parameters are separated by
    // unquoted whitespace (isspace: also tabs and newlines) and a
    // double-quoted part may hold spaces; an unterminated quote runs to the
    // end of the line.
    #[test]
    fn split_on_any_whitespace_and_unterminated_quotes() {
        assert_eq!(split_params("a\tb\nc"), vec!["a", "b", "c"]);
        assert_eq!(split_params("a=\"b c"), vec!["a=\"b c"]);
        assert_eq!(split_params("\"x y\"=1 z"), vec!["\"x y\"=1", "z"]);
        assert_eq!(split_params(""), Vec::<&str>::new());
        assert_eq!(split_params(" \t "), Vec::<&str>::new());
    }

    #[test]
    fn reuse_drops_a_quoted_value_whole() {
        let old = "BOOT_IMAGE=\"/boot/my vmlinuz\" root=/dev/vda1 dyndbg=\"file a.c +p\"\n";
        assert_eq!(reused(old, false), "root=/dev/vda1 dyndbg=\"file a.c +p\"");
    }

    #[test]
    fn reuse_matches_whole_parameter_names_only() {
        // The name is what precedes the first '='; a bare `initrd` is dropped
        // too, names that merely contain a dropped one are kept.
        let old = "initrd BOOT_IMAGE_X=1 my_initrd=2 initrdx=3 xelfcorehdr=4 foo=BOOT_IMAGE=5";
        assert_eq!(
            reused(old, true),
            "BOOT_IMAGE_X=1 my_initrd=2 initrdx=3 xelfcorehdr=4 foo=BOOT_IMAGE=5"
        );
        assert_eq!(
            reused("crashkernelx=1 crashkernel crashkernel=64M,low", true),
            "crashkernelx=1"
        );
    }

    #[test]
    fn reuse_drops_every_occurrence_and_elfcorehdr_on_both_loads() {
        // In a crash kernel /proc/cmdline holds the elfcorehdr= its loader
        // added; it is stale for any kernel loaded from there.
        let old = "elfcorehdr=0x7f000000 crashkernel=256M crashkernel=64M,low initrd=a initrd=b ro";
        assert_eq!(
            reused(old, false),
            "crashkernel=256M crashkernel=64M,low ro"
        );
        assert_eq!(reused(old, true), "ro");
    }

    #[test]
    fn reuse_strips_the_trailing_newline_and_nul() {
        assert_eq!(reused("ro quiet\n", false), "ro quiet");
        assert_eq!(reused("ro quiet\0", false), "ro quiet");
        assert_eq!(reused("\n", false), "");
        assert_eq!(reused("BOOT_IMAGE=/vmlinuz\n", true), "");
    }

    #[test]
    fn build_trims_parts_and_skips_empty_ones() {
        assert_eq!(
            build(Some(""), &["  ".into(), " quiet ".into()]).unwrap(),
            Some("quiet".into())
        );
        assert_eq!(
            build(None, &["a=1".into(), "b".into()]).unwrap(),
            Some("a=1 b".into())
        );
        // Appending nothing but blanks still replaces the DT's bootargs.
        assert_eq!(build(None, &[" ".into()]).unwrap(), Some(String::new()));
    }

    #[test]
    fn length_limit_counts_the_joining_spaces() {
        // 2040 + 1 + 6 = 2047 bytes, the longest line that leaves room for
        // the NUL in COMMAND_LINE_SIZE; one more byte is refused.
        let reused = "r".repeat(2040);
        let ok = build(Some(&reused), &["abcdef".into()]).unwrap().unwrap();
        assert_eq!(ok.len(), COMMAND_LINE_SIZE - 1);
        assert_eq!(
            build(Some(&reused), &["abcdefg".into()]),
            Err(Error::TooLong {
                len: COMMAND_LINE_SIZE
            })
        );
    }

    #[test]
    fn nul_offset_is_in_the_joined_line() {
        assert_eq!(
            build(Some("root=x"), &["a\0b".into()]),
            Err(Error::ContainsNul { offset: 8 })
        );
        // A NUL is reported even in a line that is also too long.
        let long = format!("\0{}", "a".repeat(COMMAND_LINE_SIZE));
        assert_eq!(validate(&long), Err(Error::ContainsNul { offset: 0 }));
        assert_eq!(validate(""), Ok(()));
    }

    #[test]
    fn error_messages_name_the_limit() {
        assert_eq!(
            Error::TooLong { len: 3000 }.to_string(),
            "command line is 3000 bytes; arm64 accepts at most 2047 (COMMAND_LINE_SIZE 2048 including the NUL)"
        );
        assert_eq!(
            Error::ContainsNul { offset: 8 }.to_string(),
            "command line contains a NUL byte at offset 8"
        );
    }
}
