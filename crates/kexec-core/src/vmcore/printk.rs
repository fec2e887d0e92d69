//! The crashed kernel's log: the lockless printk ring buffer of Linux 5.10
//! and later (kernel/printk/printk_ringbuffer.{c,h}), found and laid out
//! through VMCOREINFO (kernel/printk/printk.c, `log_buf_vmcoreinfo_setup`).
//!
//! `SYMBOL(prb)` is the kernel variable `prb`, a pointer to the
//! `struct printk_ringbuffer` in use. Its `desc_ring` holds `1 << count_bits`
//! descriptors (`descs`) and as many `printk_info`s (`infos`); `head_id` and
//! `tail_id` are the newest and oldest descriptor IDs. A descriptor's
//! `state_var` is its ID with the state in the top two bits
//! (`DESC_FLAGS_SHIFT`); its `text_blk_lpos` (`begin`, `next`) are logical
//! positions in the `text_data_ring` of `1 << size_bits` bytes at `data`,
//! where a block is an `unsigned long` ID followed by the text.
//!
//! As the kernel's readers (`get_data`, `copy_data`) and makedumpfile's
//! `--dump-dmesg` do: IDs run from `tail_id` to `head_id`; a record is read
//! when its descriptor carries that ID in state committed or finalized; a
//! data-less block (both positions odd: `NO_LPOS`, `FAILED_LPOS`) has no text;
//! a regular block lies inside one wrap, a wrapping block starts at index 0;
//! an illegal, misaligned or too short block, or a `text_len` longer than its
//! block, is skipped (the kernel's `copy_data` refuses it).
//!
//! Only one descriptor, one `printk_info` and one text are read at a time:
//! nothing is allocated in proportion to the ring.

use super::{u16_at, u32_at, u64_at, AddressMap, Error, ReadAt, Vmcore, VmcoreInfo};

/// Bits of `state_var` (`unsigned long`: 64 on arm64) below the state
/// (`DESC_FLAGS_SHIFT` = `DESC_SV_BITS - 2`).
pub const DESC_FLAGS_SHIFT: u32 = 62;
/// The ID part of `state_var` and of `head_id`/`tail_id` (`DESC_ID_MASK`).
pub const DESC_ID_MASK: u64 = !(3 << DESC_FLAGS_SHIFT);
/// `desc_committed` (`enum desc_state`).
pub const DESC_COMMITTED: u64 = 1;
/// `desc_finalized`.
pub const DESC_FINALIZED: u64 = 2;
/// `sizeof(db->id)`: a data block's ID, and the alignment of every block.
pub const BLOCK_ID_SIZE: u64 = 8;
/// Most descriptor bits accepted: a 2 GiB log (`LOG_BUF_LEN_MAX`,
/// kernel/printk/printk.c) with `PRB_AVGBITS` = 5 has 2^26 descriptors.
pub const MAX_COUNT_BITS: u32 = 26;
/// Most text-ring bits accepted: `LOG_BUF_LEN_MAX` is 2^31 bytes.
pub const MAX_SIZE_BITS: u32 = 31;
/// Largest VMCOREINFO `SIZE(…)` of a ring-buffer structure read (the real
/// ones are a few dozen bytes).
pub const MAX_STRUCT_SIZE: usize = 4096;

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `printk_info.seq`.
    pub seq: u64,
    /// `printk_info.ts_nsec`: nanoseconds since boot (local clock).
    pub ts_nsec: u64,
    /// `printk_info.caller_id`: the task's PID, or `0x80000000 + CPU` outside
    /// task context (`printk_caller_id`, kernel/printk/printk.c).
    pub caller_id: u32,
    /// The text, without a trailing newline (`text_len` bytes).
    pub text: Vec<u8>,
}

/// `caller_id` bit set when the caller was not a task (`printk_caller_id`).
pub const CALLER_CPU_FLAG: u32 = 0x8000_0000;

