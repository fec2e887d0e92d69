//! What `kexec vmcore info` shows: the crashed kernel's release, page size
//! and crash time (VMCOREINFO), its CPUs (`NT_PRSTATUS` notes) and which one
//! crashed, the memory ranges (`PT_LOAD`s) and VMCOREINFO's layout numbers.
//!
//! Which CPU crashed: `panic()` (kernel/panic.c) logs
//! `Kernel panic - not syncing: …` from the panicking CPU, and the log
//! record's `caller_id` (kernel/printk/printk.c, `printk_caller_id`) is that
//! CPU's task PID, or `0x80000000 + CPU` outside task context. The
//! `NT_PRSTATUS` note whose `pr_pid` is that PID (`crash_save_cpu` writes
//! `current->pid`) is the crashing CPU's; if the PID is ambiguous (several
//! notes have it, as idle tasks all have PID 0) none is named.

use super::printk::{Record, Ring, CALLER_CPU_FLAG};
use super::{Error, Load, ReadAt, Vmcore};

/// The text `panic()` logs first (kernel/panic.c).
pub const PANIC_PREFIX: &str = "Kernel panic - not syncing: ";

/// VMCOREINFO entries shown by `kexec vmcore info`, in this order.
pub const HIGHLIGHTS: &[&str] = &[
    "OSRELEASE",
    "BUILD-ID",
    "PAGESIZE",
    "CRASHTIME",
    "KERNELOFFSET",
    "NUMBER(VA_BITS)",
    "NUMBER(TCR_EL1_T1SZ)",
    "NUMBER(kimage_voffset)",
    "NUMBER(PHYS_OFFSET)",
    "NUMBER(KERNELPACMASK)",
    "SYMBOL(_stext)",
    "SYMBOL(prb)",
];

/// Who panicked, from the panic record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The message after [`PANIC_PREFIX`].
    pub message: String,
    /// The panicking task's PID (task context).
    pub pid: Option<u32>,
    /// The panicking CPU's number (outside task context).
    pub cpu: Option<u32>,
    /// The index of the crashing CPU's `NT_PRSTATUS` note, if one matches.
    pub note: Option<usize>,
}

/// Everything `kexec vmcore info` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `OSRELEASE`.
    pub release: Option<String>,
    /// `PAGESIZE`.
    pub page_size: Option<u64>,
    /// `CRASHTIME`, seconds since the epoch.
    pub crash_time: Option<i64>,
    /// Each `NT_PRSTATUS` note's (PID, PC).
    pub cpus: Vec<(i32, u64)>,
    /// The panic, if the log has one.
    pub panic: Option<Panic>,
    /// Why the log could not be read, if it could not.
    pub log_error: Option<String>,
    /// Records in the log.
    pub log_records: usize,
    /// The `PT_LOAD`s.
    pub loads: Vec<Load>,
    /// [`HIGHLIGHTS`] present in VMCOREINFO, as (key, value).
    pub highlights: Vec<(String, String)>,
    /// Program headers in the file.
    pub phnum: u16,
}

/// Who panicked, from the panic record `r` (see the module's documentation).
pub fn panic_of(r: &Record, vmcore: &Vmcore) -> Panic {
    let text = r
        .text
        .strip_prefix(PANIC_PREFIX.as_bytes())
        .unwrap_or(&r.text);
    let message = String::from_utf8_lossy(text).into_owned();
    if r.caller_id & CALLER_CPU_FLAG != 0 {
        return Panic {
            message,
            pid: None,
            cpu: Some(r.caller_id & !CALLER_CPU_FLAG),
            note: None,
        };
    }
    let mut matching = (vmcore.prstatus.iter().enumerate())
        .filter(|(_, p)| p.pid.cast_unsigned() == r.caller_id)
        .map(|(i, _)| i);
    let note = match (matching.next(), matching.next()) {
        (Some(i), None) => Some(i),
        _ => None,
    };
    Panic {
        message,
        pid: Some(r.caller_id),
        cpu: None,
        note,
    }
}

/// Reads the log: how many records, and the last panic record.
fn scan_log<R: ReadAt + ?Sized>(
    vmcore: &Vmcore,
    src: &R,
) -> Result<(usize, Option<Record>), Error> {
    let ring = Ring::locate(vmcore, src)?;
    let mut count = 0;
    let mut last_panic = None;
    for r in ring.records(vmcore, src) {
        let r = r?;
        count += 1;
        if r.text.starts_with(PANIC_PREFIX.as_bytes()) {
            last_panic = Some(r);
        }
    }
    Ok((count, last_panic))
}

/// Reads what `kexec vmcore info` shows. Only a broken log is tolerated
/// (reported in [`Summary::log_error`]): the headers were checked by
/// [`Vmcore::parse`].
pub fn summarize<R: ReadAt + ?Sized>(vmcore: &Vmcore, src: &R) -> Summary {
    let info = vmcore.vmcoreinfo.as_ref();
    let (panic, log_error, log_records) = match scan_log(vmcore, src) {
        Ok((count, last)) => (last.map(|r| panic_of(&r, vmcore)), None, count),
        Err(e) => (None, Some(e.to_string()), 0),
    };
    Summary {
        release: info.and_then(|i| i.release()).map(str::to_owned),
        page_size: info.and_then(|i| i.page_size()),
        crash_time: info.and_then(|i| i.crash_time()),
        cpus: vmcore.prstatus.iter().map(|p| (p.pid, p.pc())).collect(),
        panic,
        log_error,
        log_records,
        loads: vmcore.loads.clone(),
        highlights: HIGHLIGHTS
            .iter()
            .filter_map(|k| Some(((*k).to_owned(), info?.get(k)?.to_owned())))
            .collect(),
        phnum: vmcore.phnum,
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic
/// Gregorian calendar; the civil-from-days conversion of H. Hinnant's
/// "chrono-Compatible Low-Level Date Algorithms").
pub fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
