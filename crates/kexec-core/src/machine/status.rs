//! A process's credentials from `/proc/<pid>/status` (fs/proc/array.c,
//! `task_state` and `task_cap`): the `Uid:` line (real, effective, saved,
//! file-system, decimal) and `CapEff:` (the effective capability set, 16
//! hex digits; bit numbers from include/uapi/linux/capability.h).

use super::Error;

/// `CAP_SYS_ADMIN`: needed to see `/proc/iomem`'s addresses.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_SYS_BOOT`: needed by every kexec system call.
pub const CAP_SYS_BOOT: u32 = 22;

/// What `/proc/self/status` says about a process's privileges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The effective user ID; `None` without a `Uid:` line.
    pub euid: Option<u32>,
    /// The effective capability set; `None` without a `CapEff:` line.
    pub cap_eff: Option<u64>,
}

impl Credentials {
    /// Whether capability `cap` is in the effective set; `None` when unknown.
    pub fn has(&self, cap: u32) -> Option<bool> {
        self.cap_eff.map(|c| c & (1 << cap) != 0)
    }
}

/// Parse the `Uid:` and `CapEff:` lines of a status file; a malformed one
/// is an error, a missing one is `None`.
pub fn parse(text: &str) -> Result<Credentials, Error> {
    let mut out = Credentials::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Uid:") {
            let euid = rest.split_whitespace().nth(1).ok_or(Error::BadValue {
                what: "status Uid",
                detail: format!("{rest:?} has no effective UID"),
            })?;
            out.euid = Some(euid.parse().map_err(|_| Error::BadValue {
                what: "status Uid",
                detail: format!("{euid:?} is not a number"),
            })?);
        } else if let Some(rest) = line.strip_prefix("CapEff:") {
            let hex = rest.trim();
            out.cap_eff = Some(u64::from_str_radix(hex, 16).map_err(|_| Error::BadValue {
                what: "status CapEff",
                detail: format!("{hex:?} is not hexadecimal"),
            })?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_user_and_a_container_root() {
        let root = parse("Name:\tkexec\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n").unwrap();
        assert_eq!(root.euid, Some(0));
        assert_eq!(root.has(CAP_SYS_BOOT), Some(true));
        let user = parse("Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n").unwrap();
        assert_eq!(
            (user.euid, user.has(CAP_SYS_BOOT)),
            (Some(1000), Some(false))
        );
        // Root without CAP_SYS_BOOT and CAP_SYS_ADMIN (a container's default set).
        let c = parse("Uid:\t0\t0\t0\t0\nCapEff:\t00000000a80425fb\n").unwrap();
        assert_eq!(c.has(CAP_SYS_BOOT), Some(false));
        assert_eq!(c.has(CAP_SYS_ADMIN), Some(false));
        assert_eq!(parse("Name:\tx\n").unwrap(), Credentials::default());
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse("Uid:\t0\n").is_err());
        assert!(parse("Uid:\t0\tx\t0\t0\n").is_err());
        assert!(parse("CapEff:\tzz\n").is_err());
    }
}
