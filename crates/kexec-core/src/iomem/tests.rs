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

// kernel/resource.c `r_show` prints each resource as
// `"%*s%0*llx-%0*llx : %s\n"`: two spaces per nesting level, then START and
// END (inclusive) in lower-case hex, zero-padded to at least 8 digits for
// iomem (wider addresses print all their digits), then the name. The inputs
// below follow that format.

#[test]
fn memory_range_size_and_emptiness_at_the_edges() {
    assert_eq!(
        MemoryRange::with_size(0x4000_0000, 0x1000),
        MemoryRange::new(0x4000_0000, 0x4000_1000)
    );
    // A size that would pass the end of the address space stops at u64::MAX.
    assert_eq!(
        MemoryRange::with_size(u64::MAX - 0xfff, 0x2000),
        MemoryRange::new(u64::MAX - 0xfff, u64::MAX)
    );
    assert_eq!(MemoryRange::new(0x1000, 0x3000).size(), 0x2000);
    assert_eq!(MemoryRange::new(0x3000, 0x1000).size(), 0);
    assert!(MemoryRange::new(0x1000, 0x1000).is_empty());
    assert!(MemoryRange::new(0x1001, 0x1000).is_empty());
    assert!(!MemoryRange::new(0x1000, 0x1001).is_empty());
}

#[test]
fn contains_range_at_the_edges() {
    let r = MemoryRange::new(0x1000, 0x2000);
    assert!(r.contains_range(&r));
    assert!(r.contains_range(&MemoryRange::new(0x1000, 0x1001)));
    assert!(r.contains_range(&MemoryRange::new(0x1fff, 0x2000)));
    // One byte out on either side.
    assert!(!r.contains_range(&MemoryRange::new(0x0fff, 0x1001)));
    assert!(!r.contains_range(&MemoryRange::new(0x1fff, 0x2001)));
}

#[test]
fn overlaps_needs_a_shared_byte() {
    let r = MemoryRange::new(0x1000, 0x2000);
    let touching_below = MemoryRange::new(0, 0x1000);
    let touching_above = MemoryRange::new(0x2000, 0x3000);
    let last_byte = MemoryRange::new(0x1fff, 0x3000);
    let first_byte = MemoryRange::new(0, 0x1001);
    for (other, shared) in [
        (touching_below, false),
        (touching_above, false),
        (last_byte, true),
        (first_byte, true),
        (r, true),
    ] {
        assert_eq!(r.overlaps(&other), shared, "{other}");
        assert_eq!(other.overlaps(&r), shared, "{other}");
    }
}

#[test]
fn display_shows_the_inclusive_end_like_proc_iomem() {
    assert_eq!(
        MemoryRange::new(0x4000_0000, 0x8000_0000).to_string(),
        "0x40000000-0x7fffffff"
    );
    assert_eq!(
        MemoryRange::new(0x1_0000_0000, 0x2_4000_0000).to_string(),
        "0x100000000-0x23fffffff"
    );
}

#[test]
fn all_is_depth_first_in_file_order() {
    let map = parse(QEMU_1G).unwrap();
    let names: Vec<&str> = map.all().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pl011@9000000",
            "pl011@9000000",
            "System RAM",
            "Kernel code",
            "reserved",
            "Kernel data",
            "Crash kernel",
            "reserved",
        ]
    );
}

#[test]
fn addresses_wider_than_eight_digits() {
    // RAM above 4 GiB prints with more than the minimum 8 digits.
    let map = parse("80000000-ffffffff : System RAM\n880000000-8ffffffff : System RAM\n").unwrap();
    assert_eq!(
        map.system_ram(),
        vec![
            MemoryRange::new(0x8000_0000, 0x1_0000_0000),
            MemoryRange::new(0x8_8000_0000, 0x9_0000_0000),
        ]
    );
}

