//! `kexec sim`: run the handoff of the plan `kexec -l` (or `-p`) would load
//! in the ARMv8 memory-system model (`cachesim`) and report, per cache
//! configuration, whether every rule of booting.rst holds at kernel entry,
//! with the cost of the maintenance.
//!
//! ```text
//! kexec sim KERNEL [--initrd F] [--append S | --reuse-cmdline] [--dtb F] [-p] [-i]
//!           [--sysroot DIR] [--config NAME|FILE[,..]|all] [--seeds N] [--full] [--json]
//! ```
//!
//! The plan is made by the loader's own code path ([`crate::pipeline::make_plan`]);
//! `cachesim` turns it into the model's input ([`cachesim::SimInput`]): the
//! purgatory parameters the model runs with (segments, kernel entry, DTB,
//! flags) are read back from the patched purgatory header, whose segment
//! table must list exactly the plan's segments (address, `bufsz`, SHA-256 of
//! the bytes), so the model checks what the purgatory would be given; each
//! segment is hashed and maintained over its `bufsz` bytes, as the header
//! says, with the rest of its last page zero in memory. What the model
//! simulates:
//! - every segment except the purgatory, at its planned address, with its
//!   real bytes; a long segment is *sampled* (its edges and the page holding
//!   the entry; see `cachesim::sim::loader_plan`). `--full` simulates every
//!   byte (about 0.2 s per MiB per seed in a release build);
//! - the modelled purgatory's memory (one image page, the page-table pool,
//!   the stack) at the address the plan reserved for the purgatory;
//! - `kexec -l`: the old kernel's relocation (Linux >= 5.16, caches on),
//!   then the purgatory; `kexec -p`: the purgatory alone from the weakest
//!   entry state its contract allows (the crash kernel copied the segments
//!   at load time; nothing is copied at panic).
//!
//! Exit codes: 0 every configuration passed every seed, 1 a violation, 2/3
//! as for `kexec -l`.

use std::path::PathBuf;

use cachesim::cost::CostModel;
use cachesim::{
    CacheConfig, DcOp, IcOp, Level, LoaderSegment, SampledSegment, Sampling, Scenario, SimInput,
    SimOptions, Violation, Window,
};
use kexec_core::plan::{LoadMode, SegmentKind};
use kexec_core::purgatory::PurgatoryOptions;
use serde::Serialize;

use crate::failure::Failure;
use crate::pipeline::{make_plan, Planned};
use crate::plan_input::PlanOptions;
use crate::sysroot::Sysroot;

/// Identifier and version of the `--json` document.
pub const SCHEMA: &str = "kexec-rs/sim/v1";

/// `kexec sim` arguments.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct SimArgs {
    /// The kernel: Image, Image.gz/.zst/.xz/.lz4, EFI zboot, ELF vmlinux or UKI.
    kernel: PathBuf,
    /// What shapes the plan, as for `kexec -l` (`-i`: model a purgatory that
    /// does not verify).
    #[command(flatten)]
    plan: PlanOptions,
    /// Simulate the crash-kernel plan (`kexec -p`).
    #[arg(short = 'p', long = "load-panic")]
    load_panic: bool,
    /// Read the system state from DIR instead of / (see `capture-sysroot`).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Cache configurations: `all` (every correctly behaving one), or names
    /// or configuration files (`key = value` lines, see
    /// `cachesim::CacheConfig::from_text`) separated by commas.
    #[arg(long, default_value = "all", value_name = "NAME|FILE|all")]
    config: String,
    /// Adversary seeds per configuration.
    #[arg(long, default_value_t = 8, value_name = "N")]
    seeds: u64,
    /// Simulate every byte of every segment (slow for a real kernel).
    #[arg(long)]
    full: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// One simulated piece of a segment (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct JsonWindow {
    /// Offset into the segment.
    offset: u64,
    /// Length in bytes.
    len: u64,
}

impl From<&Window> for JsonWindow {
    fn from(w: &Window) -> Self {
        Self {
            offset: w.offset,
            len: w.len,
        }
    }
}

/// A planned segment as simulated.
#[derive(Debug, Clone, Serialize)]
struct SimulatedSegment {
    kind: String,
    mem: String,
    bufsz: u64,
    simulated_bytes: u64,
    windows: Vec<JsonWindow>,
}

