//! Printing a plan: a table for people, JSON for programs.
//!
//! The JSON schema is documented in `docs/plan-json.md`; [`SCHEMA`] names
//! its version. Change the shape only together with that document and a new
//! schema version.

use comfy_table::{presets, Table};
use kexec_core::fdt::{Handover, PropertyChange};
use kexec_core::iomem::MemoryRange;
use kexec_core::layout::human_size;
use kexec_core::plan::{LoadMode, LoadPlan, RuleCheck, Segment};
use serde::Serialize;

use crate::firmware::{Firmware, Interface, Risk};
use crate::memmap::{self, Layout};

/// Identifier and version of the JSON document.
pub const SCHEMA: &str = "kexec-rs/plan/v1";

/// Everything the dry run reports.
#[derive(Debug)]
pub struct Report<'a> {
    /// The plan.
    pub plan: &'a LoadPlan,
    /// Its rule checks.
    pub checks: Vec<RuleCheck>,
    /// Kernel file name as given.
    pub kernel_file: String,
    /// Kernel format found, e.g. "arm64 Image".
    pub kernel_format: String,
    /// The new command line, `None` when `bootargs` is kept.
    pub cmdline: Option<Vec<u8>>,
    /// Where the device tree came from.
    pub dtb_from: String,
    /// Whether `/chosen` was created.
    pub chosen_created: bool,
    /// `/chosen` changes.
    pub changes: &'a [PropertyChange],
    /// Remarks for the user.
    pub notes: Vec<String>,
    /// The plan's memory map (the text report draws it; not in the JSON).
    pub map: Layout,
    /// The running system's firmware.
    pub firmware: Firmware,
    /// How the new kernel will find the hardware, and why.
    pub interface: (Interface, &'static str),
    /// What the device tree hands over.
    pub handover: &'a Handover,
    /// What is risky about it.
    pub risks: &'a [Risk],
    /// The CPUs the purgatory may start to verify with it.
    pub psci_cpus: Option<&'a kexec_core::fdt::PsciCpus>,
}

/// Which CPUs the purgatory verifies on.
#[derive(Serialize)]
struct JsonVerification {
    /// `hvc` or `smc`; `null`: the CPU that runs the purgatory alone.
    psci: Option<&'static str>,
    /// MPIDR affinities of the CPUs it may start (it skips its own).
    secondaries: Vec<String>,
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

#[derive(Serialize)]
struct JsonRange {
    start: String,
    end: String,
}

impl From<&MemoryRange> for JsonRange {
    fn from(r: &MemoryRange) -> Self {
        Self {
            start: hex(r.start),
            end: hex(r.end),
        }
    }
}

#[derive(Serialize)]
struct JsonKernel<'a> {
    file: &'a str,
    format: &'a str,
    text_offset: String,
    image_size: u64,
    place_anywhere: bool,
    /// `null` only for a plan without a kernel segment.
    load_addr: Option<String>,
    footprint: Option<JsonRange>,
}

#[derive(Serialize)]
struct JsonSegment<'a> {
    kind: &'static str,
    source: &'a str,
    mem: String,
    end: String,
    bufsz: u64,
    memsz: u64,
    /// Bytes per chunk of `sha256_chunks`.
    chunk_size: u64,
    /// `null` with `-i`.
    sha256_chunks: Option<Vec<String>>,
}

impl<'a> From<&'a Segment> for JsonSegment<'a> {
    fn from(s: &'a Segment) -> Self {
        Self {
            kind: s.kind.name(),
            source: &s.source,
            mem: hex(s.mem),
            end: hex(s.mem.saturating_add(s.memsz)),
            bufsz: s.bufsz,
            memsz: s.memsz,
            chunk_size: kexec_core::digest::CHUNK_SIZE,
            sha256_chunks: s.digests_hex(),
        }
    }
}

#[derive(Serialize)]
struct JsonRule<'a> {
    id: &'static str,
    passed: bool,
    detail: &'a str,
    description: &'static str,
    source: &'static str,
}

#[derive(Serialize)]
struct JsonChange<'a> {
    property: &'a str,
    old: Option<&'a str>,
    new: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonChosen<'a> {
    from: &'a str,
    created: bool,
    changes: Vec<JsonChange<'a>>,
}

#[derive(Serialize)]
struct JsonFirmware {
    uefi: Option<bool>,
    acpi: Option<bool>,
    new_kernel: &'static str,
    why: &'static str,
}

#[derive(Serialize)]
struct JsonRemoved<'a> {
    property: &'a str,
    value: &'a str,
    why: &'static str,
}

