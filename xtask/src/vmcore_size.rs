//! The size checks of a kdump scenario (tests/e2e.rs): the crash kernel read
//! all of `/proc/vmcore`, the file has the size its own ELF header gives, and
//! its PT_LOADs cover what kernel A's `/proc/iomem` says they must. Pure
//! functions of the guest's markers, so each check is unit-tested here.

/// `key=value` fields of a marker, as numbers (`err=` and the like skipped).
fn fields(marker: &str) -> std::collections::BTreeMap<&str, u64> {
    marker
        .split_whitespace()
        .filter_map(|f| {
            let (k, v) = f.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect()
}

/// The whole dump was read and has the size its header gives:
/// * `read` (`rc=… bytes=…`): reading all of /proc/vmcore succeeded and
///   returned `size` bytes (its `stat` size);
/// * `header` (`phnum=… loads=… notes=… page=…`, read back from
///   /proc/vmcore's own ELF header): fs/proc/vmcore.c makes the file the ELF
///   header and program headers rounded up to a page, then the merged notes
///   rounded up to a page, then every PT_LOAD (ours are page aligned:
///   `get_vmcore_size`, `merge_note_headers_elf64`,
///   `process_ptload_program_headers_elf64`); one program header is the
///   merged PT_NOTE, the others the PT_LOADs our loader wrote;
/// * those PT_LOADs add up to `expected_loads`, what kernel A's memory map
///   says the loader's header describes.
pub fn check_vmcore(
    size: u64,
    read: &str,
    header: &str,
    expected_loads: u64,
) -> Result<(), String> {
    let (read_fields, header_fields) = (fields(read), fields(header));
    let get = |m: &std::collections::BTreeMap<&str, u64>, k: &str, marker: &str| {
        m.get(k)
            .copied()
            .ok_or_else(|| format!("no {k}= in the marker {marker:?}"))
    };
    let (rc, bytes) = (
        get(&read_fields, "rc", read)?,
        get(&read_fields, "bytes", read)?,
    );
    if rc != 0 || bytes != size {
        return Err(format!(
            "reading /proc/vmcore: {read}; its size is {size} bytes"
        ));
    }
    let phnum = get(&header_fields, "phnum", header)?;
    let loads = get(&header_fields, "loads", header)?;
    let notes = get(&header_fields, "notes", header)?;
    let page = get(&header_fields, "page", header)?;
    let headers = (64 + 56 * phnum).next_multiple_of(page);
    let computed = headers + notes.next_multiple_of(page) + loads;
    if computed != size {
        return Err(format!(
            "/proc/vmcore is {size} bytes; its header ({header}) gives {headers} + notes + loads = {computed}"
        ));
    }
    if loads != expected_loads {
        return Err(format!(
            "/proc/vmcore's PT_LOADs add up to {loads:#x} bytes; kernel A's memory map gives {expected_loads:#x}"
        ));
    }
    Ok(())
}

/// The `name` ranges `[start, end)` of the `;`-separated /proc/iomem lines
/// of a guest's `iomem` marker.
pub fn ranges(iomem: &str, name: &str) -> Vec<(u64, u64)> {
    iomem
        .split(';')
        .filter(|l| l.ends_with(&format!(" : {name}")))
        .map(|l| {
            let (start, end) = l.split_once(' ').unwrap().0.split_once('-').unwrap();
            let parse = |h: &str| u64::from_str_radix(h, 16).unwrap();
            (parse(start), parse(end) + 1)
        })
        .collect()
}

/// The bytes of the PT_LOADs a crash dump of this memory map must have:
/// every `System RAM` range minus the `Crash kernel` ranges, plus the kernel
/// image (`Kernel code` start to `Kernel data` end, page aligned), from the
/// `;`-separated /proc/iomem lines of the guest's `iomem` marker.
pub fn vmcore_loads(iomem: &str) -> u64 {
    let sum = |r: &[(u64, u64)]| r.iter().map(|(s, e)| e - s).sum::<u64>();
    let (ram, crash) = (ranges(iomem, "System RAM"), ranges(iomem, "Crash kernel"));
    let (code, data) = (ranges(iomem, "Kernel code"), ranges(iomem, "Kernel data"));
    assert!(
        !ram.is_empty() && !crash.is_empty(),
        "iomem marker: {iomem}"
    );
    let image = data[0].1.next_multiple_of(0x1000) - code[0].0 / 0x1000 * 0x1000;
    sum(&ram) - sum(&crash) + image
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmcore_checks_read_size_header_and_loads() {
        let loads = 0x3000_0000 + 0x180_0000;
        let size = 0x1000 + 0x1000 + loads;
        let header = format!("phnum=4 loads={loads} notes=1300 page=4096");
        let read = format!("rc=0 bytes={size} err=");
        assert_eq!(check_vmcore(size, &read, &header, loads), Ok(()));
        // A read that failed, or stopped short.
        let bad = format!("rc=1 bytes={} err=dd: /proc/vmcore: I/O error", size - 4096);
        assert!(check_vmcore(size, &bad, &header, loads)
            .unwrap_err()
            .starts_with("reading /proc/vmcore"));
        let short = format!("rc=0 bytes={}", size - 1);
        assert!(check_vmcore(size, &short, &header, loads).is_err());
        // A size the header does not explain, or PT_LOADs kernel A's map does not.
        let read_more = format!("rc=0 bytes={}", size + 4096);
        assert!(check_vmcore(size + 4096, &read_more, &header, loads)
            .unwrap_err()
            .contains("its header"));
        assert!(check_vmcore(size, &read, &header, loads - 4096)
            .unwrap_err()
            .contains("kernel A's memory map"));
        // 64 KiB pages round the headers and notes to 64 KiB each.
        let header64 = format!("phnum=4 loads={loads} notes=1300 page=65536");
        let size64 = 0x2_0000 + loads;
        let read64 = format!("rc=0 bytes={size64}");
        assert_eq!(check_vmcore(size64, &read64, &header64, loads), Ok(()));
    }

    #[test]
    fn vmcore_loads_from_the_iomem_marker() {
        let iomem = "40000000-7fffffff : System RAM;40210000-4185ffff : Kernel code;\
                     41860000-41a0ffff : Kernel data;6f600000-7f5fffff : Crash kernel;";
        // 1 GiB of RAM - 256 MiB crash region + 24 MiB kernel image.
        assert_eq!(vmcore_loads(iomem), 0x4000_0000 - 0x1000_0000 + 0x180_0000);
        // Two reservations: both left out.
        let iomem = "40000000-13fffffff : System RAM;40210000-4185ffff : Kernel code;\
                     41860000-41a0ffff : Kernel data;fc000000-ffffffff : Crash kernel;\
                     12f000000-13effffff : Crash kernel;";
        assert_eq!(
            vmcore_loads(iomem),
            0x1_0000_0000 - 0x400_0000 - 0x1000_0000 + 0x180_0000
        );
    }
}
