//! Measures the loader's chunk hashing (`kexec_core::digest`) on a file:
//! for each chunk size and worker count, the median wall time of hashing
//! the file's bytes (read into memory first, so only hashing is timed).
//! How `digest::CHUNK_SHIFT` was chosen (README, "Chunked digests").
//!
//! `cargo run --release -p kexec-core --example digest_chunks -- FILE [REPS]`

use std::time::Instant;

use kexec_core::digest::{chunk_digests_with, cpus};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: digest_chunks FILE [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: cannot read: {e}");
        std::process::exit(1);
    });
    let mib = bytes.len() as f64 / f64::from(1 << 20);
    println!("{path}: {mib:.0} MiB, {} CPUs, median of {reps}", cpus());
    for shift in [18u32, 20, 21, 22, 23, 24] {
        for workers in [1, cpus()] {
            let mut times: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    let d = chunk_digests_with(0, &bytes, 1 << shift, workers);
                    std::hint::black_box(d);
                    t.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let t = times[reps / 2];
            println!(
                "chunk {:>5} KiB, {workers} worker(s): {:.3} s, {:.0} MiB/s",
                1u64 << (shift - 10),
                t,
                mib / t
            );
        }
    }
}