impl Record {
    /// The text as a line of `makedumpfile --dump-dmesg` output (and of the
    /// kernel console, but for continuation lines): `[%5lu.%06lu] ` and the
    /// text; each newline inside the text is followed by as many spaces as
    /// the prefix is wide; a byte that is neither printable ASCII nor
    /// whitespace is written `\xNN`; a newline ends the record.
    pub fn to_line(&self) -> String {
        let mut out = format!(
            "[{:5}.{:06}] ",
            self.ts_nsec / 1_000_000_000,
            self.ts_nsec % 1_000_000_000 / 1000
        );
        let indent = out.len();
        for &b in &self.text {
            match b {
                b'\n' => {
                    out.push('\n');
                    out.extend(std::iter::repeat_n(' ', indent));
                }
                0x20..=0x7e | b'\t' | 0x0b | 0x0c | b'\r' => out.push(char::from(b)),
                _ => out.push_str(&format!("\\x{b:02x}")),
            }
        }
        out.push('\n');
        out
    }
}

/// Where the ring buffer's parts are, from VMCOREINFO and the `prb` structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ring {
    /// Descriptors (`prb_desc_ring.count_bits`).
    pub count_bits: u32,
    /// Address of `descs`.
    pub descs: u64,
    /// Address of `infos`.
    pub infos: u64,
    /// Oldest descriptor ID.
    pub tail_id: u64,
    /// Newest descriptor ID.
    pub head_id: u64,
    /// Text bytes (`prb_data_ring.size_bits`).
    pub size_bits: u32,
    /// Address of the text `data`.
    pub data: u64,
    desc: DescLayout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DescLayout {
    desc_size: usize,
    state_var: usize,
    begin: usize,
    next: usize,
    info_size: usize,
    seq: usize,
    ts_nsec: usize,
    text_len: usize,
    caller_id: usize,
}

/// The offset of `base` + the `OFFSET(…)`s of `keys`, checked to leave
/// `width` bytes inside `SIZE(sname)` = `size`.
fn field(
    info: &VmcoreInfo,
    base: u64,
    keys: &[&str],
    width: u64,
    (sname, size): (&str, usize),
) -> Result<usize, Error> {
    let mut at = base;
    for k in keys {
        at = at.saturating_add(info.offset(k)?);
    }
    if at.saturating_add(width) > size as u64 {
        return Err(Error::Ringbuffer(format!(
            "{} at offset {at} does not fit SIZE({sname})={size}",
            keys.last().copied().unwrap_or_default()
        )));
    }
    // Less than `size`, itself at most MAX_STRUCT_SIZE.
    usize::try_from(at).map_err(|_| Error::Ringbuffer(format!("offset {at}")))
}

fn struct_size(info: &VmcoreInfo, name: &str) -> Result<usize, Error> {
    let size = info.size(name)?;
    match usize::try_from(size) {
        Ok(s) if (1..=MAX_STRUCT_SIZE).contains(&s) => Ok(s),
        _ => Err(Error::Ringbuffer(format!(
            "SIZE({name})={size} is outside 1..={MAX_STRUCT_SIZE}"
        ))),
    }
}

