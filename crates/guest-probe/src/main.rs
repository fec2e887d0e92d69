//! `kxt-probe`: a static helper the end-to-end tests put in every guest.
//!
//! `kxt-probe initrd-sha256` prints the SHA-256 of the initrd the running
//! kernel was given, read back from memory: the physical range comes from the
//! device tree (`/proc/device-tree/chosen/linux,initrd-start` and `-end`,
//! Documentation/devicetree/bindings/chosen.txt) and the bytes from
//! `/proc/kcore`, whose ELF program headers map physical RAM to file offsets.
//! On an ACPI machine the kernel never unflattens its device tree (arm64
//! `setup_arch` calls `unflatten_device_tree` only when ACPI is disabled), so
//! there is no `/proc/device-tree`: the range is then read from the blob the
//! kernel booted with, `/sys/firmware/fdt` (drivers/of/fdt.c
//! `of_fdt_raw_init`), which is where it read it from
//! (`early_init_dt_check_for_initrd`). A wrong range cannot pass: the bytes
//! must hash to the host file's digest.
//! The kernel must keep the initrd (`retain_initrd` on its command line);
//! Debian's 6.1 kernels have no `/sys/firmware/initrd`.
//!
//! `kxt-probe vmcore-read` reads all of `/proc/vmcore` through mappings
//! (`kexec_sys::mapped`: `read(2)` maps one page at a time, ~8 MB/s under
//! TCG) and prints `bytes=N ms=T`.
//!
//! `kxt-probe sha256 FILE…` hashes files one after the other (the `sha2`
//! crate, with the ARMv8 SHA2 instructions when the CPU has them): the
//! benchmark's floor for verifying the same bytes.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::process::ExitCode;

use object::elf::{FileHeader64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian;
use sha2::{Digest, Sha256};

const CHOSEN: &str = "/proc/device-tree/chosen";
const RAW_FDT: &str = "/sys/firmware/fdt";
const KCORE: &str = "/proc/kcore";
/// Enough of /proc/kcore for its ELF header and every program header.
const KCORE_HEADERS: u64 = 1 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("initrd-sha256") => initrd_sha256(),
        Some("sha256") => sha256_files(&args[2..]),
        Some("vmcore-read") => vmcore_read(),
        _ => Err(
            "usage: kxt-probe initrd-sha256 | kxt-probe vmcore-read | kxt-probe sha256 FILE…"
                .to_owned(),
        ),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kxt-probe: {err}");
            ExitCode::FAILURE
        }
    }
}

/// A device-tree property holding one address (one or two big-endian cells).
fn read_address_property(name: &str) -> Result<u64, String> {
    let path = format!("{CHOSEN}/{name}");
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    match bytes.len() {
        4 => Ok(u64::from(u32::from_be_bytes(
            bytes[..4].try_into().unwrap_or_default(),
        ))),
        8 => Ok(u64::from_be_bytes(
            bytes[..8].try_into().unwrap_or_default(),
        )),
        n => Err(format!("{path}: {n} bytes, expected 4 or 8")),
    }
}

/// The /proc/kcore file offset of a physical address range.
fn kcore_offset(headers: &[u8], phys: u64, len: u64) -> Result<u64, String> {
    let header =
        FileHeader64::<LittleEndian>::parse(headers).map_err(|e| format!("{KCORE}: {e}"))?;
    let endian = header.endian().map_err(|e| format!("{KCORE}: {e}"))?;
    let segments = header
        .program_headers(endian, headers)
        .map_err(|e| format!("{KCORE}: {e}"))?;
    segments
        .iter()
        .filter(|ph| ph.p_type(endian) == PT_LOAD)
        .find_map(|ph| {
            let start = ph.p_paddr(endian);
            let size = ph.p_memsz(endian);
            let inside = phys >= start && phys.checked_add(len)? <= start.checked_add(size)?;
            inside.then(|| ph.p_offset(endian) + (phys - start))
        })
        .ok_or_else(|| format!("{KCORE}: no segment maps physical {phys:#x}+{len:#x}"))
}

/// The initrd's physical range `[start, end)`, from the unflattened tree or,
/// where there is none (ACPI), from the raw blob.
fn initrd_range() -> Result<(u64, u64), String> {
    if std::path::Path::new(CHOSEN).is_dir() {
        let start = read_address_property("linux,initrd-start")?;
        return Ok((start, read_address_property("linux,initrd-end")?));
    }
    let dtb = std::fs::read(RAW_FDT).map_err(|e| format!("no {CHOSEN}, and {RAW_FDT}: {e}"))?;
    match kexec_core::fdt::chosen_initrd(&dtb) {
        Ok(Some(range)) => Ok((range.start, range.end)),
        Ok(None) => Err(format!("{RAW_FDT}: no linux,initrd-start/-end in /chosen")),
        Err(e) => Err(format!("{RAW_FDT}: {e}")),
    }
}

fn initrd_sha256() -> Result<String, String> {
    let (start, end) = initrd_range()?;
    let len = end.checked_sub(start).ok_or("initrd end before start")?;
    let mut kcore = File::open(KCORE).map_err(|e| format!("{KCORE}: {e}"))?;
    let mut headers = Vec::new();
    (&mut kcore)
        .take(KCORE_HEADERS)
        .read_to_end(&mut headers)
        .map_err(|e| format!("{KCORE}: {e}"))?;
    let offset = kcore_offset(&headers, start, len)?;
    kcore
        .seek(SeekFrom::Start(offset))
        .map_err(|e| format!("{KCORE}: {e}"))?;
    let mut hasher = Sha256::new();
    let copied =
        std::io::copy(&mut kcore.take(len), &mut hasher).map_err(|e| format!("{KCORE}: {e}"))?;
    if copied != len {
        return Err(format!("{KCORE}: read {copied} of {len} initrd bytes"));
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn sha256_files(files: &[String]) -> Result<String, String> {
    let mut out = Vec::new();
    for file in files {
        let mut f = File::open(file).map_err(|e| format!("{file}: {e}"))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut f, &mut hasher).map_err(|e| format!("{file}: {e}"))?;
        out.push(format!("{:x}  {file}", hasher.finalize()));
    }
    Ok(out.join("\n"))
}

/// Reads all of /proc/vmcore, 64 MiB per mapping.
fn vmcore_read() -> Result<String, String> {
    let started = std::time::Instant::now();
    let mut nonzero = 0u64;
    let bytes = kexec_sys::mapped::read_vmcore_mapped(64 << 20, |b| {
        nonzero += b.iter().filter(|&&x| x != 0).count() as u64;
    })
    .map_err(|e| format!("{}: {e}", kexec_sys::mapped::VMCORE))?;
    Ok(format!(
        "bytes={bytes} nonzero={nonzero} ms={}",
        started.elapsed().as_millis()
    ))
}
