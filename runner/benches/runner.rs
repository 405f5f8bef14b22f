//! Runner benchmarks; prints a table.
//!
//! 1. `flywheel status` on a generated 10,000-node workflow with every node cached
//!    (end to end: process start, YAML parsing, validation, keys, record and object checks).
//! 2. Hashing a 1 GiB file with flywheel's hasher against the `b3sum` tool on the same file.
//!
//! Run with `cargo bench -p flywheel --bench runner`. `FLYWHEEL_BENCH_NODES` and
//! `FLYWHEEL_BENCH_HASH_MIB` change the sizes; `b3sum` must be on PATH for the comparison
//! (`cargo install b3sum`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes a workflow of `n` fixture nodes shaped as a binary tree: node i reads node (i-1)/2.
fn generate_workflow(path: &Path, n: usize) {
    let mut text = String::from("name: bench\nnodes:\n");
    for i in 0..n {
        text.push_str(&format!("  n{i}:\n    stage: fixture\n    params: {{text: \"{i} \"}}\n"));
        if i > 0 {
            text.push_str(&format!("    inputs: {{input: n{}.out}}\n", (i - 1) / 2));
        }
    }
    std::fs::write(path, text).unwrap();
}

fn flywheel(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(args)
        .current_dir(dir)
        .env("FLYWHEEL_TEST_STAGES", "1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(value);
    }
    (best, last.unwrap())
}

fn bench_status(rows: &mut Vec<[String; 4]>) {
    let nodes = env_usize("FLYWHEEL_BENCH_NODES", 10_000);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let workflow = dir.path().join("bench.yaml");
    generate_workflow(&workflow, nodes);

    let start = Instant::now();
    let output = flywheel(dir.path(), &["run", "bench.yaml", "--jobs", "2"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let first_run = start.elapsed().as_secs_f64();
    rows.push(["run, every node computed".into(), format!("{nodes} nodes"), format!("{first_run:.2} s"), format!("{:.0} nodes/s", nodes as f64 / first_run)]);

    let (cached_run, _) = best_of(3, || flywheel(dir.path(), &["run", "bench.yaml"]));
    rows.push(["run, every node cached".into(), format!("{nodes} nodes"), format!("{cached_run:.3} s"), format!("{:.0} nodes/s", nodes as f64 / cached_run)]);

    let (status, output) = best_of(5, || flywheel(dir.path(), &["status", "bench.yaml"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("nothing to do"), "status found work: {}", stdout.lines().last().unwrap_or(""));
    let verdict = if status < 0.5 { "target < 0.5 s met" } else { "target < 0.5 s MISSED" };
    rows.push(["status, every node cached".into(), format!("{nodes} nodes"), format!("{status:.3} s"), verdict.into()]);
}

fn bench_hash(rows: &mut Vec<[String; 4]>) {
    let mib = env_usize("FLYWHEEL_BENCH_HASH_MIB", 1024);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let path = dir.path().join("big.bin");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8;
            }
            file.write_all(&block).unwrap();
        }
    }
    let bytes = (mib as f64) * 1024.0 * 1024.0;
    // The first pass warms the page cache for both tools.
    let (ours, digest) = best_of(4, || flywheel::store::hash::hash_file(&path).unwrap());
    let ours_rate = bytes / ours / 1e9;
    rows.push(["hash file (flywheel, mmap + rayon)".into(), format!("{mib} MiB"), format!("{ours:.3} s"), format!("{ours_rate:.2} GB/s")]);

    let b3sum = Command::new("b3sum").arg("--version").output();
    match b3sum {
        Ok(version) if version.status.success() => {
            let (theirs, output) = best_of(4, || Command::new("b3sum").arg("--no-names").arg(&path).output().unwrap());
            let their_digest = String::from_utf8_lossy(&output.stdout).trim().to_string();
            assert_eq!(format!("b3:{their_digest}"), digest.to_string(), "b3sum and flywheel disagree");
            let theirs_rate = bytes / theirs / 1e9;
            let ratio = ours_rate / theirs_rate;
            let name = String::from_utf8_lossy(&version.stdout).trim().to_string();
            rows.push([format!("hash file ({name})"), format!("{mib} MiB"), format!("{theirs:.3} s"), format!("{theirs_rate:.2} GB/s")]);
            let verdict = if ratio >= 0.8 { "target >= 80 % met" } else { "target >= 80 % MISSED" };
            rows.push(["flywheel / b3sum throughput".into(), String::new(), format!("{:.0} %", ratio * 100.0), verdict.into()]);
        }
        _ => rows.push(["hash file (b3sum)".into(), "not found on PATH".into(), "-".into(), "install with `cargo install b3sum`".into()]),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness has no filters.
    let mut rows: Vec<[String; 4]> = Vec::new();
    bench_status(&mut rows);
    bench_hash(&mut rows);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("machine: {cpu}, {cores} cores");
    println!("| benchmark | size | time | result |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("| {} | {} | {} | {} |", row[0], row[1], row[2], row[3]);
    }
}
