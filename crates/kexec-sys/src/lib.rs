//! The syscall layer of the loader: the only userspace crate allowed `unsafe`.
//!
//! It will own `kexec_load(2)`, `kexec_file_load(2)`, unloading, and
//! `reboot(LINUX_REBOOT_CMD_KEXEC)`, plus reading `/sys/kernel/kexec_loaded` and
//! `/sys/kernel/kexec_crash_loaded`, and it maps each errno to an explanation a
//! user can act on (not root, `kexec_load_disabled`, lockdown, …). Every
//! `unsafe` block carries a `// SAFETY:` comment (include/uapi/linux/kexec.h).
#![deny(missing_docs)]
