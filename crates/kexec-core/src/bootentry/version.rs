//! Version comparison as systemd sorts boot entries: `strverscmp_improved()`
//! in systemd's src/fundamental/string-util-fundamental.c (itself modelled
//! on rpm's `rpmvercmp()`). Written from the documented behaviour, not
//! copied.
//!
//! A string is a sequence of segments, each numeric or alphabetic, each
//! optionally introduced by one of `~` (pre-release: older than anything,
//! even the end of the string), `-` (version/release separator), `^`
//! (patched release: newer than `-`), `.` (point release: newer than `^`);
//! a segment with no prefix is the newest. Every other character only
//! separates segments. Numeric segments compare as numbers (leading zeros
//! dropped) and are newer than alphabetic ones; alphabetic segments compare
//! as strings, the longer newer when one is a prefix of the other. When one
//! string runs out, the longer is newer.
//!
//! Comparison is on bytes, unsigned (as on arm64, whose `char` is
//! unsigned); a NUL byte ends a string, as in C.

use std::cmp::Ordering;

/// Characters that carry meaning: ASCII letters and digits and the four
/// prefixes (`is_valid_version_char()`).
fn is_version_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'~' | b'-' | b'^' | b'.')
}

/// The byte at `i`, 0 past the end (the C string's terminator).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Compares two version strings: `Less` when `a` is older than `b`.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_bytes(a.as_bytes(), b.as_bytes())
}

/// [`compare`] on bytes.
pub fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        while at(a, i) != 0 && !is_version_char(at(a, i)) {
            i += 1;
        }
        while at(b, j) != 0 && !is_version_char(at(b, j)) {
            j += 1;
        }
        // `~` first: a pre-release is older even than a string that ends.
        if at(a, i) == b'~' || at(b, j) == b'~' {
            let r = (at(a, i) != b'~').cmp(&(at(b, j) != b'~'));
            if r.is_ne() {
                return r;
            }
            i += 1;
            j += 1;
        }
        if at(a, i) == 0 || at(b, j) == 0 {
            return at(a, i).cmp(&at(b, j));
        }
        for prefix in [b'-', b'^', b'.'] {
            if at(a, i) == prefix || at(b, j) == prefix {
                let r = (at(a, i) != prefix).cmp(&(at(b, j) != prefix));
                if r.is_ne() {
                    return r;
                }
                i += 1;
                j += 1;
            }
        }
        let (ii, jj);
        if at(a, i).is_ascii_digit() || at(b, j).is_ascii_digit() {
            ii = span(a, i, |c| c.is_ascii_digit());
            jj = span(b, j, |c| c.is_ascii_digit());
            // A numeric segment is newer than an empty (alphabetic) one.
            let r = (ii != i).cmp(&(jj != j));
            if r.is_ne() {
                return r;
            }
            while at(a, i) == b'0' {
                i += 1;
            }
            while at(b, j) == b'0' {
                j += 1;
            }
            // More digits is a larger number; equal lengths compare as text.
            let r = (ii - i)
                .cmp(&(jj - j))
                .then_with(|| a[i..ii].cmp(&b[j..jj]));
            if r.is_ne() {
                return r;
            }
        } else {
            ii = span(a, i, |c| c.is_ascii_alphabetic());
            jj = span(b, j, |c| c.is_ascii_alphabetic());
            let common = (ii - i).min(jj - j);
            let r = a[i..i + common]
                .cmp(&b[j..j + common])
                .then_with(|| (ii - i).cmp(&(jj - j)));
            if r.is_ne() {
                return r;
            }
        }
        i = ii;
        j = jj;
    }
}

