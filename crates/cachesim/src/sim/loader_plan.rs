//! The model's input made from a loader's plan (what `kexec sim` runs): the
//! purgatory parameters read back from the patched purgatory header, and
//! each segment at its planned address with its real bytes, *sampled* when
//! long. The header's own segment table must describe exactly those
//! segments (address, `bufsz`, and, unless the purgatory is told not to
//! verify, the SHA-256 of the bytes), so the model checks what the
//! purgatory will be given.
//!
//! A segment longer than `2 * EDGE + 4 KiB` is sampled: the first [`EDGE`]
//! bytes (the kernel's entry), the page holding the entry if elsewhere, and
//! the last pages up to its end (the partial last line and page) are
//! simulated with their real bytes; the middle is not (it is maintained by
//! the same loop iterations as its neighbours). [`Sampling::Whole`]
//! simulates every byte.

use super::plan::{Scenario, SimOptions, SimPlan, SimSegment};
use super::smp::{SecondaryRun, SmpOptions};
use crate::memory::PAGE_SIZE;
use handoff::{HandoffParams, HeaderError, PurgatoryHeader, DIGEST_SIZE, HEADER_OFFSET};
use sha2::{Digest, Sha256};
use std::fmt;

/// Bytes simulated at each end of a sampled segment.
pub const EDGE: u64 = 64 * 1024;

/// One segment of a loader's plan: where it is placed and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderSegment<'a> {
    /// Physical address the loader places it at.
    pub mem: u64,
    /// Its contents (`bufsz` bytes).
    pub bytes: &'a [u8],
}

/// Which bytes of long segments are simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Every byte (about 0.2 s per MiB per seed in a release build).
    Whole,
    /// The edges and the entry page of a long segment (see the module
    /// documentation).
    Edges,
}

/// One simulated piece of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Offset into the segment.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The parts of a `len`-byte segment to simulate: all of it, or its first
/// [`EDGE`] bytes, the page at `entry_offset` and its last pages.
pub fn windows(len: u64, entry_offset: Option<u64>, sampling: Sampling) -> Vec<Window> {
    if sampling == Sampling::Whole || len <= 2 * EDGE + PAGE_SIZE {
        return vec![Window { offset: 0, len }];
    }
    let mut spans = vec![(0, EDGE), ((len - EDGE) / PAGE_SIZE * PAGE_SIZE, len)];
    if let Some(e) = entry_offset.filter(|&e| e < len) {
        let start = e / PAGE_SIZE * PAGE_SIZE;
        spans.push((start, (start + PAGE_SIZE).min(len)));
    }
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
        .into_iter()
        .map(|(s, e)| Window {
            offset: s,
            len: e - s,
        })
        .collect()
}

/// A segment of the loader's plan as simulated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledSegment {
    /// Physical address.
    pub mem: u64,
    /// Its length in the plan.
    pub bufsz: u64,
    /// The pieces simulated with their real bytes.
    pub windows: Vec<Window>,
}

impl SampledSegment {
    /// Bytes simulated.
    pub fn simulated_bytes(&self) -> u64 {
        self.windows.iter().map(|w| w.len).sum()
    }

    /// Whether part of the segment is left out.
    pub fn is_sampled(&self) -> bool {
        self.simulated_bytes() < self.bufsz
    }
}

/// Why a loader's plan cannot be turned into the model's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderPlanError {
    /// The purgatory image ends before its header.
    PurgatoryTooShort,
    /// The patched purgatory header does not decode.
    Header(HeaderError),
    /// The header's segment table does not list the plan's segments
    /// (`index` is the first entry that differs; `None` where one list is
    /// shorter).
    HeaderSegments {
        /// Entry number.
        index: usize,
        /// (address, length) in the header.
        header: Option<(u64, u64)>,
        /// (address, `bufsz`) in the plan.
        plan: Option<(u64, u64)>,
    },
    /// The digest table's entry for a chunk is not the SHA-256 of its
    /// bytes, or the table is not in the purgatory's segment.
    HeaderDigest {
        /// Segment number.
        index: usize,
        /// The chunk's first byte.
        addr: u64,
        /// The chunk's length.
        len: u64,
    },
    /// A window lies outside its segment's bytes.
    Window {
        /// The segment's address.
        mem: u64,
        /// The window.
        window: Window,
    },
}