impl Ring {
    /// Finds the ring buffer: reads `prb` and the structure it points to.
    pub fn locate<R: ReadAt + ?Sized>(vmcore: &Vmcore, src: &R) -> Result<Self, Error> {
        let info = vmcore.info()?;
        let map = info.address_map();
        let counter = info.offset("atomic_long_t.counter")?;
        let rb = ("printk_ringbuffer", struct_size(info, "printk_ringbuffer")?);
        let dr = info.offset("printk_ringbuffer.desc_ring")?;
        let tr = info.offset("printk_ringbuffer.text_data_ring")?;
        let dr_c = dr.saturating_add(counter);
        let at_count = field(info, dr, &["prb_desc_ring.count_bits"], 4, rb)?;
        let at_descs = field(info, dr, &["prb_desc_ring.descs"], 8, rb)?;
        let at_infos = field(info, dr, &["prb_desc_ring.infos"], 8, rb)?;
        let at_head = field(info, dr_c, &["prb_desc_ring.head_id"], 8, rb)?;
        let at_tail = field(info, dr_c, &["prb_desc_ring.tail_id"], 8, rb)?;
        let at_size = field(info, tr, &["prb_data_ring.size_bits"], 4, rb)?;
        let at_data = field(info, tr, &["prb_data_ring.data"], 8, rb)?;

        let d = ("prb_desc", struct_size(info, "prb_desc")?);
        let i = ("printk_info", struct_size(info, "printk_info")?);
        let lpos = "prb_desc.text_blk_lpos";
        let desc = DescLayout {
            desc_size: d.1,
            state_var: field(info, counter, &["prb_desc.state_var"], 8, d)?,
            begin: field(info, 0, &[lpos, "prb_data_blk_lpos.begin"], 8, d)?,
            next: field(info, 0, &[lpos, "prb_data_blk_lpos.next"], 8, d)?,
            info_size: i.1,
            seq: field(info, 0, &["printk_info.seq"], 8, i)?,
            ts_nsec: field(info, 0, &["printk_info.ts_nsec"], 8, i)?,
            text_len: field(info, 0, &["printk_info.text_len"], 2, i)?,
            caller_id: field(info, 0, &["printk_info.caller_id"], 4, i)?,
        };

        let mut ptr = [0u8; 8];
        let prb = info.symbol("prb")?;
        vmcore.read_virt(src, &map, prb, &mut ptr, &|| {
            "the printk variable prb".into()
        })?;
        let rb_addr = u64::from_le_bytes(ptr);
        // Bounded by MAX_STRUCT_SIZE.
        let mut rb = vec![0u8; rb.1];
        vmcore.read_virt(src, &map, rb_addr, &mut rb, &|| {
            "struct printk_ringbuffer".into()
        })?;
        let ring = Self {
            count_bits: u32_at(&rb, at_count),
            descs: u64_at(&rb, at_descs),
            infos: u64_at(&rb, at_infos),
            tail_id: u64_at(&rb, at_tail),
            head_id: u64_at(&rb, at_head),
            size_bits: u32_at(&rb, at_size),
            data: u64_at(&rb, at_data),
            desc,
        };
        ring.check(src.size())?;
        Ok(ring)
    }

    fn check(&self, file_size: u64) -> Result<(), Error> {
        let fail = |m: String| Err(Error::Ringbuffer(m));
        if self.count_bits > MAX_COUNT_BITS {
            return fail(format!("count_bits {} > {MAX_COUNT_BITS}", self.count_bits));
        }
        if !(3..=MAX_SIZE_BITS).contains(&self.size_bits) {
            return fail(format!(
                "size_bits {} outside 3..={MAX_SIZE_BITS}",
                self.size_bits
            ));
        }
        let descs = (1u64 << self.count_bits) * (self.desc.desc_size + self.desc.info_size) as u64;
        if descs > file_size || (1u64 << self.size_bits) > file_size {
            return fail(format!(
                "{} descriptors and {} text bytes cannot fit a {file_size}-byte dump",
                1u64 << self.count_bits,
                1u64 << self.size_bits
            ));
        }
        let live = self.head_id.wrapping_sub(self.tail_id) & DESC_ID_MASK;
        if live >= 1u64 << self.count_bits {
            return fail(format!(
                "tail_id {:#x} to head_id {:#x} spans more than its {} descriptors",
                self.tail_id,
                self.head_id,
                1u64 << self.count_bits
            ));
        }
        Ok(())
    }

    /// The records, oldest first.
    pub fn records<'a, R: ReadAt + ?Sized>(
        &self,
        vmcore: &'a Vmcore,
        src: &'a R,
    ) -> Records<'a, R> {
        let map = vmcore
            .vmcoreinfo
            .as_ref()
            .map(VmcoreInfo::address_map)
            .unwrap_or_default();
        Records {
            ring: *self,
            vmcore,
            src,
            map,
            id: self.tail_id,
            left: (self.head_id.wrapping_sub(self.tail_id) & DESC_ID_MASK) + 1,
        }
    }

    /// Where a block's text is in the data ring, and its size, following
    /// `get_data` (kernel/printk/printk_ringbuffer.c); `None` for data-less,
    /// illegal, misaligned or too small blocks. (A data-less block's
    /// positions are odd, `NO_LPOS` or `FAILED_LPOS`: the alignment check
    /// refuses them.)
    pub fn block(&self, begin: u64, next: u64) -> Option<(u64, u64)> {
        let size = 1u64 << self.size_bits;
        let wraps = |lpos: u64| lpos >> self.size_bits;
        let (index, data_size) = if wraps(begin) == wraps(next) && begin < next {
            (begin & (size - 1), next - begin)
        } else if wraps(begin.wrapping_add(size)) == wraps(next) {
            (0, next & (size - 1))
        } else {
            return None;
        };
        if !begin.is_multiple_of(BLOCK_ID_SIZE)
            || !next.is_multiple_of(BLOCK_ID_SIZE)
            || data_size < BLOCK_ID_SIZE
        {
            return None;
        }
        Some((index + BLOCK_ID_SIZE, data_size - BLOCK_ID_SIZE))
    }
}