/// The end of the run of bytes from `start` that satisfy `f`.
fn span(s: &[u8], start: usize, f: impl Fn(u8) -> bool) -> usize {
    let mut end = start;
    while end < s.len() && f(s[end]) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newer(older: &str, newer: &str) {
        assert_eq!(compare(older, newer), Ordering::Less, "{older} < {newer}");
        assert_eq!(
            compare(newer, older),
            Ordering::Greater,
            "{newer} > {older}"
        );
        assert_eq!(compare(older, older), Ordering::Equal);
        assert_eq!(compare(newer, newer), Ordering::Equal);
    }

    /// `TEST(strverscmp_improved)` in systemd's src/test/test-string-util.c:
    /// each version is older than every later one.
    #[test]
    fn systemd_ordered_list() {
        let versions = [
            "~1",
            "",
            "ab",
            "abb",
            "abc",
            "0001",
            "002",
            "12",
            "122",
            "122.9",
            "123~rc1",
            "123",
            "123-a",
            "123-a.1",
            "123-a1",
            "123-a1.1",
            "123-3",
            "123-3.1",
            "123^patch1",
            "123^1",
            "123.a-1",
            "123.1-1",
            "123a-1",
            "124",
        ];
        for (n, a) in versions.iter().enumerate() {
            for b in &versions[n + 1..] {
                newer(a, b);
            }
        }
    }

    /// The pairs and corner cases of the same test.
    #[test]
    fn systemd_pairs_and_corner_cases() {
        for (o, n) in [
            ("123.45-67.88", "123.45-67.89"),
            ("123.45-67.89", "123.45-67.89a"),
            ("123.45-67.ab", "123.45-67.89"),
            ("123.45-67.9", "123.45-67.89"),
            ("123.45-67", "123.45-67.89"),
            ("123.45-66.89", "123.45-67.89"),
            ("123.45-9.99", "123.45-67.89"),
            ("123.42-99.99", "123.45-67.89"),
            ("123-99.99", "123.45-67.89"),
            ("123~rc1-99.99", "123.45-67.89"),
            ("123~rc1-99.99", "123-45.67.89"),
            ("123~rc1-99.99", "123~rc2-67.89"),
            ("123~rc1-99.99", "123^aa2-67.89"),
            ("123~rc1-99.99", "123aa2-67.89"),
            ("123-99.99", "123^aa2-67.89"),
            ("123-99.99", "123aa2-67.89"),
            ("123^45-67.89", "123.45-67.89"),
            ("123^aa1-99.99", "123^aa2-67.89"),
            ("123^aa2-67.89", "123aa2-67.89"),
            ("123.aa2-67.89", "123aa2-67.89"),
            ("123.aa2-67.89", "123.ab2-67.89"),
        ] {
            newer(o, n);
        }
        use Ordering::{Equal, Greater, Less};
        for (a, b, want) in [
            ("123_aa2-67.89", "123aa+2-67.89", Equal),
            ("123.", "123", Greater),
            ("12_3", "123", Less),
            ("12_3", "12", Greater),
            ("12_3", "12.3", Greater),
            ("123.0", "123", Greater),
            ("123_0", "123", Greater),
            ("123..0", "123.0", Less),
            ("0_", "0", Equal),
            ("_0_", "0", Equal),
            ("_0", "0", Equal),
            ("0", "0___", Equal),
            ("", "_", Equal),
            ("_", "", Equal),
            ("_", "_", Equal),
            ("", "~", Greater),
            ("~", "", Less),
            ("~", "~", Equal),
            // Non-ASCII digits are not digits.
            ("1٠١٢٣٤٥٦٧٨٩", "1", Equal),
        ] {
            assert_eq!(compare(a, b), want, "{a:?} vs {b:?}");
        }
    }

    /// `TEST(strverscmp_improved_rpm)` in the same file (rpm's rpmvercmp.at
    /// cases as systemd runs them, including where systemd differs from rpm).
    #[test]
    fn systemd_rpm_cases() {
        use Ordering::{Equal as E, Greater as G, Less as L};
        for (a, b, want) in [
            ("1.0", "1.0", E),
            ("1.0", "2.0", L),
            ("2.0", "1.0", G),
            ("2.0.1", "2.0.1", E),
            ("2.0", "2.0.1", L),
            ("2.0.1", "2.0", G),
            ("2.0.1a", "2.0.1a", E),
            ("2.0.1a", "2.0.1", G),
            ("2.0.1", "2.0.1a", L),
            ("5.5p1", "5.5p1", E),
            ("5.5p1", "5.5p2", L),
            ("5.5p2", "5.5p1", G),
            ("5.5p10", "5.5p10", E),
            ("5.5p1", "5.5p10", L),
            ("5.5p10", "5.5p1", G),
            ("10xyz", "10.1xyz", G),
            ("10.1xyz", "10xyz", L),
            ("xyz10", "xyz10", E),
            ("xyz10", "xyz10.1", L),
            ("xyz10.1", "xyz10", G),
            ("xyz.4", "xyz.4", E),
            ("xyz.4", "8", L),
            ("8", "xyz.4", G),
            ("xyz.4", "2", L),
            ("2", "xyz.4", G),
            ("5.5p2", "5.6p1", L),
            ("5.6p1", "5.5p2", G),
            ("5.6p1", "6.5p1", L),
            ("6.5p1", "5.6p1", G),
            ("6.0.rc1", "6.0", G),
            ("6.0", "6.0.rc1", L),
            ("10b2", "10a1", G),
            ("10a2", "10b2", L),
            ("1.0aa", "1.0aa", E),
            ("1.0a", "1.0aa", L),
            ("1.0aa", "1.0a", G),
            ("10.0001", "10.0001", E),
            ("10.0001", "10.1", E),
            ("10.1", "10.0001", E),
            ("10.0001", "10.0039", L),
            ("10.0039", "10.0001", G),
            ("4.999.9", "5.0", L),
            ("5.0", "4.999.9", G),
            ("20101121", "20101121", E),
            ("20101121", "20101122", L),
            ("20101122", "20101121", G),
            ("2_0", "2_0", E),
            ("2.0", "2_0", L),
            ("2_0", "2.0", G),
            ("a", "a", E),
            ("a+", "a+", E),
            ("a+", "a_", E),
            ("a_", "a+", E),
            ("+a", "+a", E),
            ("+a", "_a", E),
            ("_a", "+a", E),
            ("+_", "+_", E),
            ("_+", "+_", E),
            ("_+", "_+", E),
            ("+", "_", E),
            ("_", "+", E),
            ("1.0~rc1", "1.0~rc1", E),
            ("1.0~rc1", "1.0", L),
            ("1.0", "1.0~rc1", G),
            ("1.0~rc1", "1.0~rc2", L),
            ("1.0~rc2", "1.0~rc1", G),
            ("1.0~rc1~git123", "1.0~rc1~git123", E),
            ("1.0~rc1~git123", "1.0~rc1", L),
            ("1.0~rc1", "1.0~rc1~git123", G),
            ("1.0^", "1.0^", E),
            ("1.0^", "1.0", G),
            ("1.0", "1.0^", L),
            ("1.0^git1", "1.0^git1", E),
            ("1.0^git1", "1.0", G),
            ("1.0", "1.0^git1", L),
            ("1.0^git1", "1.0^git2", L),
            ("1.0^git2", "1.0^git1", G),
            ("1.0^git1", "1.01", L),
            ("1.01", "1.0^git1", G),
            ("1.0^20160101", "1.0^20160101", E),
            ("1.0^20160101", "1.0.1", L),
            ("1.0.1", "1.0^20160101", G),
            ("1.0^20160101^git1", "1.0^20160101^git1", E),
            ("1.0^20160102", "1.0^20160101^git1", G),
            ("1.0^20160101^git1", "1.0^20160102", L),
            ("1.0~rc1^git1", "1.0~rc1^git1", E),
            ("1.0~rc1^git1", "1.0~rc1", G),
            ("1.0~rc1", "1.0~rc1^git1", L),
            ("1.0^git1~pre", "1.0^git1~pre", E),
            ("1.0^git1", "1.0^git1~pre", G),
            ("1.0^git1~pre", "1.0^git1", L),
            ("1b.fc17", "1b.fc17", E),
            ("1b.fc17", "1.fc17", G),
            ("1.fc17", "1b.fc17", L),
            ("1g.fc17", "1g.fc17", E),
            ("1g.fc17", "1.fc17", G),
            ("1.fc17", "1g.fc17", L),
            ("1.1.α", "1.1.α", E),
            ("1.1.α", "1.1.β", E),
            ("1.1.β", "1.1.α", E),
            ("1.1.αα", "1.1.α", E),
            ("1.1.α", "1.1.ββ", E),
            ("1.1.ββ", "1.1.αα", E),
        ] {
            assert_eq!(compare(a, b), want, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn kernel_versions_as_distributions_name_them() {
        newer("6.1.0-18-arm64", "6.1.0-21-arm64");
        newer("6.7.5-200.fc39.aarch64", "6.8.9-300.fc40.aarch64");
        newer("0-rescue-4a1b", "6.8.9-300.fc40.aarch64");
        // A NUL ends the string as in C.
        assert_eq!(compare_bytes(b"1.2\0.9", b"1.2"), Ordering::Equal);
    }
}
