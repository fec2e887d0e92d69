//! The options whose meaning depends on where they stand, replayed in the
//! order given, as kexec-tools' `main()` (kexec/kexec.c) does: it starts from
//! "load, then shut down" and each of `-l -p -u -e -f -S -s -c -a` sets some
//! of its variables, so a later option can undo an earlier one (`-l -e` only
//! boots; `-e -l KERNEL` only loads; `-p` makes everything act on the crash
//! kernel wherever it stands; the last of `-s -c -a` wins). `-h`, `-v` and
//! `--print-ckr-size` end option processing where they stand, so the first of
//! them wins. This module is that fold and nothing else: a pure function of
//! the sequence, tested against kexec-tools 2.0.29's `main()` case by case.
//!
//! clap keeps only the last occurrence of a repeated flag. That loses
//! nothing for the mode options: each sets its variables to constants (or
//! sets a flag that is never cleared), so a variable's final value comes
//! from the last option that sets it, which is the last occurrence of some
//! option (`replaying_last_occurrences_is_the_same` checks it). For the
//! immediate options it decides only which of `-h`/`-v`/`--print-ckr-size`
//! is printed when they are repeated and mixed (`-h -v -h` prints the
//! version, kexec-tools the help); either way nothing else happens.

use crate::kfile::Call;

/// An occurrence of an option whose effect depends on its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// `-l`/`--load`.
    Load,
    /// `-p`/`--load-panic`.
    Panic,
    /// `-u`/`--unload`.
    Unload,
    /// `-e`/`--exec`.
    Exec,
    /// `-f`/`--force`.
    Force,
    /// `-S`/`--status`.
    Status,
    /// `-s`/`--kexec-file-syscall`.
    FileSyscall,
    /// `-c`/`--kexec-syscall`.
    Syscall,
    /// `-a`/`--kexec-syscall-auto`.
    SyscallAuto,
    /// `-h`/`--help`: print the help and stop (exit 0).
    Help,
    /// `-v`/`--version`: print the version and stop (exit 0).
    Version,
    /// `--print-ckr-size`: print the crash region's size and stop (exit 0).
    PrintCkrSize,
}

/// Options that end option processing where they stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Immediate {
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// `--print-ckr-size`.
    PrintCkrSize,
}

/// kexec-tools' `main()` variables after its option loop (the names are its
/// own, without `do_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The first of `-h`, `-v`, `--print-ckr-size`, which ends processing.
    pub immediate: Option<Immediate>,
    /// Load a kernel (`do_load`).
    pub load: bool,
    /// Then boot it at once (`do_exec`).
    pub exec: bool,
    /// Then run `shutdown -r now` (`do_shutdown`: a bare `kexec KERNEL`).
    pub shutdown: bool,
    /// Sync file systems before booting (`do_sync`, cleared by `-y`).
    pub sync: bool,
    /// Take network interfaces down before booting (`do_ifdown`, cleared by `-x`).
    pub ifdown: bool,
    /// Unload first (`do_unload`).
    pub unload: bool,
    /// Only report whether a kernel is loaded (`do_status`).
    pub status: bool,
    /// `-p` was given somewhere: load, unload and status act on the crash
    /// kernel (`kexec_flags = KEXEC_ON_CRASH`, never cleared).
    pub crash: bool,
    /// `-l` was given somewhere (`has_opt_load`: makes `-S` ask about the
    /// normal kernel instead of the crash kernel).
    pub has_opt_load: bool,
    /// The last of `-s`, `-c`, `-a` (default `-a`).
    pub call: Call,
}

/// Replay `switches` (in command-line order) as kexec-tools' option loop
/// does, then apply `-y`/`--no-sync` and `-x`/`--no-ifdown` (which it also
/// applies after the loop, wherever they stood) and `-S` (which turns
/// everything else off).
pub(crate) fn replay(switches: &[Switch], no_sync: bool, no_ifdown: bool) -> Outcome {
    let mut o = Outcome {
        immediate: None,
        load: true,
        exec: false,
        shutdown: true,
        sync: true,
        ifdown: false,
        unload: false,
        status: false,
        crash: false,
        has_opt_load: false,
        call: Call::Auto,
    };
    for s in switches {
        match s {
            Switch::Help | Switch::Version | Switch::PrintCkrSize => {
                o.immediate = Some(match s {
                    Switch::Help => Immediate::Help,
                    Switch::Version => Immediate::Version,
                    _ => Immediate::PrintCkrSize,
                });
                return o;
            }
            Switch::Force => {
                (o.load, o.shutdown, o.sync, o.ifdown, o.exec) = (true, false, true, true, true);
            }
            Switch::Load => {
                o.has_opt_load = true;
                (o.load, o.exec, o.shutdown) = (true, false, false);
            }
            Switch::Unload => {
                (o.load, o.shutdown, o.sync, o.unload) = (false, false, false, true);
            }
            Switch::Exec => {
                (o.load, o.shutdown, o.sync, o.ifdown, o.exec) = (false, false, true, true, true);
            }
            Switch::Panic => {
                (o.load, o.exec, o.shutdown, o.sync) = (true, false, false, false);
                o.crash = true;
            }
            Switch::Status => o.status = true,
            Switch::FileSyscall => o.call = Call::KexecFileLoad,
            Switch::Syscall => o.call = Call::KexecLoad,
            Switch::SyscallAuto => o.call = Call::Auto,
        }
    }
    if no_ifdown {
        o.ifdown = false;
    }
    if no_sync {
        o.sync = false;
    }
    if o.status {
        (o.load, o.unload, o.shutdown, o.sync, o.ifdown, o.exec) =
            (false, false, false, false, false, false);
    }
    o
}

