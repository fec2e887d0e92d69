//! Glob patterns as systemd-boot matches `loader.conf`'s `default` against
//! entry ids: `efi_fnmatch()` in systemd's src/boot/efi-string.c, a subset of
//! fnmatch(3) without backtracking blow-up. Written from its documented
//! behaviour and tests, not copied.
//!
//! - `*` matches any run of characters, `?` any one character;
//! - `[...]` matches one character of a set: `]` first is literal, `a-z` is
//!   a range unless `-` is first or last, ranges do not chain (`[a-c-f]` is
//!   `a`, `b`, `c`, `-`, `f`), `\` escapes; there is no negation (`[!a]`
//!   is `!` or `a`), unlike fnmatch(3);
//! - `\` makes the next character literal;
//! - a malformed pattern (a trailing `\`, an unclosed `[`) matches nothing.
//!
//! Matching is case-sensitive; callers fold case first (systemd-boot
//! lowercases both the pattern and the ids).

/// Whether `name` matches `pattern` in full.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    let (mut pi, mut si) = (0usize, 0usize);
    // The most recent `*`: where its pattern continues and how much of the
    // name it has swallowed. Later stars make earlier ones irrelevant, so
    // one retry point is enough (no exponential backtracking).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if p.get(pi) == Some(&'*') {
            while p.get(pi) == Some(&'*') {
                pi += 1;
            }
            star = Some((pi, si));
            continue;
        }
        match one(&p, pi, s[si]) {
            Some(next) => {
                pi = next;
                si += 1;
            }
            None => match star {
                Some((after_star, swallowed)) => {
                    // The star swallows one more character; retry after it.
                    let swallowed = swallowed + 1;
                    (pi, si) = (after_star, swallowed);
                    star = Some((after_star, swallowed));
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

/// Matches the one pattern element at `pi` (a literal, `\x`, `?` or a set)
/// against `c`: where the pattern continues, or `None`.
fn one(p: &[char], pi: usize, c: char) -> Option<usize> {
    match *p.get(pi)? {
        '\\' => (*p.get(pi + 1)? == c).then_some(pi + 2),
        '?' => Some(pi + 1),
        '[' => set(p, pi + 1, c),
        lit => (lit == c).then_some(pi + 1),
    }
}

/// Matches the set whose contents start at `start` (after `[`) against `c`:
/// where the pattern continues after `]`, or `None` (no match, or no `]`).
fn set(p: &[char], start: usize, c: char) -> Option<usize> {
    let mut i = start;
    let (mut first, mut can_range, mut hit) = (true, true, false);
    // The last character of the set, the low end of a following range.
    let mut prev = '\0';
    loop {
        let ch = *p.get(i)?;
        match ch {
            '\\' => {
                let lit = *p.get(i + 1)?;
                hit |= lit == c;
                prev = lit;
                can_range = true;
                i += 2;
            }
            ']' if !first => return hit.then_some(i + 1),
            '-' if can_range && !first && p.get(i + 1) != Some(&']') => {
                let mut hi_at = i + 1;
                if p.get(hi_at) == Some(&'\\') {
                    hi_at += 1;
                }
                let high = *p.get(hi_at)?;
                hit |= prev <= c && c <= high;
                // Ranges do not chain.
                can_range = false;
                prev = high;
                i = hi_at + 1;
            }
            lit => {
                hit |= lit == c;
                prev = lit;
                can_range = true;
                i += 1;
            }
        }
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TEST(efi_fnmatch)` in systemd's src/boot/test-efi-string.c.
    #[test]
    fn systemd_efi_fnmatch_examples() {
        for (pattern, name, want) in [
            ("", "", true),
            ("abc", "abc", true),
            ("aBc", "abc", false),
            ("b", "a", false),
            ("b", "", false),
            ("abc", "a", false),
            ("a?c", "azc", true),
            ("???", "?.9", true),
            ("1?", "1", false),
            ("***", "", true),
            ("*", "123", true),
            ("**", "abcd", true),
            ("*b*", "abcd", true),
            ("abc*d", "abc", false),
            ("start*end", "startend", true),
            ("start*end", "startendend", true),
            ("start*end", "startenddne", false),
            ("start*end", "startendstartend", true),
            ("start*end", "starten", false),
            ("*.conf", "arch.conf", true),
            ("debian-*.conf", "debian-wheezy.conf", true),
            ("debian-*.*", "debian-wheezy.efi", true),
            ("ab*cde", "abzcd", false),
            ("\\*\\a\\[", "*a[", true),
            ("[abc] [abc] [abc]", "a b c", true),
            ("abc]", "abc]", true),
            ("[abc]", "z", false),
            ("[abc", "a", false),
            ("[][!] [][!] [][!]", "[ ] !", true),
            ("[]-] []-]", "] -", true),
            ("[1\\]] [1\\]]", "1 ]", true),
            ("[$-\\+]", "&", true),
            ("[1-3A-C] [1-3A-C]", "2 B", true),
            ("[3-5] [3-5] [3-5]", "3 4 5", true),
            ("[f-h] [f-h] [f-h]", "f g h", true),
            ("[a-c-f] [a-c-f] [a-c-f] [a-c-f] [a-c-f]", "a b c - f", true),
            ("[a-c-f]", "e", false),
            ("[--0] [--0] [--0]", "- . 0", true),
            ("[+--] [+--] [+--]", "+ , -", true),
            ("[f-l]", "m", false),
            ("[b]", "z-a", false),
            ("[a\\-z]", "b", false),
            ("?a*b[.-0]c", "/a/b/c", true),
            (
                "debian-*-*-*.*",
                "debian-jessie-2018-06-17-kernel-image-5.10.0-16-amd64.efi",
                true,
            ),
            (
                "a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*r*s*t*u*v*w*x*y*z*",
                "aaaabbbbccccddddeeeeffffgggghhhhiiiijjjjkkkkllllmmmmnnnnooooppppqqqqrrrrssssttttuuuuvvvvwwwwxxxxyyyy",
                false,
            ),
            (
                "a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*r*s*t*u*v*w*x*y*z*",
                "aaaabbbbccccddddeeeeffffgggghhhhiiiijjjjkkkkllllmmmmnnnnooooppppqqqqrrrrssssttttuuuuvvvvwwwwxxxxyyyyzzzz!!!!",
                true,
            ),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern:?} vs {name:?}");
        }
    }

    /// Ranges whose ends are `]` or escaped (fnmatch(3) agrees).
    #[test]
    fn range_ends() {
        assert!(matches("[a-\\z]", "m"));
        assert!(!matches("[a-\\z]", "-"));
        assert!(matches("[]-a]", "_"));
        assert!(!matches("[]-a]", "-"));
    }

    #[test]
    fn malformed_patterns_match_nothing() {
        assert!(!matches("a\\", "a"));
        assert!(!matches("a\\", "a\\"));
        assert!(!matches("*[", "x["));
        assert!(!matches("[a-", "a"));
    }
}
