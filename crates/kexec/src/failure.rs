//! Errors as the user sees them: one line naming the file and the problem,
//! one line of hint, and an exit code that says whose fault it was.

use std::fmt;

/// Exit code: anything else (including "not implemented yet").
pub const EXIT_OTHER: u8 = 1;
/// Exit code: bad input — arguments, kernel image, initrd, device tree, a
/// sysroot file's contents.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the system refused or is in the wrong state (permissions, no
/// crash region, a syscall error once loading exists).
pub const EXIT_SYSTEM: u8 = 3;

/// A failure to report and exit with.
#[derive(Debug)]
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
