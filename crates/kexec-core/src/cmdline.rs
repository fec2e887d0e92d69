//! The new kernel's command line, as kexec-tools builds it, on bytes: the
//! kernel takes any bytes but NUL, so a line that is not UTF-8 passes
//! through unchanged.
//!
//! * `--command-line S` and `--append S` mean the same thing; the last one
//!   given wins (kexec-tools' arm64 `arch_process_options` keeps one
//!   `append` pointer). It is passed as given, spaces included.
//! * `--reuse-cmdline` starts from the running kernel's `/proc/cmdline`,
//!   dropping `BOOT_IMAGE=` (kexec(8): "The BOOT_IMAGE parameter is also
//!   stripped") and, for a crash load, `crashkernel=` (kexec(8): "When a panic
//!   kernel is loaded, it strips the crashkernel parameter automatically").
//!   We also drop `initrd=` (a boot-loader path for the EFI stub, meaningless
//!   to the kexec'd kernel, which gets its initrd through `/chosen`) and
//!   `elfcorehdr=` (only valid in the crash kernel that was given it): two
//!   deliberate differences from kexec-tools.
//! * The appended text follows the reused one after one space
//!   (kexec-tools' `concat_cmdline`).
//! * An empty result keeps the device tree's `bootargs`, as kexec-tools'
//!   arm64 `set_bootargs` does (`if (!command_line || !command_line[0])
//!   return 0`): `--append ""` does not boot the new kernel without `root=`.
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