#[test]
fn range_ending_at_u64_max_loses_only_its_last_byte() {
    // A half-open u64 range cannot end past u64::MAX: a resource whose
    // inclusive end is u64::MAX covers [start, u64::MAX), one byte short.
    // Real arm64 RAM ends far below (at most 52-bit physical addresses).
    let text = "ffffffffffff0000-ffffffffffffffff : System RAM\n  ffffffffffff0000-ffffffffffff0fff : reserved\n";
    let map = parse(text).unwrap();
    assert_eq!(map.resources[0].end, u64::MAX);
    assert_eq!(
        map.resources[0].range(),
        MemoryRange::new(0xffff_ffff_ffff_0000, u64::MAX)
    );
    assert_eq!(
        map.usable_ram(),
        vec![MemoryRange::new(0xffff_ffff_ffff_1000, u64::MAX)]
    );
}

#[test]
fn single_byte_resource_is_accepted() {
    // START == END is a one-byte resource, not a reversed range.
    let map = parse("40000000-7fffffff : System RAM\n  7fffffff-7fffffff : reserved\n").unwrap();
    assert_eq!(map.resources[0].children[0].range().size(), 1);
    assert_eq!(
        map.usable_ram(),
        vec![MemoryRange::new(0x4000_0000, 0x7fff_ffff)]
    );
}

#[test]
fn ram_at_address_zero_is_not_taken_for_hidden_addresses() {
    // Boards such as the Raspberry Pi 4 have System RAM from address 0; only
    // a file whose every START and END is zero was read unprivileged.
    let map = parse("00000000-3b3fffff : System RAM\n").unwrap();
    assert_eq!(map.system_ram(), vec![MemoryRange::new(0, 0x3b40_0000)]);
    assert_eq!(
        parse("\n00000000-00000000 : System RAM\n\n"),
        Err(Error::AddressesHidden)
    );
}

#[test]
fn child_must_lie_inside_its_parent_to_the_byte() {
    let ram = "40000000-7fffffff : System RAM\n";
    // Exactly the parent's range, and touching either end: accepted.
    for child in [
        "  40000000-7fffffff : reserved\n",
        "  40000000-40000fff : reserved\n",
        "  7ffff000-7fffffff : reserved\n",
    ] {
        assert!(parse(&format!("{ram}{child}")).is_ok(), "{child}");
    }
    let outside = |start, end| Error::ChildOutsideParent {
        line: 2,
        start,
        end,
        parent_start: 0x4000_0000,
        parent_end: 0x7fff_ffff,
    };
    assert_eq!(
        parse(&format!("{ram}  3fffffff-40000fff : reserved\n")),
        Err(outside(0x3fff_ffff, 0x4000_0fff))
    );
    assert_eq!(
        parse(&format!("{ram}  7ffff000-80000000 : reserved\n")),
        Err(outside(0x7fff_f000, 0x8000_0000))
    );
}

#[test]
fn grandchild_is_checked_against_its_own_parent() {
    let text = "\
40000000-7fffffff : System RAM
  40000000-4fffffff : Kernel data
    4ffff000-50000fff : reserved
";
    assert_eq!(
        parse(text),
        Err(Error::ChildOutsideParent {
            line: 3,
            start: 0x4fff_f000,
            end: 0x5000_0fff,
            parent_start: 0x4000_0000,
            parent_end: 0x4fff_ffff,
        })
    );
}

#[test]
fn fields_that_are_not_plain_hex_are_refused() {
    let bad = |line: &str, field: &str| {
        assert_eq!(
            parse(line),
            Err(Error::BadHex {
                line: 1,
                text: field.into()
            }),
            "{line}"
        );
    };
    // u64::from_str_radix alone would take a leading '+'.
    bad("+40000000-7fffffff : System RAM", "+40000000");
    bad("40000000-+7fffffff : System RAM", "+7fffffff");
    bad("-7fffffff : System RAM", "");
    bad("40000000- : System RAM", "");
    bad("0x40000000-7fffffff : System RAM", "0x40000000");
}