#[cfg(test)]
impl Ring {
    /// A ring with a data ring of `1 << size_bits` bytes, for [`Ring::block`].
    pub(crate) fn for_tests(size_bits: u32) -> Self {
        Self {
            count_bits: 0,
            descs: 0,
            infos: 0,
            tail_id: 0,
            head_id: 0,
            size_bits,
            data: 0,
            desc: DescLayout {
                desc_size: 24,
                state_var: 0,
                begin: 8,
                next: 16,
                info_size: 88,
                seq: 0,
                ts_nsec: 8,
                text_len: 16,
                caller_id: 20,
            },
        }
    }
}

/// Iterator over the records of a [`Ring`]; a read error ends it.
#[derive(Debug)]
pub struct Records<'a, R: ?Sized> {
    ring: Ring,
    vmcore: &'a Vmcore,
    src: &'a R,
    map: AddressMap,
    id: u64,
    left: u64,
}

impl<R: ReadAt + ?Sized> Records<'_, R> {
    fn read(&self, addr: u64, buf: &mut [u8], what: &str) -> Result<(), Error> {
        let id = self.id;
        self.vmcore.read_virt(self.src, &self.map, addr, buf, &|| {
            format!("{what} of record id {id:#x}")
        })
    }

    /// The record of descriptor `self.id`, if it holds one.
    fn record(&self) -> Result<Option<Record>, Error> {
        let d = self.ring.desc;
        let index = self.id & ((1u64 << self.ring.count_bits) - 1);
        let mut desc = [0u8; MAX_STRUCT_SIZE];
        let desc = &mut desc[..d.desc_size];
        self.read(
            self.ring.descs.wrapping_add(index * d.desc_size as u64),
            desc,
            "prb_desc",
        )?;
        let state_var = u64_at(desc, d.state_var);
        let state = state_var >> DESC_FLAGS_SHIFT;
        if state_var & DESC_ID_MASK != self.id
            || !(state == DESC_COMMITTED || state == DESC_FINALIZED)
        {
            return Ok(None);
        }
        let Some((at, data_size)) = self.ring.block(u64_at(desc, d.begin), u64_at(desc, d.next))
        else {
            return Ok(None);
        };
        let mut info = [0u8; MAX_STRUCT_SIZE];
        let info = &mut info[..d.info_size];
        self.read(
            self.ring.infos.wrapping_add(index * d.info_size as u64),
            info,
            "printk_info",
        )?;
        let text_len = u16_at(info, d.text_len);
        if u64::from(text_len) > data_size {
            return Ok(None);
        }
        let mut text = vec![0u8; usize::from(text_len)];
        self.read(self.ring.data.wrapping_add(at), &mut text, "text")?;
        Ok(Some(Record {
            seq: u64_at(info, d.seq),
            ts_nsec: u64_at(info, d.ts_nsec),
            caller_id: u32_at(info, d.caller_id),
            text,
        }))
    }
}

impl<R: ReadAt + ?Sized> Iterator for Records<'_, R> {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            let got = self.record();
            self.left -= 1;
            self.id = self.id.wrapping_add(1) & DESC_ID_MASK;
            match got {
                Ok(None) => continue,
                Ok(Some(r)) => return Some(Ok(r)),
                Err(e) => {
                    self.left = 0;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