impl Outcome {
    /// Which kernel `-S` asks about: the crash kernel unless `-l` was given
    /// without `-p` (kexec-tools: `if (kexec_flags == 0 && !has_opt_load)
    /// kexec_flags = KEXEC_ON_CRASH`).
    pub(crate) fn status_is_crash(&self) -> bool {
        self.crash || !self.has_opt_load
    }
}

#[cfg(test)]
mod tests {
    use super::Switch::*;
    use super::*;

    fn run(s: &[Switch]) -> Outcome {
        replay(s, false, false)
    }

    /// (load, exec, shutdown, unload, status, crash)
    fn what(o: Outcome) -> (bool, bool, bool, bool, bool, bool) {
        (o.load, o.exec, o.shutdown, o.unload, o.status, o.crash)
    }

    #[test]
    fn nothing_given_loads_then_shuts_down() {
        let o = run(&[]);
        assert_eq!(what(o), (true, false, true, false, false, false));
        assert!(o.sync && !o.ifdown);
        assert_eq!(o.call, Call::Auto);
    }

    #[test]
    fn each_mode_option_alone() {
        assert_eq!(
            what(run(&[Load])),
            (true, false, false, false, false, false)
        );
        assert_eq!(
            what(run(&[Panic])),
            (true, false, false, false, false, true)
        );
        assert_eq!(
            what(run(&[Unload])),
            (false, false, false, true, false, false)
        );
        assert_eq!(
            what(run(&[Exec])),
            (false, true, false, false, false, false)
        );
        assert_eq!(
            what(run(&[Force])),
            (true, true, false, false, false, false)
        );
        assert_eq!(
            what(run(&[Status])),
            (false, false, false, false, true, false)
        );
        // -e and -f sync and take interfaces down; -u and -p do not sync.
        assert!(run(&[Exec]).sync && run(&[Exec]).ifdown);
        assert!(run(&[Force]).sync && run(&[Force]).ifdown);
        assert!(!run(&[Unload]).sync && !run(&[Panic]).sync);
    }

    #[test]
    fn order_matters() {
        // (options, (load, exec, shutdown, unload, status, crash))
        let cases: [(&[Switch], _); 7] = [
            // The later of -l and -e wins.
            (&[Load, Exec], (false, true, false, false, false, false)),
            (&[Exec, Load], (true, false, false, false, false, false)),
            // -p -u unloads the crash kernel; -u -p unloads it, then loads one.
            (&[Panic, Unload], (false, false, false, true, false, true)),
            (&[Unload, Panic], (true, false, false, true, false, true)),
            // -p is sticky: -p -l still loads the crash kernel.
            (&[Panic, Load], (true, false, false, false, false, true)),
            // -f after -l boots; -l after -f only loads.
            (&[Load, Force], (true, true, false, false, false, false)),
            (&[Force, Load], (true, false, false, false, false, false)),
        ];
        for (options, want) in cases {
            assert_eq!(what(run(options)), want, "{options:?}");
        }
        // The last of -s -c -a wins.
        assert_eq!(run(&[FileSyscall, Syscall]).call, Call::KexecLoad);
        assert_eq!(run(&[Syscall, FileSyscall]).call, Call::KexecFileLoad);
        assert_eq!(run(&[FileSyscall, SyscallAuto]).call, Call::Auto);
        assert_eq!(
            run(&[FileSyscall, FileSyscall, Panic]).call,
            Call::KexecFileLoad
        );
    }

    #[test]
    fn no_sync_and_no_ifdown_apply_wherever_they_stand() {
        let o = replay(&[Exec], true, true);
        assert!(!o.sync && !o.ifdown && o.exec);
        let o = replay(&[Force], true, false);
        assert!(!o.sync && o.ifdown);
    }

    #[test]
    fn status_turns_everything_else_off_and_asks_about_the_crash_kernel() {
        let o = run(&[Status, Exec, Unload]);
        assert_eq!(what(o), (false, false, false, false, true, false));
        assert!(!o.sync && !o.ifdown);
        assert!(run(&[Status]).status_is_crash());
        assert!(!run(&[Load, Status]).status_is_crash());
        assert!(!run(&[Status, Load]).status_is_crash());
        assert!(run(&[Load, Panic, Status]).status_is_crash());
        assert!(run(&[Panic, Status]).status_is_crash());
    }

    /// The mode options, for the property below.
    const MODES: [Switch; 9] = [
        Load,
        Panic,
        Unload,
        Exec,
        Force,
        Status,
        FileSyscall,
        Syscall,
        SyscallAuto,
    ];

    proptest::proptest! {
        #[test]
        fn replaying_last_occurrences_is_the_same(
            seq in proptest::collection::vec(0..MODES.len(), 0..12),
            no_sync: bool,
            no_ifdown: bool,
        ) {
            let all: Vec<Switch> = seq.iter().map(|&i| MODES[i]).collect();
            let last: Vec<Switch> = all
                .iter()
                .enumerate()
                .filter(|&(i, s)| !all[i + 1..].contains(s))
                .map(|(_, &s)| s)
                .collect();
            proptest::prop_assert_eq!(
                replay(&all, no_sync, no_ifdown),
                replay(&last, no_sync, no_ifdown)
            );
        }
    }

    #[test]
    fn the_first_immediate_option_wins_and_stops() {
        assert_eq!(run(&[Load, Help, Version]).immediate, Some(Immediate::Help));
        assert_eq!(run(&[Version, Help]).immediate, Some(Immediate::Version));
        assert_eq!(
            run(&[Status, PrintCkrSize, Help]).immediate,
            Some(Immediate::PrintCkrSize)
        );
        assert_eq!(run(&[Load]).immediate, None);
    }
}
