//! Bare-metal QEMU tests of the purgatory on its own (owned by the purgatory work).