#[test]
fn lines_without_the_separators_are_malformed() {
    let malformed = |line, text: &str| Error::Malformed {
        line,
        text: text.into(),
    };
    assert_eq!(
        parse("40000000 : System RAM\n"),
        Err(malformed(1, "40000000 : System RAM"))
    );
    // Blank lines count in the line number.
    assert_eq!(
        parse("\n\n40000000-7fffffff: System RAM\n"),
        Err(malformed(3, "40000000-7fffffff: System RAM"))
    );
    assert_eq!(
        parse("40000000-7fffffff : System RAM\n  40000000-4000ffff\n"),
        Err(malformed(2, "  40000000-4000ffff"))
    );
}

#[test]
fn name_is_everything_after_the_first_separator() {
    let map = parse("40000000-7fffffff : System RAM\n  40000000-4000ffff : a : b  \n").unwrap();
    assert_eq!(map.resources[0].children[0].name, "a : b");
}

#[test]
fn exactly_max_lines_are_accepted() {
    // Blank lines count towards the limit too.
    let mut text = String::from("40000000-7fffffff : System RAM\n");
    text.push_str(&"\n".repeat(MAX_LINES - 1));
    assert_eq!(text.lines().count(), MAX_LINES);
    assert!(parse(&text).is_ok());
    text.push('\n');
    assert_eq!(parse(&text), Err(Error::TooManyLines { limit: MAX_LINES }));
}

#[test]
fn tree_returns_from_deep_nesting_to_the_top() {
    let text = "\
40000000-5fffffff : System RAM
  40000000-4fffffff : a
    40000000-40ffffff : b
      40000000-400fffff : reserved
60000000-7fffffff : System RAM
  60000000-6000ffff : reserved
  60010000-6001ffff : c
";
    let map = parse(text).unwrap();
    let ram = &map.resources;
    assert_eq!(ram.len(), 2);
    assert_eq!(ram[0].children.len(), 1);
    assert_eq!(ram[0].children[0].children[0].children[0].name, "reserved");
    let names: Vec<&str> = ram[1].children.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["reserved", "c"]);
    assert_eq!(
        map.usable_ram(),
        vec![
            MemoryRange::new(0x4010_0000, 0x6000_0000),
            MemoryRange::new(0x6001_0000, 0x8000_0000),
        ]
    );
}

#[test]
fn reserved_children_split_system_ram_without_empty_pieces() {
    // Holes at the very start, back to back, and at the very end of RAM.
    let text = "\
40000000-7fffffff : System RAM
  40000000-400fffff : reserved
  40100000-401fffff : reserved
  50000000-5fffffff : Kernel code
  7ff00000-7fffffff : reserved
";
    assert_eq!(
        parse(text).unwrap().usable_ram(),
        vec![MemoryRange::new(0x4020_0000, 0x7ff0_0000)]
    );
}

#[test]
fn adjacent_system_ram_lines_stay_separate() {
    let text = "40000000-5fffffff : System RAM\n60000000-7fffffff : System RAM\n";
    assert_eq!(
        parse(text).unwrap().usable_ram(),
        vec![
            MemoryRange::new(0x4000_0000, 0x6000_0000),
            MemoryRange::new(0x6000_0000, 0x8000_0000),
        ]
    );
}

#[test]
fn subtract_handles_overlapping_and_unsorted_holes() {
    let r = |s, e| MemoryRange::new(s, e);
    assert_eq!(
        subtract(
            &[r(0, 100), r(200, 300)],
            &[r(40, 60), r(20, 30), r(10, 50), r(250, 400)]
        ),
        vec![r(0, 10), r(60, 100), r(200, 250)]
    );
    assert_eq!(subtract(&[r(0, 100)], &[r(0, 100)]), vec![]);
    assert_eq!(subtract(&[r(0, 100)], &[]), vec![r(0, 100)]);
}

