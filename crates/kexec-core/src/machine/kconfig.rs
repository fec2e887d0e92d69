//! A kernel build configuration (`/proc/config.gz` unpacked, or
//! `/boot/config-<release>`), as Kconfig writes it
//! (scripts/kconfig/confdata.c, `conf_write` and `conf_read_simple`):
//! `CONFIG_NAME=value` for a set option (`y`, `m`, a number or a quoted
//! string) and `# CONFIG_NAME is not set` for an unset one; other lines are
//! comments. An option absent from the file is not set either (its
//! dependencies are unmet, or this kernel predates it).

use std::collections::BTreeMap;

use super::Error;

/// The prefix every option has (Kconfig's default `CONFIG_`).
pub const PREFIX: &str = "CONFIG_";

/// The value of a set option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `=y`: built in.
    Yes,
    /// `=m`: a module.
    Module,
    /// Any other value, as written (quotes kept).
    Other(String),
}

impl Value {
    /// The value as Kconfig writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Yes => "y",
            Self::Module => "m",
            Self::Other(s) => s,
        }
    }
}

/// The set options of a configuration, by name without the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KernelConfig {
    options: BTreeMap<String, Value>,
}

impl KernelConfig {
    /// The value of option `name` (without `CONFIG_`); `None` when not set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.options.get(name)
    }

    /// Whether option `name` is `y` (a bool option cannot be `m`).
    pub fn is_yes(&self, name: &str) -> bool {
        self.get(name) == Some(&Value::Yes)
    }

    /// How many options are set.
    pub fn len(&self) -> usize {
        self.options.len()
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// Parse a configuration. Lines that are neither an option nor a comment
/// are skipped, as Kconfig itself skips them; a text with no
/// `CONFIG_` line at all (set or unset) is refused.
pub fn parse(text: &str) -> Result<KernelConfig, Error> {
    let mut config = KernelConfig::default();
    let mut seen = false;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest
                .strip_prefix(PREFIX)
                .and_then(|r| r.strip_suffix(" is not set"))
            {
                if valid_name(name) {
                    seen = true;
                    config.options.remove(name);
                }
            }
            continue;
        }
        let Some((name, value)) = line.strip_prefix(PREFIX).and_then(|r| r.split_once('=')) else {
            continue;
        };
        if !valid_name(name) {
            continue;
        }
        seen = true;
        let value = match value {
            "y" => Value::Yes,
            "m" => Value::Module,
            // `=n` is what old configurations wrote for unset options.
            "n" | "" => {
                config.options.remove(name);
                continue;
            }
            other => Value::Other(other.to_owned()),
        };
        config.options.insert(name.to_owned(), value);
    }
    if seen {
        Ok(config)
    } else {
        Err(Error::NotAConfig)
    }
}

/// A Kconfig symbol name: letters, digits and `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "#\n# Automatically generated file; DO NOT EDIT.\n\
        # Linux/arm64 6.1.0 Kernel Configuration\n#\nCONFIG_CC_VERSION_TEXT=\"gcc (Debian 12.2.0-14) 12.2.0\"\n\
        CONFIG_KEXEC=y\n# CONFIG_KEXEC_FILE is not set\nCONFIG_CRASH_DUMP=y\n\
        CONFIG_RANDOMIZE_BASE=y\nCONFIG_EXT4_FS=m\nCONFIG_NR_CPUS=256\n";

    #[test]
    fn set_unset_and_valued_options() {
        let c = parse(DEBIAN).unwrap();
        assert!(c.is_yes("KEXEC"));
        assert_eq!(c.get("KEXEC_FILE"), None);
        assert_eq!(c.get("KEXEC_SIG"), None, "absent: not set");
        assert_eq!(c.get("EXT4_FS"), Some(&Value::Module));
        assert!(!c.is_yes("EXT4_FS"));
        assert_eq!(c.get("NR_CPUS").map(Value::as_str), Some("256"));
        assert_eq!(
            c.get("CC_VERSION_TEXT").map(Value::as_str),
            Some("\"gcc (Debian 12.2.0-14) 12.2.0\"")
        );
        assert_eq!(c.len(), 6);
        assert!(!c.is_empty());
        let none_set = parse("# CONFIG_KEXEC is not set\n").unwrap();
        assert!(none_set.is_empty());
        assert_eq!(none_set.len(), 0);
    }

    #[test]
    fn the_last_line_about_an_option_wins() {
        let c = parse(
            "CONFIG_A=y\n# CONFIG_A is not set\nCONFIG_B=y\nCONFIG_B=n\nCONFIG_C=m\nCONFIG_C=y\n",
        )
        .unwrap();
        assert_eq!(c.get("A"), None);
        assert_eq!(c.get("B"), None);
        assert!(c.is_yes("C"));
    }

    #[test]
    fn anything_else_is_not_a_configuration() {
        assert_eq!(parse(""), Err(Error::NotAConfig));
        assert_eq!(parse("hello\nKEXEC=y\n# comment\n"), Err(Error::NotAConfig));
        assert_eq!(parse("CONFIG_=y\nCONFIG_A B=y\n"), Err(Error::NotAConfig));
        // Only unset options: still a configuration, with nothing set.
        let c = parse("# CONFIG_KEXEC is not set\r\n").unwrap();
        assert!(c.is_empty());
    }
}