impl fmt::Display for LoaderPlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PurgatoryTooShort => {
                f.write_str("the purgatory is shorter than its header offset")
            }
            Self::Header(e) => write!(f, "patched purgatory header: {e:?}"),
            Self::HeaderSegments {
                index,
                header,
                plan,
            } => {
                let show = |r: &Option<(u64, u64)>| match r {
                    Some((a, l)) => format!("{a:#x}+{l:#x}"),
                    None => "nothing".into(),
                };
                write!(
                    f,
                    "the patched purgatory header's segment {index} is {}, the plan's is {}",
                    show(header),
                    show(plan)
                )
            }
            Self::HeaderDigest { index, addr, len } => write!(
                f,
                "the purgatory's digest of segment {index}'s chunk {addr:#x}+{len:#x} is missing \
                 or not the SHA-256 of its bytes"
            ),
            Self::Window { mem, window } => write!(
                f,
                "window +{:#x}..+{:#x} outside the segment at {mem:#x}",
                window.offset,
                window.offset + window.len
            ),
        }
    }
}

impl std::error::Error for LoaderPlanError {}

/// The model's input made from a loader's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimInput {
    /// What the model boots: the (sampled) segments, the entry and the DTB
    /// from the purgatory header.
    pub plan: SimPlan,
    /// The purgatory parameters, as read back from the patched header.
    pub params: HandoffParams,
    /// Where the loader places the purgatory.
    pub purgatory_base: u64,
    /// Every segment but the purgatory, in the order given, as simulated.
    pub segments: Vec<SampledSegment>,
}