#[test]
fn crashkernel_high_and_low_are_both_holes_and_the_high_one_is_loaded_into() {
    // `crashkernel=X,high` reserves a range above 4 GiB for the crash
    // kernel and a small one below for its DMA
    // (Documentation/admin-guide/kernel-parameters.txt).
    let text = "\
40000000-fbffffff : System RAM
  40210000-4149ffff : Kernel code
  f0000000-f7ffffff : Crash kernel
100000000-23fffffff : System RAM
  220000000-23fffffff : Crash kernel
";
    let map = parse(text).unwrap();
    assert_eq!(
        map.crash_regions(),
        vec![
            MemoryRange::new(0xf000_0000, 0xf800_0000),
            MemoryRange::new(0x2_2000_0000, 0x2_4000_0000),
        ]
    );
    assert_eq!(
        map.crash_kernel(),
        Some(MemoryRange::new(0x2_2000_0000, 0x2_4000_0000))
    );
    assert_eq!(
        map.usable_ram(),
        vec![
            MemoryRange::new(0x4000_0000, 0xf000_0000),
            MemoryRange::new(0xf800_0000, 0xfc00_0000),
            MemoryRange::new(0x1_0000_0000, 0x2_2000_0000),
        ]
    );
}

#[test]
fn no_crash_kernel_without_the_reservation() {
    let map = parse("40000000-7fffffff : System RAM\n").unwrap();
    assert_eq!(map.crash_regions(), vec![]);
    assert_eq!(map.crash_kernel(), None);
}

#[test]
fn only_top_level_system_ram_counts() {
    // A "System RAM" nested in another resource is not a RAM bank, and a
    // file whose only System RAM is nested has none.
    let text = "40000000-7fffffff : System RAM\n  40000000-4fffffff : System RAM\n";
    assert_eq!(
        parse(text).unwrap().system_ram(),
        vec![MemoryRange::new(0x4000_0000, 0x8000_0000)]
    );
    assert_eq!(
        parse("40000000-7fffffff : PCI\n  40000000-4fffffff : System RAM\n"),
        Err(Error::NoSystemRam)
    );
}

/// totalram_pages estimate: System RAM minus reserved, Crash kernel and the
/// kernel image (Kernel code start to Kernel data end, the reserved range
/// between them counted once).
#[test]
fn total_ram_leaves_out_every_reservation_and_the_kernel_image() {
    let map = parse(
        "40000000-7fffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
         41860000-41eaffff : reserved\n  41eb0000-4220ffff : Kernel data\n  \
         48000000-480fffff : reserved\n  6ac00000-7abfffff : Crash kernel\n\
         100000000-13fffffff : System RAM\n  13ff00000-13fffffff : reserved\n",
    )
    .unwrap();
    let kernel = 0x4221_0000 - 0x4021_0000;
    let expected = 0x4000_0000 - kernel - 0x10_0000 - 0x1000_0000 + 0x4000_0000 - 0x10_0000;
    assert_eq!(map.total_ram(), expected);
    // Without Kernel code/Kernel data lines only the reservations go.
    let map = parse("40000000-7fffffff : System RAM\n  40000000-4000ffff : reserved\n").unwrap();
    assert_eq!(map.total_ram(), 0x4000_0000 - 0x1_0000);
}

/// The running kernel: Kernel code start to Kernel data end, and nothing
/// without both lines.
#[test]
fn running_kernel_spans_code_to_data() {
    let map = parse(
        "40000000-bfffffff : System RAM\n  40210000-4185ffff : Kernel code\n  \
         41860000-41eaffff : reserved\n  41eb0000-4220ffff : Kernel data\n",
    )
    .unwrap();
    assert_eq!(
        map.running_kernel(),
        Some(MemoryRange::new(0x4021_0000, 0x4221_0000))
    );
    let map = parse("40000000-bfffffff : System RAM\n  40210000-4185ffff : Kernel code\n").unwrap();
    assert_eq!(map.running_kernel(), None);
}
