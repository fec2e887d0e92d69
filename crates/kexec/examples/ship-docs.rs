//! `cargo run -p kexec --example ship-docs -- DIR`: writes the man pages
//! and the shell completions of `kexec`, generated from its clap definition
//! ([`kexec::command`]), so they always describe the options the binary
//! parses. `cargo xtask package` runs it and puts the files in the Debian
//! package (xtask/src/package.rs); nothing generated is committed.
//!
//! ```text
//! DIR/man/kexec.8 (and one page per subcommand: kexec-sim.8, kexec-vmcore-info.8, ...)
//! DIR/completions/kexec.bash   DIR/completions/_kexec   DIR/completions/kexec.fish
//! ```
//!
//! An example, not a build script or an xtask dependency: `cargo xtask setup`
//! must build before the purgatory's target is installed, and the library
//! (which embeds the purgatory) needs that target.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Man section 8: system administration commands (kexec-tools' page is kexec(8)).
const SECTION: &str = "8";

/// The completions written, each with the file name its shell looks for.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "kexec.bash"),
    (Shell::Zsh, "_kexec"),
    (Shell::Fish, "kexec.fish"),
];

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: ship-docs DIR");
        std::process::exit(2);
    };
    if let Err(e) = write_all(&dir) {
        eprintln!("ship-docs: {}: {e}", dir.display());
        std::process::exit(1);
    }
}

/// Write the man pages into `dir/man` and the completions into
/// `dir/completions` (the test `tests/ship_docs.rs` calls it too).
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    // The man page's VERSION section names the version only: what else this
    // binary was built with is `kexec --version`'s to say.
    let mut command = kexec::command()
        .long_version(None::<&str>)
        .disable_help_subcommand(true);
    command.build();
    write_pages(&command, &man, true)?;
    for (shell, file) in COMPLETIONS {
        let mut out = std::fs::File::create(completions.join(file))?;
        clap_complete::generate(shell, &mut kexec::command(), "kexec", &mut out);
        out.flush()?;
    }
    Ok(())
}

/// `command`'s page and, recursively, one per visible subcommand.
fn write_pages(command: &clap::Command, dir: &Path, top: bool) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, false)?;
    }
    let man = clap_mangen::Man::new(command.clone())
        .section(SECTION)
        .manual("System Administration")
        .source(format!("kexec-rs {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render(&mut page)?;
    if top {
        page.extend_from_slice(SEE_ALSO.as_bytes());
    }
    std::fs::write(dir.join(man.get_filename()), page)
}

/// Appended to kexec(8).
const SEE_ALSO: &str = r#".SH "SEE ALSO"
\fBsystemctl\fR(1) (\fBsystemctl kexec\fR), \fBkdump-config\fR(8), \fBmakedumpfile\fR(8)
.PP
kexec-rs is a drop-in for kexec-tools on arm64: the same options, with the
differences its README lists.
"#;
