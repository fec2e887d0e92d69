//! The `key value` line format shared by boot loader entries, `loader.conf`
//! and (with `=`) os-release(5), read as systemd-boot reads it:
//! `line_get_key_value()` in systemd's src/boot/efi-string.c.
//!
//! - a line ends at `\n` or `\r` (so `\r\n` also yields an empty line);
//! - spaces and tabs around the line are dropped;
//! - empty lines and lines starting with `#` are skipped (a `#` later in a
//!   line is part of the value);
//! - the key ends at the first separator character; further separators are
//!   skipped; a line without a separator is skipped;
//! - a value starting with a quote (`"` or `'`) in a line that ends with the
//!   same quote loses both quotes (no escapes are interpreted).
//!
//! Line numbers count `\n` from 1, as an editor shows them.

/// One `key value` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyValue<'a> {
    /// 1-based line number.
    pub line: usize,
    /// The key.
    pub key: &'a str,
    /// The value, unquoted.
    pub value: &'a str,
}

/// The quotes a value may be enclosed in (`QUOTES` in systemd).
const QUOTES: [char; 2] = ['"', '\''];

/// Every `key value` line of `text`, `seps` separating key from value.
pub(crate) fn key_values<'a>(
    text: &'a str,
    seps: &'a [char],
) -> impl Iterator<Item = KeyValue<'a>> + 'a {
    let (mut line_no, mut offset) = (1, 0);
    text.split(['\n', '\r']).filter_map(move |raw| {
        let this_line = line_no;
        offset += raw.len();
        // Only `\n` starts a new editor line.
        if text.as_bytes().get(offset) == Some(&b'\n') {
            line_no += 1;
        }
        offset += 1;
        parse_line(raw, seps).map(|(key, value)| KeyValue {
            line: this_line,
            key,
            value,
        })
    })
}

/// The key and value of one line, or `None` for a line to skip.
fn parse_line<'a>(raw: &'a str, seps: &[char]) -> Option<(&'a str, &'a str)> {
    let line = raw.trim_matches([' ', '\t']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let split = line.find(seps)?;
    let key = &line[..split];
    let value = line[split..].trim_start_matches(seps);
    let value = match value.chars().next() {
        Some(q) if QUOTES.contains(&q) && line.ends_with(q) => {
            // The opening and closing quote may be the same character.
            value[1..].strip_suffix(q).unwrap_or("")
        }
        _ => value,
    };
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all<'a>(text: &'a str, seps: &'a [char]) -> Vec<(usize, &'a str, &'a str)> {
        key_values(text, seps)
            .map(|kv| (kv.line, kv.key, kv.value))
            .collect()
    }

    /// The cases of `TEST(line_get_key_value)` in systemd's
    /// src/boot/test-efi-string.c.
    #[test]
    fn systemd_line_get_key_value_examples() {
        assert_eq!(all("", &['=']), vec![]);
        assert_eq!(all("\t", &[' ', '\t']), vec![]);
        let s1 = "key=value\n \t  # comment line \nk-e-y=\"quoted value\"\n\r  wrong= 'quotes' \nodd= stripping  # with comments  ";
        assert_eq!(
            all(s1, &['=']),
            vec![
                (1, "key", "value"),
                (3, "k-e-y", "quoted value"),
                (4, "wrong", " 'quotes'"),
                (5, "odd", " stripping  # with comments"),
            ]
        );
        let s2 = "this parser\n\t\t\t# is\t\r  also\tused  \r\nfor \"the conf\"\nformat\t !!";
        assert_eq!(
            all(s2, &[' ', '\t']),
            vec![
                (1, "this", "parser"),
                (2, "also", "used"),
                (3, "for", "the conf"),
                (4, "format", "!!"),
            ]
        );
    }

    #[test]
    fn lines_without_separator_or_value_are_skipped() {
        assert_eq!(
            all("options\nlinux /a\n", &[' ', '\t']),
            vec![(2, "linux", "/a")]
        );
        // A lone quote is both opening and closing: the value is empty.
        assert_eq!(all("title \"", &[' ']), vec![(1, "title", "")]);
        assert_eq!(all("title \"a'", &[' ']), vec![(1, "title", "\"a'")]);
    }

    #[test]
    fn line_numbers_count_newlines_only() {
        let text = "a 1\r\nb 2\r\n\r\nc 3\rd 4\n";
        assert_eq!(
            all(text, &[' ']),
            vec![(1, "a", "1"), (2, "b", "2"), (4, "c", "3"), (4, "d", "4")]
        );
    }
}