impl SimulatedSegment {
    fn new(kind: String, s: &SampledSegment) -> Self {
        Self {
            kind,
            mem: hex(s.mem),
            bufsz: s.bufsz,
            simulated_bytes: s.simulated_bytes(),
            windows: s.windows.iter().map(JsonWindow::from).collect(),
        }
    }
}

/// The model's input made from the plan, and what was left out.
#[derive(Debug)]
struct ModelInput {
    sim: SimInput,
    opts: SimOptions,
    segments: Vec<SimulatedSegment>,
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn bug(problem: impl std::fmt::Display) -> Failure {
    Failure::other("kexec sim", problem, "this is a bug in kexec-rs")
}

/// Convert a plan into the model's input.
fn model_input(planned: &Planned, mode: LoadMode, full: bool) -> Result<ModelInput, Failure> {
    let plan = &planned.built.plan;
    let purgatory = planned
        .built
        .purgatory
        .as_deref()
        .ok_or_else(|| bug("the plan has no purgatory"))?;
    let purgatory_base = plan
        .segments
        .iter()
        .find(|s| s.kind == SegmentKind::Purgatory)
        .map(|s| s.mem)
        .ok_or_else(|| bug("the plan has no purgatory segment"))?;
    let buffers = planned.buffers();
    let mut kinds = Vec::new();
    let mut segments = Vec::new();
    for s in plan
        .segments
        .iter()
        .filter(|s| s.kind != SegmentKind::Purgatory)
    {
        let bytes = buffers
            .get(s.kind)
            .filter(|b| b.len() as u64 == s.bufsz)
            .ok_or_else(|| bug(format!("no {}-byte buffer for {}", s.bufsz, s.kind)))?;
        kinds.push(s.kind.to_string());
        segments.push(LoaderSegment { mem: s.mem, bytes });
    }
    let sampling = if full {
        Sampling::Whole
    } else {
        Sampling::Edges
    };
    let sim = SimInput::from_segments(
        LoaderSegment {
            mem: purgatory_base,
            bytes: purgatory,
        },
        &segments,
        sampling,
    )
    .map_err(bug)?;
    let scenario = match mode {
        LoadMode::Normal => Scenario::KexecLoad(cachesim::relocate::RelocStyle::MmuOn),
        LoadMode::Crash => Scenario::PurgatoryOnly,
    };
    let segments = kinds
        .into_iter()
        .zip(&sim.segments)
        .map(|(kind, s)| SimulatedSegment::new(kind, s))
        .collect();
    Ok(ModelInput {
        opts: sim.options(scenario),
        sim,
        segments,
    })
}

fn configs(spec: &str) -> Result<Vec<CacheConfig>, Failure> {
    if spec == "all" {
        return Ok(CacheConfig::all_named());
    }
    spec.split(',')
        .map(|n| {
            let n = n.trim();
            if let Some(c) = CacheConfig::named(n) {
                return Ok(c);
            }
            let path = std::path::Path::new(n);
            if !path.is_file() {
                return Err(Failure::input(
                    "--config",
                    format!("no cache configuration or file {n:?}"),
                    format!(
                        "one of: all, {}, or a file of `key = value` lines",
                        CacheConfig::names().join(", ")
                    ),
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::input(n, format!("cannot read: {e}"), "check the path"))?;
            CacheConfig::from_text(&text).map_err(|e| {
                Failure::input(
                    n,
                    e,
                    "keys: name, summary, base, d_line, i_line, idc, dic, icache, \
                     system_cache, falkor_e1041",
                )
            })
        })
        .collect()
}

/// Counts and cost of one phase (first seed).
#[derive(Debug, Serialize)]
struct JsonPhase {
    name: &'static str,
    dc_cvac: u64,
    dc_civac: u64,
    dc_ivac: u64,
    dc_cvau: u64,
    dc_zva: u64,
    dc_set_way: u64,
    ic_ivau: u64,
    ic_iallu: u64,
    dsb: u64,
    isb: u64,
    sctlr_writes: u64,
    cacheable_bytes: u64,
    noncacheable_bytes: u64,
    line_fills: u64,
    writebacks_l1: u64,
    writebacks_l2: u64,
    writebacks_system_cache: u64,
    cycles: u64,
}

#[derive(Debug, Serialize)]
struct JsonEvent {
    step: u64,
    event: String,
}

#[derive(Debug, Serialize)]
struct JsonViolation {
    rule: String,
    rule_text: String,
    address: Option<String>,
    location: String,
    detail: String,
    seed: u64,
    timeline: Vec<JsonEvent>,
}

impl From<&Violation> for JsonViolation {
    fn from(v: &Violation) -> Self {
        Self {
            rule: format!("{:?}", v.rule),
            rule_text: v.rule.to_string(),
            address: v.addr.map(hex),
            location: v.location.to_string(),
            detail: v.detail.clone(),
            seed: v.seed,
            timeline: v
                .timeline
                .iter()
                .map(|(step, e)| JsonEvent {
                    step: *step,
                    event: e.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonConfig {
    name: &'static str,
    summary: &'static str,
    ctr_el0: String,
    passed: bool,
    seeds_run: u64,
    phases: Vec<JsonPhase>,
    total_cycles: Option<u64>,
    violation: Option<JsonViolation>,
}

#[derive(Debug, Serialize)]
struct JsonCostModel {
    cacheable_per_8_bytes: u64,
    line_fill: u64,
    noncacheable_per_8_bytes: u64,
    dc_by_va: u64,
    writeback: u64,
    dc_set_way_all: u64,
    ic_ivau: u64,
    ic_iallu: u64,
    dsb: u64,
    isb: u64,
    sctlr_write: u64,
    source: &'static str,
}

#[derive(Debug, Serialize)]
struct JsonReport {
    schema: &'static str,
    kernel: String,
    mode: &'static str,
    scenario: &'static str,
    purgatory_flags: String,
    entry: String,
    dtb: String,
    purgatory: String,
    seeds: u64,
    segments: Vec<SimulatedSegment>,
    cost_model: JsonCostModel,
    configs: Vec<JsonConfig>,
    passed: bool,
}

/// One configuration's outcome.
#[derive(Debug)]
struct Outcome {
    config: CacheConfig,
    result: Result<cachesim::SeedSweep, Violation>,
}

fn phases(o: &Outcome) -> Vec<JsonPhase> {
    let Ok(sweep) = &o.result else {
        return Vec::new();
    };
    sweep
        .first
        .phases
        .iter()
        .map(|p| {
            let c = &p.counters;
            JsonPhase {
                name: p.name,
                dc_cvac: c.dc_count(DcOp::Cvac),
                dc_civac: c.dc_count(DcOp::Civac),
                dc_ivac: c.dc_count(DcOp::Ivac),
                dc_cvau: c.dc_count(DcOp::Cvau),
                dc_zva: c.dc_count(DcOp::Zva),
                dc_set_way: c.set_way_total(),
                ic_ivau: c.ic_count(IcOp::Ivau),
                ic_iallu: c.ic_all_count(),
                dsb: c.dsb,
                isb: c.isb,
                sctlr_writes: c.sctlr_writes,
                cacheable_bytes: c.cacheable_bytes,
                noncacheable_bytes: c.noncacheable_bytes,
                line_fills: c.line_fills,
                writebacks_l1: c.writebacks_from(Level::L1),
                writebacks_l2: c.writebacks_from(Level::L2),
                writebacks_system_cache: c.writebacks_from(Level::System),
                cycles: p.cycles,
            }
        })
        .collect()
}

/// Make the plan, run it in the model; the report and whether every
/// configuration passed.
pub(crate) fn run(args: &SimArgs) -> Result<(String, bool), Failure> {
    if args.seeds == 0 {
        return Err(Failure::input(
            "--seeds",
            "0 seeds simulate nothing",
            "give at least 1",
        ));
    }
    let configs = configs(&args.config)?;
    let root = args
        .sysroot
        .as_deref()
        .map_or_else(Sysroot::live, Sysroot::at);
    let mode = if args.load_panic {
        LoadMode::Crash
    } else {
        LoadMode::Normal
    };
    let input = args.plan.input(PurgatoryOptions::default())?;
    let planned = make_plan(&input, mode, &args.kernel, &root)?;
    let m = model_input(&planned, mode, args.full)?;
    let outcomes: Vec<Outcome> = configs
        .into_iter()
        .map(|config| Outcome {
            result: cachesim::simulate_seeds(&m.sim.plan, &config, 0..args.seeds, &m.opts),
            config,
        })
        .collect();
    let passed = outcomes.iter().all(|o| o.result.is_ok());
    let text = if args.json {
        json(args, mode, &m, &outcomes, passed)?
    } else {
        text(args, mode, &m, &outcomes, passed)
    };
    Ok((text, passed))
}

fn mode_name(mode: LoadMode) -> &'static str {
    crate::mode::LoadModeExt::name(mode)
}

fn scenario_text(mode: LoadMode) -> &'static str {
    match mode {
        LoadMode::Normal => {
            "kexec_load + kexec -e: old kernel relocates the segments (Linux >= 5.16, \
             caches on), then the purgatory"
        }
        LoadMode::Crash => {
            "panic: the purgatory alone, from the weakest entry state its contract allows"
        }
    }
}

fn json(
    args: &SimArgs,
    mode: LoadMode,
    m: &ModelInput,
    outcomes: &[Outcome],
    passed: bool,
) -> Result<String, Failure> {
    let c = CostModel::default();
    let report = JsonReport {
        schema: SCHEMA,
        kernel: args.kernel.display().to_string(),
        mode: mode_name(mode),
        scenario: scenario_text(mode),
        purgatory_flags: hex(m.sim.params.flags.0),
        entry: hex(m.sim.params.entry),
        dtb: hex(m.sim.params.dtb),
        purgatory: hex(m.sim.purgatory_base),
        seeds: args.seeds,
        segments: m.segments.clone(),
        cost_model: JsonCostModel {
            cacheable_per_8_bytes: c.cacheable_per_8b,
            line_fill: c.line_fill,
            noncacheable_per_8_bytes: c.noncacheable_per_8b,
            dc_by_va: c.dc_by_va,
            writeback: c.writeback,
            dc_set_way_all: c.set_way_all,
            ic_ivau: c.ic_ivau,
            ic_iallu: c.ic_iallu,
            dsb: c.dsb,
            isb: c.isb,
            sctlr_write: c.sctlr,
            source: CostModel::SOURCE,
        },
        configs: outcomes
            .iter()
            .map(|o| JsonConfig {
                name: o.config.name,
                summary: o.config.summary,
                ctr_el0: format!("{:#010x}", o.config.ctr_el0()),
                passed: o.result.is_ok(),
                seeds_run: o.result.as_ref().map_or(0, |s| s.runs),
                phases: phases(o),
                total_cycles: o.result.as_ref().ok().map(|s| s.first.total_cycles()),
                violation: o.result.as_ref().err().map(JsonViolation::from),
            })
            .collect(),
        passed,
    };
    let mut s = serde_json::to_string_pretty(&report).map_err(bug)?;
    s.push('\n');
    Ok(s)
}

fn text(
    args: &SimArgs,
    mode: LoadMode,
    m: &ModelInput,
    outcomes: &[Outcome],
    passed: bool,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kexec sim: {} ({} load), {} seed(s) per configuration",
        args.kernel.display(),
        mode_name(mode),
        args.seeds
    );
    let _ = writeln!(out, "scenario: {}", scenario_text(mode));
    let _ = writeln!(
        out,
        "purgatory at {:#x}, flags {:#x}; kernel entry {:#x}, x0 = DTB {:#x}",
        m.sim.purgatory_base, m.sim.params.flags.0, m.sim.params.entry, m.sim.params.dtb
    );
    let _ = writeln!(out, "segments simulated (real bytes):");
    for s in &m.segments {
        let sampled = if s.simulated_bytes < s.bufsz {
            let ws: Vec<String> = s
                .windows
                .iter()
                .map(|w| format!("+{:#x}..+{:#x}", w.offset, w.offset + w.len))
                .collect();
            format!(" (sampled: {})", ws.join(", "))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {:<14} at {:<12} {:>10} of {:>10} bytes{sampled}",
            s.kind, s.mem, s.simulated_bytes, s.bufsz
        );
    }
    if m.segments.iter().any(|s| s.simulated_bytes < s.bufsz) {
        out.push_str(
            "  (sampled: the middle of a long segment is left out; --full simulates every \
             byte; costs below cover the simulated bytes only)\n",
        );
    }
    let _ = writeln!(out, "{}\n", CostModel::default());
    for o in outcomes {
        match &o.result {
            Ok(sweep) => {
                let _ = writeln!(
                    out,
                    "PASS  {}: {} seed(s), every rule holds at kernel entry",
                    o.config, sweep.runs
                );
                let _ = writeln!(out, "{}\n", sweep.first);
            }
            Err(v) => {
                let _ = writeln!(out, "FAIL  {}", o.config);
                let _ = writeln!(out, "{v}");
            }
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.config.name)
        .collect();
    if passed {
        let _ = writeln!(out, "all {} configuration(s) passed", outcomes.len());
    } else {
        let _ = writeln!(
            out,
            "{} of {} configuration(s) FAILED: {}",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        );
    }
    out
}