#[derive(Serialize)]
struct JsonReservation {
    start: String,
    end: String,
    action: &'static str,
}

#[derive(Serialize)]
struct JsonRisk<'a> {
    id: &'static str,
    detail: &'a str,
}

#[derive(Serialize)]
struct JsonHandover<'a> {
    uefi_boot: bool,
    merged: bool,
    uefi: &'a [String],
    carried: Vec<JsonChange<'a>>,
    removed: Vec<JsonRemoved<'a>>,
    memreserve: Vec<JsonReservation>,
    risks: Vec<JsonRisk<'a>>,
}

fn json_change(c: &PropertyChange) -> JsonChange<'_> {
    JsonChange {
        property: &c.name,
        old: c.old.as_deref(),
        new: c.new.as_deref(),
    }
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    schema: &'static str,
    mode: &'static str,
    kernel: JsonKernel<'a>,
    cmdline: Option<String>,
    entry: String,
    dtb_addr: String,
    memory: Vec<JsonRange>,
    total_ram: u64,
    segments: Vec<JsonSegment<'a>>,
    rules: Vec<JsonRule<'a>>,
    valid: bool,
    chosen: JsonChosen<'a>,
    firmware: JsonFirmware,
    handover: JsonHandover<'a>,
    verification: JsonVerification,
    notes: &'a [String],
}

fn mode_name(mode: LoadMode) -> &'static str {
    match mode {
        LoadMode::Normal => "normal",
        LoadMode::Crash => "crash",
    }
}

