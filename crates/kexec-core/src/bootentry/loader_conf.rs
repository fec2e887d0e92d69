//! `loader/loader.conf` on the ESP: the `default` and `preferred` entry
//! patterns (globs, or `@saved`), read on the line format of
//! `super::lines` as systemd-boot's `config_defaults_load_from_file()`
//! (src/boot/boot.c) reads it. The last line of a key counts. systemd-boot
//! ignores a `default` naming another `@` special than `@saved`; so do we.
//! The other keys (`timeout`, `editor`, `console-mode`, …) are about the
//! boot menu and do not change what boots.

use super::{lines, type1};

/// The path of `loader.conf` inside the ESP.
pub const PATH: &str = "loader/loader.conf";

/// What `loader.conf` says about the default entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoaderConf {
    /// `default`: a glob over entry ids, or `@saved`.
    pub default: Option<String>,
    /// `preferred`: a glob over entry ids, tried before `default` (bootctl's
    /// `boot_entries_select_default()`).
    pub preferred: Option<String>,
    /// Lines ignored, with their line numbers and why.
    pub ignored: Vec<(usize, String)>,
}

/// Keys systemd-boot understands that do not choose the entry.
const MENU_KEYS: &[&str] = &[
    "timeout",
    "editor",
    "auto-entries",
    "auto-firmware",
    "auto-poweroff",
    "auto-reboot",
    "beep",
    "reboot-for-bitlocker",
    "reboot-on-error",
    "secure-boot-enroll",
    "secure-boot-enroll-action",
    "secure-boot-enroll-timeout-sec",
    "console-mode",
    "log-level",
    "random-seed-mode",
];

impl LoaderConf {
    /// Parses `loader.conf`; malformed only when it is not a text file.
    pub fn parse(bytes: &[u8]) -> Result<Self, type1::Error> {
        let text = type1::text_of(bytes)?;
        let mut out = Self::default();
        for kv in lines::key_values(text, &[' ', '\t']) {
            match kv.key {
                "default" | "preferred" if special_unknown(kv.value) => out.ignored.push((
                    kv.line,
                    format!("{} {}: only @saved is a special entry", kv.key, kv.value),
                )),
                "default" => out.default = Some(kv.value.to_owned()),
                "preferred" => out.preferred = Some(kv.value.to_owned()),
                key if MENU_KEYS.contains(&key) => {}
                key => out.ignored.push((kv.line, format!("unknown key {key}"))),
            }
        }
        Ok(out)
    }
}

/// An `@` pattern other than `@saved` (case-insensitive, as systemd-boot).
fn special_unknown(value: &str) -> bool {
    value.starts_with('@') && !value.eq_ignore_ascii_case("@saved")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_bootctl_install_writes() {
        let conf = LoaderConf::parse(
            b"#timeout 3\n#console-mode keep\ndefault 2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-*\n",
        )
        .unwrap();
        assert_eq!(
            conf.default.as_deref(),
            Some("2f3b19c4ad3a4cf6b5b4d3d4b0b8e2c1-*")
        );
        assert!(conf.ignored.is_empty());
    }

    #[test]
    fn last_line_counts_and_specials() {
        let conf = LoaderConf::parse(
            b"default a*\ntimeout 4\ndefault @SAVED\npreferred @other\nfancy yes\n",
        )
        .unwrap();
        assert_eq!(conf.default.as_deref(), Some("@SAVED"));
        assert_eq!(conf.preferred, None);
        assert_eq!(
            conf.ignored,
            [
                (4, "preferred @other: only @saved is a special entry".into()),
                (5, "unknown key fancy".into())
            ]
        );
        assert!(LoaderConf::parse(b"default \xff").is_err());
    }
}
