//! What a [`LoadMode`] (`-l` or `-p`) means to the CLI, written once: its
//! name in messages, the `/sys/kernel` flag that says whether such a kernel
//! is loaded, and the `kexec-sys` image the syscalls act on.

use kexec_core::plan::LoadMode;
use kexec_sys::Image;

use crate::sysroot;

/// The CLI's view of a [`LoadMode`] (an extension trait: the enum lives in
/// `kexec-core`, which knows nothing of sysfs or syscalls).
pub(crate) trait LoadModeExt {
    /// `normal` or `crash`, as in "a crash kernel is loaded".
    fn name(self) -> &'static str;
    /// The flag file, relative to the root, that is `1` while a kernel of
    /// this mode is loaded: `sys/kernel/kexec_loaded` or
    /// `sys/kernel/kexec_crash_loaded`.
    fn loaded_flag(self) -> &'static str;
    /// The image `kexec_load`, `kexec_file_load` and unload act on.
    fn image(self) -> Image;
}

impl LoadModeExt for LoadMode {
    fn name(self) -> &'static str {
        match self {
            LoadMode::Normal => "normal",
            LoadMode::Crash => "crash",
        }
    }

    fn loaded_flag(self) -> &'static str {
        match self {
            LoadMode::Normal => sysroot::KEXEC_LOADED,
            LoadMode::Crash => sysroot::KEXEC_CRASH_LOADED,
        }
    }

    fn image(self) -> Image {
        match self {
            LoadMode::Normal => Image::Normal,
            LoadMode::Crash => Image::Crash,
        }
    }
}