impl Report<'_> {
    /// The JSON document, pretty-printed, with a final newline.
    pub fn to_json(&self) -> String {
        let doc = JsonPlan {
            schema: SCHEMA,
            mode: mode_name(self.plan.mode),
            kernel: JsonKernel {
                file: &self.kernel_file,
                format: &self.kernel_format,
                text_offset: hex(self.plan.kernel.text_offset),
                image_size: self.plan.kernel.image_size,
                place_anywhere: self.plan.kernel.place_anywhere,
                load_addr: self.plan.kernel_load_addr().map(hex),
                footprint: self
                    .plan
                    .kernel_load_addr()
                    .map(|load| JsonRange::from(&self.plan.kernel.footprint(load))),
            },
            // JSON strings are Unicode: bytes that are not UTF-8 show as U+FFFD.
            cmdline: self
                .cmdline
                .as_deref()
                .map(|c| String::from_utf8_lossy(c).into_owned()),
            entry: hex(self.plan.entry),
            dtb_addr: hex(self.plan.dtb_addr),
            memory: self.plan.memory.iter().map(JsonRange::from).collect(),
            total_ram: self.plan.total_ram,
            segments: self.plan.segments.iter().map(JsonSegment::from).collect(),
            rules: self
                .checks
                .iter()
                .map(|c| JsonRule {
                    id: c.rule.id(),
                    passed: c.passed,
                    detail: &c.detail,
                    description: c.rule.description(),
                    source: c.rule.source(),
                })
                .collect(),
            valid: self.checks.iter().all(|c| c.passed),
            chosen: JsonChosen {
                from: &self.dtb_from,
                created: self.chosen_created,
                changes: self.changes.iter().map(json_change).collect(),
            },
            firmware: JsonFirmware {
                uefi: self.firmware.uefi,
                acpi: self.firmware.acpi,
                new_kernel: self.interface.0.id(),
                why: self.interface.1,
            },
            handover: self.json_handover(),
            verification: JsonVerification {
                psci: self.psci_cpus.map(|c| c.method.name()),
                secondaries: self
                    .psci_cpus
                    .map(|c| c.mpidrs.iter().map(|&m| hex(m)).collect())
                    .unwrap_or_default(),
            },
            notes: &self.notes,
        };
        let mut text = serde_json::to_string_pretty(&doc)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        text
    }

    fn json_handover(&self) -> JsonHandover<'_> {
        let h = self.handover;
        JsonHandover {
            uefi_boot: h.uefi,
            merged: h.merged,
            uefi: &h.uefi_properties,
            carried: h.carried.iter().map(json_change).collect(),
            removed: h
                .removed
                .iter()
                .map(|r| JsonRemoved {
                    property: &r.name,
                    value: &r.value,
                    why: r.why,
                })
                .collect(),
            memreserve: h
                .reservations
                .iter()
                .map(|r| JsonReservation {
                    start: hex(r.range.start),
                    end: hex(r.range.end),
                    action: r.fate.id(),
                })
                .collect(),
            risks: self
                .risks
                .iter()
                .map(|r| JsonRisk {
                    id: r.id,
                    detail: &r.detail,
                })
                .collect(),
        }
    }

    /// The firmware and hand-over lines of the text report.
    fn handover_text(&self) -> String {
        let h = self.handover;
        let mut out = format!(
            "firmware: {} (running); the new kernel will use {} ({})\n",
            self.firmware.describe(),
            match self.interface.0 {
                Interface::Acpi => "ACPI",
                Interface::DeviceTree => "the device tree",
            },
            self.interface.1,
        );
        out.push_str("handover:\n");
        if h.merged {
            out.push_str(&format!(
                "  {} merged with the running tree's UEFI state, as the EFI stub would\n",
                self.dtb_from
            ));
        }
        if h.uefi_properties.is_empty() {
            out.push_str("  no linux,uefi-* properties in /chosen\n");
        } else {
            out.push_str(&format!(
                "  kept for EFI runtime services and the EFI memory map: {}\n",
                h.uefi_properties.join(", ")
            ));
        }
        for c in &h.carried {
            out.push_str(&format!(
                "  carried from the running /chosen: {}: {} -> {}\n",
                c.name,
                c.old.as_deref().unwrap_or("(absent)"),
                c.new.as_deref().unwrap_or("(removed)")
            ));
        }
        for r in &h.reservations {
            out.push_str(&format!("  memreserve {}: {}\n", r.range, r.fate.id()));
        }
        for r in &h.removed {
            out.push_str(&format!("  removed {} {}: {}\n", r.name, r.value, r.why));
        }
        for r in self.risks {
            out.push_str(&format!("risk: {}: {}\n", r.id, r.detail));
        }
        out
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let plan = self.plan;
        let mut out = String::new();
        let mode = match plan.mode {
            LoadMode::Normal => "normal load (-l)",
            LoadMode::Crash => "crash load (-p)",
        };
        out.push_str(&format!("dry run: {mode}; no system call made\n"));
        let placement = if plan.kernel.place_anywhere {
            "anywhere"
        } else {
            "near the base of DRAM"
        };
        out.push_str(&format!(
            "kernel: {} ({}), text_offset {:#x}, image_size {}, placement {placement}\n",
            self.kernel_file,
            self.kernel_format,
            plan.kernel.text_offset,
            human_size(plan.kernel.image_size),
        ));
        match &self.cmdline {
            Some(c) => match std::str::from_utf8(c) {
                Ok(text) => out.push_str(&format!("command line: {text:?}\n")),
                Err(_) => out.push_str(&format!(
                    "command line: b\"{}\" (not UTF-8, passed as is)\n",
                    c.escape_ascii()
                )),
            },
            None => out.push_str("command line: kept from the device tree's bootargs\n"),
        }
        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED);
        table.set_header(vec![
            "segment",
            "from",
            "physical range",
            "size",
            "reserved",
            "sha256 (chunks)",
        ]);
        for s in &plan.segments {
            table.add_row(vec![
                s.kind.name().to_owned(),
                s.source.clone(),
                s.range().to_string(),
                human_size(s.bufsz),
                human_size(s.memsz),
                s.digests_hex().map_or_else(
                    || "(not computed)".to_owned(),
                    |h| match h.as_slice() {
                        [] => "(empty)".to_owned(),
                        [one] => one[..16].to_owned(),
                        [first, ..] => format!("{} +{}", &first[..16], h.len() - 1),
                    },
                ),
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        let entry_in = plan
            .segments
            .iter()
            .find(|s| plan.entry >= s.mem && plan.entry - s.mem < s.memsz)
            .map_or("no segment", |s| s.kind.name());
        out.push_str(&format!("entry: {:#x} ({entry_in})\n", plan.entry));
        out.push_str(&format!(
            "dtb:   {:#x} (x0 of the new kernel)\n",
            plan.dtb_addr
        ));
        out.push_str(&memmap::to_text(&self.map));
        out.push_str("rules:\n");
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            out.push_str(&format!(
                "  {mark} {:<20} {}: {}\n",
                c.rule.id(),
                c.rule.description(),
                c.detail
            ));
        }
        out.push_str(&format!(
            "/chosen ({}){}:\n",
            self.dtb_from,
            if self.chosen_created { ", created" } else { "" }
        ));
        if self.changes.is_empty() {
            out.push_str("  (unchanged)\n");
        }
        for c in self.changes {
            out.push_str(&format!(
                "  {}: {} -> {}\n",
                c.name,
                c.old.as_deref().unwrap_or("(absent)"),
                c.new.as_deref().unwrap_or("(removed)")
            ));
        }
        out.push_str(&self.handover_text());
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}
