//! Boot counting in entry file names (the Boot Loader Specification's
//! "Boot counting"): `NAME+LEFT[-DONE].conf` (or `.efi`) has `LEFT` tries
//! left and `DONE` made. systemd-boot renames the file before each try
//! (`+3` → `+2-1` → `+1-2` → `+0-3`); userspace removes the counter once a
//! boot succeeded.
//!
//! The name is split as systemd's `boot_filename_extract_tries()`
//! (src/shared/bootspec.c) splits it: the counter is the part after the last
//! `+` before the last `.`, decimal digits, optionally `-` and more digits,
//! reaching the `.` exactly; the entry's id is the name without it. A
//! counter above `INT_MAX` is not a counter: systemd-boot's
//! `boot_entry_parse_tries()` (src/boot/boot.c) then boots the entry
//! without counting, and so do we (bootctl refuses such a file).

/// The tries of a boot-counted entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tries {
    /// Tries left: 0 means every try failed (the entry sorts last).
    pub left: u32,
    /// Tries made (0 when the name has no `-DONE`, as systemd-boot counts).
    pub done: u32,
}

/// The largest counter systemd-boot accepts (`INT_MAX`).
pub const MAX_TRIES: u32 = i32::MAX as u32;

/// Splits a file name into its id (the name without the counter) and its
/// tries, if it carries a counter.
pub fn split(file_name: &str) -> (String, Option<Tries>) {
    let nothing = || (file_name.to_owned(), None);
    let Some(dot) = file_name.rfind('.') else {
        return nothing();
    };
    let Some(plus) = file_name[..dot].rfind('+') else {
        return nothing();
    };
    let counter = &file_name[plus + 1..dot];
    let (left, done) = match counter.split_once('-') {
        Some((l, d)) => (l, Some(d)),
        None => (counter, None),
    };
    let Some(left) = number(left) else {
        return nothing();
    };
    let done = match done {
        None => 0,
        Some(d) => match number(d) {
            Some(d) => d,
            None => return nothing(),
        },
    };
    let id = format!("{}{}", &file_name[..plus], &file_name[dot..]);
    (id, Some(Tries { left, done }))
}

/// A counter: decimal digits only (leading zeros allowed), at most
/// [`MAX_TRIES`].
fn number(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 10 {
        return None;
    }
    let n: u64 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    u32::try_from(n).ok().filter(|&n| n <= MAX_TRIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tries(left: u32, done: u32) -> Option<Tries> {
        Some(Tries { left, done })
    }

    /// `TEST_RET(bootspec_extract_tries)` in systemd's
    /// src/test/test-bootspec.c (a missing `-DONE` is 0 here, as
    /// systemd-boot counts; an out-of-range counter leaves the name alone,
    /// as systemd-boot does, where bootctl returns -ERANGE).
    #[test]
    fn systemd_extract_tries_examples() {
        let plain = |name: &str| (name.to_owned(), None);
        assert_eq!(split("foo.conf"), plain("foo.conf"));
        assert_eq!(split("foo+0.conf"), ("foo.conf".into(), tries(0, 0)));
        assert_eq!(split("foo+1.conf"), ("foo.conf".into(), tries(1, 0)));
        assert_eq!(split("foo+2.conf"), ("foo.conf".into(), tries(2, 0)));
        assert_eq!(split("foo+33.conf"), ("foo.conf".into(), tries(33, 0)));
        assert_eq!(
            split("foo+2147483647.conf"),
            ("foo.conf".into(), tries(2_147_483_647, 0))
        );
        assert_eq!(split("foo+2147483648.conf"), plain("foo+2147483648.conf"));
        assert_eq!(split("foo+33-0.conf"), ("foo.conf".into(), tries(33, 0)));
        assert_eq!(split("foo+33-1.conf"), ("foo.conf".into(), tries(33, 1)));
        assert_eq!(
            split("foo+33-107.conf"),
            ("foo.conf".into(), tries(33, 107))
        );
        assert_eq!(split("foo+33-107.efi"), ("foo.efi".into(), tries(33, 107)));
        assert_eq!(
            split("foo+33-2147483647.conf"),
            ("foo.conf".into(), tries(33, 2_147_483_647))
        );
        assert_eq!(
            split("foo+33-2147483648.conf"),
            plain("foo+33-2147483648.conf")
        );
        assert_eq!(
            split("foo+007-000008.conf"),
            ("foo.conf".into(), tries(7, 8))
        );
        for name in [
            "foo-1.conf",
            "foo-999.conf",
            "foo-.conf",
            "foo+.conf",
            "+.conf",
            "-.conf",
            "",
            "a+1-2..",
            "abc+0x4.conf",
            "def+1-0x3.conf",
        ] {
            assert_eq!(split(name), plain(name), "{name}");
        }
        assert_eq!(split("+1."), (".".into(), tries(1, 0)));
        assert_eq!(split("+1-7."), (".".into(), tries(1, 7)));
        assert_eq!(
            split("some+name+24324-22.efi"),
            ("some+name.efi".into(), tries(24324, 22))
        );
        assert_eq!(split("sels+2-3+7-6."), ("sels+2-3.".into(), tries(7, 6)));
        assert_eq!(
            split("ses.sgesge.+4-1.efi"),
            ("ses.sgesge..efi".into(), tries(4, 1))
        );
    }

    #[test]
    fn huge_counters_are_not_counters() {
        assert_eq!(split("a+99999999999999999999.conf").1, None);
        assert_eq!(split("a+00000000000000000001.conf").1, tries(1, 0));
        assert_eq!(split("a+1-x.conf").1, None);
        assert_eq!(split("a+1-+2.conf"), ("a+1-.conf".into(), tries(2, 0)));
    }
}