impl SimInput {
    /// The model's input for a plan that loads `purgatory` (its patched
    /// image, whose header gives the entry, the DTB and the flags) and
    /// `segments` (every other segment).
    pub fn from_segments(
        purgatory: LoaderSegment<'_>,
        segments: &[LoaderSegment<'_>],
        sampling: Sampling,
    ) -> Result<Self, LoaderPlanError> {
        let header = purgatory
            .bytes
            .get(HEADER_OFFSET..)
            .ok_or(LoaderPlanError::PurgatoryTooShort)?;
        let params = PurgatoryHeader::decode(header)
            .map_err(LoaderPlanError::Header)?
            .params;
        check_segment_table(&params, purgatory.bytes, segments)?;
        let mut sim_segments = Vec::new();
        let mut sampled = Vec::new();
        for s in segments {
            let bufsz = s.bytes.len() as u64;
            let entry_offset = params.entry.checked_sub(s.mem);
            let ws = windows(bufsz, entry_offset, sampling);
            for w in &ws {
                let bytes = usize::try_from(w.offset)
                    .ok()
                    .zip(usize::try_from(w.offset + w.len).ok())
                    .and_then(|(a, b)| s.bytes.get(a..b))
                    .ok_or(LoaderPlanError::Window {
                        mem: s.mem,
                        window: *w,
                    })?;
                sim_segments.push(SimSegment {
                    addr: s.mem + w.offset,
                    bytes: bytes.to_vec(),
                });
            }
            sampled.push(SampledSegment {
                mem: s.mem,
                bufsz,
                windows: ws,
            });
        }
        Ok(Self {
            plan: SimPlan {
                segments: sim_segments,
                entry: params.entry,
                dtb: params.dtb,
            },
            params,
            purgatory_base: purgatory.mem,
            segments: sampled,
        })
    }

    /// Options for running this input in `scenario`: the header's flags,
    /// the purgatory's memory where the loader places it, and as many
    /// secondaries as the header names, on its conduit (the model's own
    /// MPIDRs: [`super::secondary_mpidr`]).
    pub fn options(&self, scenario: Scenario) -> SimOptions {
        let n = self.params.secondaries().len();
        let smp = (n > 0 && self.params.psci != handoff::Conduit::None).then_some(SmpOptions {
            secondaries: n,
            conduit: self.params.psci,
            secondary_regime: None,
            run: SecondaryRun::SeedDecides,
            psci_version: super::smp::MODEL_PSCI_VERSION,
            // Unused: the header is the loader's.
            boot_listed: true,
            missing: 0,
            missing_first: false,
        });
        SimOptions {
            scenario,
            flags: self.params.flags.0,
            purgatory_base: Some(self.purgatory_base),
            smp,
            ..SimOptions::default()
        }
    }
}

/// The header's segment table lists exactly `segments`, in order, and the
/// digest table in the purgatory's segment (`purgatory`) holds the SHA-256
/// of each of their chunks, the real chunks of the real bytes (the header's
/// validation made it empty with `NO_VERIFY`).
fn check_segment_table(
    params: &HandoffParams,
    purgatory: &[u8],
    segments: &[LoaderSegment<'_>],
) -> Result<(), LoaderPlanError> {
    let table = params.segments();
    for index in 0..table.len().max(segments.len()) {
        let header = table.get(index).map(|s| (s.addr, s.len));
        let plan = segments.get(index).map(|s| (s.mem, s.bytes.len() as u64));
        if header != plan {
            return Err(LoaderPlanError::HeaderSegments {
                index,
                header,
                plan,
            });
        }
    }
    for c in params.chunks().take(params.nr_digests as usize) {
        let s = &segments[c.segment];
        let from = usize::try_from(c.addr - s.mem).unwrap_or(usize::MAX);
        let to = from.saturating_add(usize::try_from(c.len).unwrap_or(usize::MAX));
        let at = usize::try_from(params.digests_offset + c.digest * DIGEST_SIZE as u64)
            .unwrap_or(usize::MAX);
        let want = purgatory.get(at..at.saturating_add(DIGEST_SIZE));
        let got = s.bytes.get(from..to).map(Sha256::digest);
        if want.is_none() || want != got.as_ref().map(|d| &d[..]) {
            return Err(LoaderPlanError::HeaderDigest {
                index: c.segment,
                addr: c.addr,
                len: c.len,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_segments_are_whole() {
        assert_eq!(
            windows(1000, Some(0), Sampling::Edges),
            [Window {
                offset: 0,
                len: 1000
            }]
        );
        assert_eq!(
            windows(10 << 20, Some(0), Sampling::Whole),
            [Window {
                offset: 0,
                len: 10 << 20
            }]
        );
    }

    #[test]
    fn big_segments_keep_head_entry_and_tail() {
        let len = (1 << 20) + 100;
        assert_eq!(
            windows(len, Some(0x8_0010), Sampling::Edges),
            [
                Window {
                    offset: 0,
                    len: EDGE
                },
                Window {
                    offset: 0x8_0000,
                    len: PAGE_SIZE
                },
                Window {
                    offset: (len - EDGE) / PAGE_SIZE * PAGE_SIZE,
                    len: len - (len - EDGE) / PAGE_SIZE * PAGE_SIZE
                },
            ]
        );
        // The entry inside the head: two windows.
        assert_eq!(windows(len, Some(0), Sampling::Edges).len(), 2);
    }

    const MEM_SIZE: u64 = 0x3_6000;

    /// A purgatory segment: the image as linked, patched with `params`,
    /// and the digest table of the chunks of `digested` (segment `i`'s
    /// digests are computed from `digested[i]`).
    fn purgatory(params: &HandoffParams, digested: &[&[u8]]) -> Vec<u8> {
        let mut image = vec![0u8; 0x1000];
        let linked = PurgatoryHeader {
            mem_size: MEM_SIZE,
            params: HandoffParams::default(),
        };
        image[HEADER_OFFSET..HEADER_OFFSET + handoff::HEADER_SIZE]
            .copy_from_slice(&linked.encode().expect("encode"));
        PurgatoryHeader::patch_image(&mut image, params).expect("patch");
        if params.nr_digests != 0 {
            image.resize(usize::try_from(params.digests_offset).expect("offset"), 0);
            for c in params.chunks() {
                let from = usize::try_from(c.addr - params.segments[c.segment].addr).expect("from");
                let len = usize::try_from(c.len).expect("len");
                let bytes = &digested[c.segment][from..from + len];
                image.extend_from_slice(&Sha256::digest(bytes));
            }
        }
        image
    }

    #[test]
    fn the_header_gives_entry_dtb_and_flags() {
        let kernel_at = 0x4020_0000;
        let params = HandoffParams {
            entry: kernel_at + 0x4_0000,
            dtb: 0x4800_0000,
            flags: handoff::Flags(handoff::Flags::NO_VERIFY),
            ..HandoffParams::default()
        };
        let kernel = vec![7u8; (1 << 20) + 100];
        let dtb = vec![9u8; 3000];
        let mut params = params;
        for (addr, bytes) in [(kernel_at, &kernel), (0x4800_0000, &dtb)] {
            params
                .push_segment(handoff::SegmentRange {
                    addr,
                    len: bytes.len() as u64,
                })
                .expect("push");
        }
        let image = purgatory(&params, &[]);
        let input = SimInput::from_segments(
            LoaderSegment {
                mem: 0x4a00_0000,
                bytes: &image,
            },
            &[
                LoaderSegment {
                    mem: kernel_at,
                    bytes: &kernel,
                },
                LoaderSegment {
                    mem: 0x4800_0000,
                    bytes: &dtb,
                },
            ],
            Sampling::Edges,
        )
        .expect("input");
        assert_eq!(
            (input.plan.entry, input.plan.dtb),
            (params.entry, params.dtb)
        );
        assert_eq!(input.params, params);
        // Kernel: head, entry page, tail; DTB whole.
        assert_eq!(input.plan.segments.len(), 4);
        assert_eq!(input.plan.segments[1].addr, params.entry);
        assert!(input.segments[0].is_sampled());
        assert!(!input.segments[1].is_sampled());
        assert_eq!(input.segments[1].simulated_bytes(), 3000);
        let opts = input.options(Scenario::PurgatoryOnly);
        assert_eq!(opts.flags, handoff::Flags::NO_VERIFY);
        assert_eq!(opts.purgatory_base, Some(0x4a00_0000));
    }

    #[test]
    fn a_short_purgatory_is_an_error() {
        let r = SimInput::from_segments(
            LoaderSegment {
                mem: 0,
                bytes: &[0; 8],
            },
            &[],
            Sampling::Whole,
        );
        assert_eq!(r, Err(LoaderPlanError::PurgatoryTooShort));
    }

    fn two_segments() -> (Vec<u8>, Vec<u8>) {
        (vec![7u8; 5000], vec![9u8; 300])
    }

    fn input_with(params: &HandoffParams, digested: &[&[u8]]) -> Result<SimInput, LoaderPlanError> {
        input_from(&purgatory(params, digested))
    }

    fn input_from(image: &[u8]) -> Result<SimInput, LoaderPlanError> {
        let (kernel, dtb) = two_segments();
        SimInput::from_segments(
            LoaderSegment {
                mem: 0x4a00_0000,
                bytes: image,
            },
            &[
                LoaderSegment {
                    mem: 0x4020_0000,
                    bytes: &kernel,
                },
                LoaderSegment {
                    mem: 0x4800_0000,
                    bytes: &dtb,
                },
            ],
            Sampling::Whole,
        )
    }

    fn verifying_params(table: &[(u64, &[u8])]) -> HandoffParams {
        let mut params = HandoffParams {
            entry: 0x4020_0000,
            dtb: 0x4800_0000,
            ..HandoffParams::default()
        };
        for (addr, bytes) in table {
            params
                .push_segment(handoff::SegmentRange {
                    addr: *addr,
                    len: bytes.len() as u64,
                })
                .expect("push");
        }
        params
            .set_digest_table(handoff::params::MIN_CHUNK_SHIFT, MEM_SIZE)
            .expect("table");
        params
    }

    #[test]
    fn the_header_segment_table_must_describe_the_plan() {
        let (kernel, dtb) = two_segments();
        let good = verifying_params(&[(0x4020_0000, &kernel), (0x4800_0000, &dtb)]);
        assert!(input_with(&good, &[&kernel, &dtb]).is_ok());
        // A segment missing from the header.
        let short = verifying_params(&[(0x4020_0000, &kernel)]);
        assert_eq!(
            input_with(&short, &[&kernel]),
            Err(LoaderPlanError::HeaderSegments {
                index: 1,
                header: None,
                plan: Some((0x4800_0000, 300)),
            })
        );
        // The header's length padded to a page instead of bufsz.
        let mut padded = dtb.clone();
        padded.resize(4096, 0);
        let wrong_len = verifying_params(&[(0x4020_0000, &kernel), (0x4800_0000, &padded)]);
        assert!(matches!(
            input_with(&wrong_len, &[&kernel, &padded]),
            Err(LoaderPlanError::HeaderSegments { index: 1, .. })
        ));
        // A digest of other bytes: the kernel's second 4 KiB chunk.
        let mut other = kernel.clone();
        other[4999] ^= 1;
        let err = input_with(&good, &[&other, &dtb]).unwrap_err();
        assert_eq!(
            err,
            LoaderPlanError::HeaderDigest {
                index: 0,
                addr: 0x4020_1000,
                len: 5000 - 4096,
            }
        );
        assert!(err.to_string().contains("not the SHA-256"), "{err}");
        // The table cut short: its last entry (the DTB's) is missing.
        let mut image = purgatory(&good, &[&kernel, &dtb]);
        image.truncate(image.len() - 16);
        assert_eq!(
            input_from(&image),
            Err(LoaderPlanError::HeaderDigest {
                index: 1,
                addr: 0x4800_0000,
                len: 300
            })
        );
    }
}
