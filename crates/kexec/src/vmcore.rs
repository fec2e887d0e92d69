//! `kexec vmcore info|dmesg [FILE]`: read a kdump vmcore — the crash
//! kernel's `/proc/vmcore` (the default) or an ELF dump file — through
//! `kexec_core::vmcore`, a piece at a time (the file is as large as the
//! crashed machine's RAM).
//!
//! `info` prints the kernel release, page size, crash time, CPUs and which
//! one crashed, the memory ranges and VMCOREINFO's layout numbers (`--json`:
//! the same as one JSON object, described in README.md). `dmesg` prints the
//! crashed kernel's log, oldest record first, in the format of
//! `makedumpfile --dump-dmesg` (`[%5lu.%06lu] text`; see
//! `kexec_core::vmcore::printk::Record::to_line`).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use kexec_core::vmcore::printk::Ring;
use kexec_core::vmcore::summary::{format_utc, summarize, Summary};
use kexec_core::vmcore::{self, ReadAt, Vmcore};

use crate::failure::{Failure, Output};
use crate::hints::{self, Situation};

/// The default vmcore: the crash kernel's view of the crashed one.
pub const PROC_VMCORE: &str = "/proc/vmcore";

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `info` (`--json`: as JSON).
    Info {
        /// `--json`.
        json: bool,
    },
    /// `dmesg`.
    Dmesg,
}

/// A vmcore file read with `pread`; its size taken once at open.
#[derive(Debug)]
struct VmcoreFile {
    file: File,
    size: u64,
}

impl ReadAt for VmcoreFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, offset)
    }
}

fn open(path: &Path) -> Result<VmcoreFile, Failure> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| {
        let hint =
            hints::vmcore_unopenable(path == Path::new(PROC_VMCORE), e.kind(), &Situation::live());
        Failure::system(&name, format!("cannot open: {e}"), hint)
    })?;
    let size = file
        .metadata()
        .map_err(|e| Failure::system(&name, format!("cannot stat: {e}"), "check the file"))?
        .len();
    Ok(VmcoreFile { file, size })
}

fn bad(path: &Path, e: &vmcore::Error) -> Failure {
    Failure::input(
        path.display().to_string(),
        e,
        "is this a complete kdump vmcore (ELF, from /proc/vmcore or `makedumpfile -E`)?",
    )
}

/// Carry out `kexec vmcore REPORT FILE`: print to stdout as it goes.
pub fn run(path: &Path, report: Report) -> Result<Output, Failure> {
    let src = open(path)?;
    let core = Vmcore::parse(&src).map_err(|e| bad(path, &e))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match report {
        Report::Info { json } => {
            let summary = summarize(&core, &src);
            let text = if json {
                info_json(path, &summary)
            } else {
                info_text(path, &summary)
            };
            out.write_all(text.as_bytes())
        }
        Report::Dmesg => {
            let ring = Ring::locate(&core, &src).map_err(|e| bad(path, &e))?;
            for record in ring.records(&core, &src) {
                let record = record.map_err(|e| bad(path, &e))?;
                if let Err(e) = out.write_all(record.to_line().as_bytes()) {
                    return finish_write(Err(e));
                }
            }
            Ok(())
        }
    };
    finish_write(written.and_then(|()| out.flush()))
}

