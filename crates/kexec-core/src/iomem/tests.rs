//! Unit tests of the `/proc/iomem` parser.

use super::*;

const QEMU_1G: &str = "\
09000000-09000fff : pl011@9000000
  09000000-09000fff : pl011@9000000
40000000-7fffffff : System RAM
  40210000-4149ffff : Kernel code
  414a0000-4172ffff : reserved
  41730000-41bcffff : Kernel data
  7f000000-7f0fffff : Crash kernel
  7fa00000-7fffffff : reserved
";

#[test]
fn parses_tree() {
    let map = parse(QEMU_1G).unwrap();
    assert_eq!(map.resources.len(), 2);
    assert_eq!(map.resources[1].children.len(), 5);
    assert_eq!(map.resources[1].children[0].name, "Kernel code");
    assert_eq!(
        map.system_ram(),
        vec![MemoryRange::new(0x4000_0000, 0x8000_0000)]
    );
    assert_eq!(
        map.crash_kernel(),
        Some(MemoryRange::new(0x7f00_0000, 0x7f10_0000))
    );
}

#[test]
fn usable_ram_excludes_reserved_and_crash_but_keeps_kernel() {
    let map = parse(QEMU_1G).unwrap();
    assert_eq!(
        map.usable_ram(),
        vec![
            MemoryRange::new(0x4000_0000, 0x414a_0000),
            MemoryRange::new(0x4173_0000, 0x7f00_0000),
            MemoryRange::new(0x7f10_0000, 0x7fa0_0000),
        ]
    );
}

#[test]
fn start_after_end() {
    assert_eq!(
        parse("40000000-3fffffff : System RAM\n"),
        Err(Error::StartAfterEnd {
            line: 1,
            start: 0x4000_0000,
            end: 0x3fff_ffff
        })
    );
}

#[test]
fn bad_hex() {
    assert_eq!(
        parse("4000g000-7fffffff : System RAM\n"),
        Err(Error::BadHex {
            line: 1,
            text: "4000g000".into()
        })
    );
    assert_eq!(
        parse("40000000-1ffffffffffffffff : System RAM\n"),
        Err(Error::BadHex {
            line: 1,
            text: "1ffffffffffffffff".into()
        })
    );
}

#[test]
fn malformed_line() {
    assert_eq!(
        parse("40000000-7fffffff System RAM\n"),
        Err(Error::Malformed {
            line: 1,
            text: "40000000-7fffffff System RAM".into()
        })
    );
}

#[test]
fn bad_nesting() {
    assert_eq!(
        parse("40000000-7fffffff : System RAM\n    40000000-4000ffff : reserved\n"),
        Err(Error::BadNesting { line: 2, indent: 4 })
    );
    assert_eq!(
        parse("40000000-7fffffff : System RAM\n 40000000-4000ffff : reserved\n"),
        Err(Error::BadNesting { line: 2, indent: 1 })
    );
    assert_eq!(
        parse("40000000-7fffffff : System RAM\n  80000000-8000ffff : reserved\n"),
        Err(Error::ChildOutsideParent {
            line: 2,
            start: 0x8000_0000,
            end: 0x8000_ffff,
            parent_start: 0x4000_0000,
            parent_end: 0x7fff_ffff
        })
    );
}

#[test]
fn thousands_of_lines_parse_but_too_many_are_refused() {
    let mut text = String::from("40000000-7fffffff : System RAM\n");
    for i in 0..5000u64 {
        text.push_str(&format!(
            "  {:08x}-{:08x} : reserved\n",
            0x4000_0000 + i * 0x1000,
            0x4000_0fff + i * 0x1000
        ));
    }
    let map = parse(&text).unwrap();
    assert_eq!(map.resources[0].children.len(), 5000);
    let huge = "40000000-7fffffff : System RAM\n".repeat(MAX_LINES + 1);
    assert_eq!(parse(&huge), Err(Error::TooManyLines { limit: MAX_LINES }));
}

#[test]
fn zeroed_addresses() {
    let text = "00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n";
    assert_eq!(parse(text), Err(Error::AddressesHidden));
}

#[test]
fn no_system_ram() {
    assert_eq!(
        parse("09000000-09000fff : pl011@9000000\n"),
        Err(Error::NoSystemRam)
    );
    assert_eq!(parse(""), Err(Error::NoSystemRam));
}

#[test]
fn deep_nesting_is_rebuilt() {
    let text = "40000000-7fffffff : System RAM\n  40000000-4fffffff : a\n    40000000-40ffffff : reserved\n  50000000-5fffffff : b\n";
    let map = parse(text).unwrap();
    assert_eq!(map.resources[0].children.len(), 2);
    assert_eq!(map.resources[0].children[0].children[0].name, "reserved");
    assert_eq!(
        map.usable_ram()[0],
        MemoryRange::new(0x4100_0000, 0x8000_0000)
    );
}
