//! The `kexec` binary: everything is in the library (`lib.rs`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    kexec::main()
}