/// A closed pipe (`| head`) ends the output quietly; other errors fail.
fn finish_write(result: io::Result<()>) -> Result<Output, Failure> {
    match result {
        Ok(()) => Ok(Output::success("")),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Output::success("")),
        Err(e) => Err(Failure::other("stdout", &e, hints::output_failed(e.kind()))),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// The crashing CPU, in words.
fn crashed(s: &Summary) -> String {
    match &s.panic {
        None => "unknown (no panic message in the log)".to_owned(),
        Some(p) => match (p.cpu, p.pid, p.note) {
            (Some(cpu), _, _) => format!("CPU {cpu} (panicked outside task context)"),
            (None, Some(pid), Some(note)) => {
                format!("NT_PRSTATUS note {note} (pid {pid}, the panicking task)")
            }
            (None, Some(pid), None) => {
                format!("pid {pid} panicked; no single NT_PRSTATUS note has that pid")
            }
            (None, None, None | Some(_)) => "unknown".to_owned(),
        },
    }
}

/// `kexec vmcore info` as text.
pub fn info_text(path: &Path, s: &Summary) -> String {
    let or = |v: Option<String>| v.unwrap_or_else(|| "unknown (no VMCOREINFO)".into());
    let total: u64 = s.loads.iter().map(|l| l.filesz).sum();
    let mut t = format!(
        "{}: arm64 ELF64 core, {} program headers\n",
        path.display(),
        s.phnum
    );
    t += &format!("kernel release   {}\n", or(s.release.clone()));
    t += &format!(
        "page size        {}\n",
        or(s.page_size.map(|p| p.to_string()))
    );
    let time = s.crash_time.map(|c| format!("{} ({c})", format_utc(c)));
    t += &format!(
        "crash time       {}\n",
        time.unwrap_or_else(|| "not recorded".into())
    );
    t += &format!("CPUs             {} (NT_PRSTATUS notes)\n", s.cpus.len());
    for (i, (pid, pc)) in s.cpus.iter().enumerate() {
        t += &format!("  note {i}: pid {pid}, pc {pc:#018x}\n");
    }
    t += &format!("crashed          {}\n", crashed(s));
    if let Some(p) = &s.panic {
        t += &format!("panic            {}\n", p.message);
    }
    match &s.log_error {
        Some(e) => t += &format!("log              unreadable: {e}\n"),
        None => {
            t += &format!(
                "log              {} records (`kexec vmcore dmesg`)\n",
                s.log_records
            )
        }
    }
    t += &format!(
        "memory           {} ranges, {}\n",
        s.loads.len(),
        mib(total)
    );
    for l in &s.loads {
        t += &format!(
            "  phys {:#014x}-{:#014x}  virt {:#018x}  {:>12}  file offset {:#x}\n",
            l.paddr,
            l.paddr.wrapping_add(l.memsz),
            l.vaddr,
            mib(l.memsz),
            l.offset
        );
    }
    t += "vmcoreinfo\n";
    for (k, v) in &s.highlights {
        t += &format!("  {k}={v}\n");
    }
    t
}

/// `kexec vmcore info --json`.
pub fn info_json(path: &Path, s: &Summary) -> String {
    let panic = s.panic.as_ref().map(|p| {
        serde_json::json!({
            "message": p.message,
            "pid": p.pid,
            "cpu": p.cpu,
            "note": p.note,
        })
    });
    let doc = serde_json::json!({
        "file": path.display().to_string(),
        "release": s.release,
        "page_size": s.page_size,
        "crash_time": s.crash_time,
        "crash_time_utc": s.crash_time.map(format_utc),
        "cpus": s.cpus.iter().map(|(pid, pc)| serde_json::json!({"pid": pid, "pc": pc})).collect::<Vec<_>>(),
        "panic": panic,
        "log_records": s.log_records,
        "log_error": s.log_error,
        "loads": s.loads.iter().map(|l| serde_json::json!({
            "phys": l.paddr, "virt": l.vaddr, "size": l.memsz, "file_size": l.filesz, "offset": l.offset,
        })).collect::<Vec<_>>(),
        "vmcoreinfo": serde_json::Value::Object(
            s.highlights.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect()
        ),
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kexec_core::vmcore::synth::Synth;

    fn summary() -> Summary {
        let core = Synth::default().build();
        let v = Vmcore::parse(core.as_slice()).unwrap();
        summarize(&v, core.as_slice())
    }

    #[test]
    fn info_text_names_release_time_cpus_and_panic() {
        let t = info_text(Path::new("dump"), &summary());
        for want in [
            "kernel release   6.1.0-synth-arm64",
            "page size        4096",
            "crash time       2023-11-14 22:13:20 UTC (1700000000)",
            "CPUs             2 (NT_PRSTATUS notes)",
            "crashed          NT_PRSTATUS note 1 (pid 321, the panicking task)",
            "panic            sysrq triggered crash",
            "log              3 records",
            "  NUMBER(VA_BITS)=48",
        ] {
            assert!(t.contains(want), "{want}\n{t}");
        }
    }

    #[test]
    fn info_json_is_one_object() {
        let j: serde_json::Value =
            serde_json::from_str(&info_json(Path::new("dump"), &summary())).unwrap();
        assert_eq!(j["release"], "6.1.0-synth-arm64");
        assert_eq!(j["panic"]["note"], 1);
        assert_eq!(j["cpus"].as_array().unwrap().len(), 2);
        assert_eq!(j["vmcoreinfo"]["PAGESIZE"], "4096");
        assert_eq!(j["loads"][0]["phys"], 0x4000_0000);
    }
}
