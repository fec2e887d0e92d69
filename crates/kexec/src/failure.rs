//! How a command ends, as the user sees it: what it printed and its exit
//! code ([`Output`]), or a [`Failure`] — one line naming the file and the
//! problem, one line of hint, and an exit code that says whose fault it was.
//! [`finish`] turns either into output and the process's exit code.

use std::fmt;
use std::process::ExitCode;

/// Exit code: success.
pub const EXIT_SUCCESS: u8 = 0;

/// Exit code: anything else (including "not implemented yet").
pub const EXIT_OTHER: u8 = 1;
/// Exit code: bad input — arguments, kernel image, initrd, device tree, a
/// sysroot file's contents.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the system refused or is in the wrong state (permissions, no
/// crash region, a syscall error once loading exists).
pub const EXIT_SYSTEM: u8 = 3;

/// What a command that ran to its end prints on stdout, and its exit code
/// (`kexec sim` prints its report and exits 1 when a configuration failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Printed on stdout as is.
    pub text: String,
    /// The exit code.
    pub code: u8,
}

impl Output {
    /// `text`, then exit 0.
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            code: EXIT_SUCCESS,
        }
    }
}

/// Print the outcome of a command (the output on stdout, a failure as two
/// lines on stderr) and return the process's exit code.
pub fn finish(result: Result<Output, Failure>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{}", out.text);
            ExitCode::from(out.code)
        }
        Err(f) => {
            eprintln!("kexec: {f}");
            eprintln!("hint: {}", f.hint);
            ExitCode::from(f.code)
        }
    }
}

/// A failure to report and exit with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One of [`EXIT_OTHER`], [`EXIT_BAD_INPUT`], [`EXIT_SYSTEM`].
    pub code: u8,
    /// The file (or `arguments`) the problem is about.
    pub subject: String,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub hint: String,
}

impl Failure {
    /// Bad input about `subject`.
    pub fn input(
        subject: impl Into<String>,
        problem: impl fmt::Display,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(EXIT_BAD_INPUT, subject, problem, hint)
    }

    /// A system state problem about `subject`.
    pub fn system(
        subject: impl Into<String>,
        problem: impl fmt::Display,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(EXIT_SYSTEM, subject, problem, hint)
    }

    /// Any other failure.
    pub fn other(
        subject: impl Into<String>,
        problem: impl fmt::Display,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(EXIT_OTHER, subject, problem, hint)
    }

    fn new(
        code: u8,
        subject: impl Into<String>,
        problem: impl fmt::Display,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            code,
            subject: subject.into(),
            problem: problem.to_string(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)
    }
}

impl std::error::Error for Failure {}

/// An error and its causes on one line, `a: b: c`.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