/// Whitespace as the kernel's `isspace` sees it (lib/ctype.c: space, tab,
/// newline, vertical tab, form feed, carriage return).
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Splits a command line into parameters at unquoted whitespace
/// (a double-quoted value may hold spaces, as in lib/cmdline.c `next_arg`).
pub fn split_params(cmdline: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, &c) in cmdline.iter().enumerate() {
        if c == b'"' {
            quoted = !quoted;
        }
        if is_space(c) && !quoted {
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
fn param_name(param: &[u8]) -> &[u8] {
    param
        .iter()
        .position(|&b| b == b'=')
        .map_or(param, |i| &param[..i])
}

/// The running kernel's command line (the bytes of `/proc/cmdline`) with
/// the parameters `--reuse-cmdline` drops removed, the rest joined by one
/// space. Bytes that are not UTF-8 are kept as they are.
///
/// ```
/// use kexec_core::cmdline::reused;
/// let old = b"BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=256M quiet\n";
/// assert_eq!(reused(old, false), b"root=/dev/vda1 crashkernel=256M quiet");
/// assert_eq!(reused(old, true), b"root=/dev/vda1 quiet");
/// ```
pub fn reused(proc_cmdline: &[u8], crash: bool) -> Vec<u8> {
    let mut text = proc_cmdline;
    while let [rest @ .., b'\n' | 0] = text {
        text = rest;
    }
    let dropped = |name: &[u8]| {
        REUSE_DROPPED.iter().any(|d| d.as_bytes() == name)
            || crash && REUSE_DROPPED_ON_CRASH.iter().any(|d| d.as_bytes() == name)
    };
    split_params(text)
        .into_iter()
        .filter(|p| !dropped(param_name(p)))
        .collect::<Vec<_>>()
        .join(&b' ')
}

/// Checks the arm64 length limit and the absence of NUL bytes.
pub fn validate(cmdline: &[u8]) -> Result<(), Error> {
    if let Some(offset) = cmdline.iter().position(|&b| b == 0) {
        return Err(Error::ContainsNul { offset });
    }
    if cmdline.len() + 1 > COMMAND_LINE_SIZE {
        return Err(Error::TooLong { len: cmdline.len() });
    }
    Ok(())
}

/// Builds the new command line as kexec-tools' `concat_cmdline` does: the
/// reused one (already passed through [`reused`]), a space, then the
/// `--append` text as given. `None` when the result is empty (nothing
/// given, `--append ""`, or a reused line left empty): keep the device
/// tree's `bootargs`.
///
/// ```
/// use kexec_core::cmdline::build;
/// let line = build(Some(b"root=/dev/vda1"), Some(b"console=ttyAMA0")).unwrap();
/// assert_eq!(line.as_deref(), Some(&b"root=/dev/vda1 console=ttyAMA0"[..]));
/// assert_eq!(build(None, None).unwrap(), None);
/// assert_eq!(build(None, Some(b"")).unwrap(), None);
/// ```
pub fn build(reused: Option<&[u8]>, append: Option<&[u8]>) -> Result<Option<Vec<u8>>, Error> {
    let line = match (reused, append) {
        (None, None) => return Ok(None),
        (Some(r), None) => r.to_vec(),
        (None, Some(a)) => a.to_vec(),
        (Some(r), Some(a)) => [r, b" ", a].concat(),
    };
    if line.is_empty() {
        return Ok(None);
    }
    validate(&line)?;
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&[u8]]) -> Vec<String> {
        v.iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    #[test]
    fn split_respects_quotes() {
        assert_eq!(
            s(&split_params(b"  a=1 b=\"x y\"   c ")),
            vec!["a=1", "b=\"x y\"", "c"]
        );
    }

    #[test]
    fn reuse_drops_boot_image_initrd_and_elfcorehdr() {
        let old = b"BOOT_IMAGE=/boot/vmlinuz-6.1.0 root=UUID=1234 ro initrd=\\initrd.img elfcorehdr=0x7f000000 quiet\n";
        assert_eq!(reused(old, false), b"root=UUID=1234 ro quiet");
    }

    #[test]
    fn reuse_keeps_crashkernel_for_normal_load_only() {
        let old = b"root=/dev/vda1 crashkernel=256M";
        assert_eq!(reused(old, false), b"root=/dev/vda1 crashkernel=256M");
        assert_eq!(reused(old, true), b"root=/dev/vda1");
    }

    #[test]
    fn reuse_passes_bytes_that_are_not_utf8_through() {
        // A Latin-1 label in a parameter: kept byte for byte, never U+FFFD.
        let old = b"root=LABEL=caf\xe9 BOOT_IMAGE=/v\xff quiet\n";
        assert_eq!(reused(old, false), b"root=LABEL=caf\xe9 quiet");
        let line = build(Some(&reused(old, false)), Some(b"x=\xfe")).unwrap();
        assert_eq!(
            line.as_deref(),
            Some(&b"root=LABEL=caf\xe9 quiet x=\xfe"[..])
        );
    }

    #[test]
    fn reuse_then_append_joins_with_one_space_and_keeps_the_append_verbatim() {
        let line = build(
            Some(b"root=/dev/vda1 ro"),
            Some(b"maxcpus=1  reset_devices"),
        )
        .unwrap();
        assert_eq!(
            line.as_deref(),
            Some(&b"root=/dev/vda1 ro maxcpus=1  reset_devices"[..])
        );
        // kdump-tools' line may start with spaces: passed as given.
        assert_eq!(
            build(None, Some(b"  a=1")).unwrap().as_deref(),
            Some(&b"  a=1"[..])
        );
    }

    #[test]
    fn an_empty_line_keeps_the_device_tree_bootargs() {
        assert_eq!(build(Some(b""), None).unwrap(), None);
        assert_eq!(build(None, Some(b"")).unwrap(), None);
        // A reused line plus an empty append is "root=x " (not empty).
        assert_eq!(
            build(Some(b"root=x"), Some(b"")).unwrap().as_deref(),
            Some(&b"root=x "[..])
        );
        // Blanks are a command line (kexec-tools checks only the first byte).
        assert_eq!(build(None, Some(b" ")).unwrap().as_deref(), Some(&b" "[..]));
    }

    #[test]
    fn length_limit() {
        let ok = vec![b'a'; COMMAND_LINE_SIZE - 1];
        assert!(validate(&ok).is_ok());
        let long = vec![b'a'; COMMAND_LINE_SIZE];
        assert_eq!(
            validate(&long),
            Err(Error::TooLong {
                len: COMMAND_LINE_SIZE
            })
        );
        assert_eq!(
            build(None, Some(&long)),
            Err(Error::TooLong {
                len: COMMAND_LINE_SIZE
            })
        );
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(validate(b"ab\0c"), Err(Error::ContainsNul { offset: 2 }));
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

    // lib/cmdline.c `next_arg`: parameters are separated by unquoted
    // whitespace (isspace: also tabs and newlines) and a double-quoted part
    // may hold spaces; an unterminated quote runs to the end of the line.
    #[test]
    fn split_on_any_whitespace_and_unterminated_quotes() {
        assert_eq!(
            s(&split_params(b"a\tb\nc\x0bd\x0ce\rf")),
            vec!["a", "b", "c", "d", "e", "f"]
        );
        assert_eq!(s(&split_params(b"a=\"b c")), vec!["a=\"b c"]);
        assert_eq!(s(&split_params(b"\"x y\"=1 z")), vec!["\"x y\"=1", "z"]);
        assert!(split_params(b"").is_empty());
        assert!(split_params(b" \t ").is_empty());
    }

    #[test]
    fn reuse_drops_a_quoted_value_whole() {
        let old = b"BOOT_IMAGE=\"/boot/my vmlinuz\" root=/dev/vda1 dyndbg=\"file a.c +p\"\n";
        assert_eq!(reused(old, false), b"root=/dev/vda1 dyndbg=\"file a.c +p\"");
    }

    #[test]
    fn reuse_matches_whole_parameter_names_only() {
        // The name is what precedes the first '='; a bare `initrd` is dropped
        // too, names that merely contain a dropped one are kept.
        let old = b"initrd BOOT_IMAGE_X=1 my_initrd=2 initrdx=3 xelfcorehdr=4 foo=BOOT_IMAGE=5";
        assert_eq!(
            reused(old, true),
            b"BOOT_IMAGE_X=1 my_initrd=2 initrdx=3 xelfcorehdr=4 foo=BOOT_IMAGE=5"
        );
        assert_eq!(
            reused(b"crashkernelx=1 crashkernel crashkernel=64M,low", true),
            b"crashkernelx=1"
        );
    }

    #[test]
    fn reuse_drops_every_occurrence_and_elfcorehdr_on_both_loads() {
        // In a crash kernel /proc/cmdline holds the elfcorehdr= its loader
        // added; it is stale for any kernel loaded from there.
        let old =
            b"elfcorehdr=0x7f000000 crashkernel=256M crashkernel=64M,low initrd=a initrd=b ro";
        assert_eq!(
            reused(old, false),
            b"crashkernel=256M crashkernel=64M,low ro"
        );
        assert_eq!(reused(old, true), b"ro");
    }

    #[test]
    fn reuse_strips_the_trailing_newline_and_nul() {
        assert_eq!(reused(b"ro quiet\n", false), b"ro quiet");
        assert_eq!(reused(b"ro quiet\0", false), b"ro quiet");
        assert_eq!(reused(b"\n", false), b"");
        assert_eq!(reused(b"BOOT_IMAGE=/vmlinuz\n", true), b"");
    }

    #[test]
    fn length_limit_counts_the_joining_space() {
        // 2040 + 1 + 6 = 2047 bytes, the longest line that leaves room for
        // the NUL in COMMAND_LINE_SIZE; one more byte is refused.
        let reused = vec![b'r'; 2040];
        let ok = build(Some(&reused), Some(b"abcdef")).unwrap().unwrap();
        assert_eq!(ok.len(), COMMAND_LINE_SIZE - 1);
        assert_eq!(
            build(Some(&reused), Some(b"abcdefg")),
            Err(Error::TooLong {
                len: COMMAND_LINE_SIZE
            })
        );
    }

    #[test]
    fn nul_offset_is_in_the_joined_line() {
        assert_eq!(
            build(Some(b"root=x"), Some(b"a\0b")),
            Err(Error::ContainsNul { offset: 8 })
        );
        // A NUL is reported even in a line that is also too long.
        let mut long = vec![0u8];
        long.extend(vec![b'a'; COMMAND_LINE_SIZE]);
        assert_eq!(validate(&long), Err(Error::ContainsNul { offset: 0 }));
        assert_eq!(validate(b""), Ok(()));
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
