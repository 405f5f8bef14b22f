//! Kernel benchmark: times every op family on BERT-sized shapes (batch 32,
//! sequence 128, hidden 256 and 768) and a large square matmul, measures the
//! machine's memory copy bandwidth in the same run, and prints a Markdown
//! table.
//!
//! Run with `cargo bench -p flywheel-kernels --bench kernels`. Set
//! `KERNEL_BENCH_THREADS` to pin the thread count (default: all cores) and
//! `KERNEL_BENCH_FILTER` to time only ops whose name contains it.
//!
//! `-- --device gpu` (or `software`, or an adapter name substring; also
//! `KERNEL_BENCH_DEVICE`) runs the same ops on the wgpu backend instead. A
//! GPU row is the fastest of repeated batches of runs, each batch followed
//! by one wait for the device, divided by the batch size, so that the wait
//! (tens of microseconds) does not hide short kernels. Its reference
//! bandwidth is the device's own: the backend's `copy` between two buffers
//! of up to 1 GiB each.
//!
//! Each row reports the fastest of repeated runs after one warm-up run,
//! because other processes on the machine can only slow a run down. Byte
//! counts include each tensor read or written once (8 bytes per element for
//! GELU: read x, write out) and leave out cache write-allocate traffic.
//!
//! Two copy bandwidths give the memory-bound rows a scale, both counting
//! bytes read plus written:
//! - memory copy: each thread copies one contiguous half of a 1 GiB buffer
//!   with `copy_from_slice` (glibc `memcpy`), well beyond any cache. This is
//!   the machine's memory copy bandwidth, measured at the start and at the
//!   end of the run; the table uses the higher value.
//! - same-bytes copy: the backend's parallel `copy` on a buffer as large as
//!   the op's traffic, which shows how much of the op's data stays in cache.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;
#[cfg(feature = "wgpu")]
use flywheel_kernels::wgpu::GpuBackend;

const BATCH: usize = 32;
const SEQ: usize = 128;
const ROWS: usize = BATCH * SEQ;
const HEAD_DIM: usize = 64;
const VOCAB: usize = 30_522;
/// Rows of the masked-language-model head: 15% of the tokens.
const MLM_ROWS: usize = ROWS * 15 / 100;
/// BERT-base parameter count, for the optimizer step.
const BERT_BASE_PARAMS: usize = 110_000_000;
/// f32 elements in the memory copy: 1 GiB per buffer.
const LARGE_COPY_ELEMENTS: usize = 1 << 28;

/// Minimum time spent on each op after the warm-up run.
const MIN_TOTAL: Duration = Duration::from_millis(300);
const MIN_RUNS: usize = 5;

/// Returns the fastest time of `run` over at least `MIN_RUNS` runs and
/// `MIN_TOTAL`, after one warm-up run.
fn fastest_time(mut run: impl FnMut()) -> Duration {
    run();
    let mut fastest = Duration::MAX;
    let mut runs = 0;
    let start = Instant::now();
    while runs < MIN_RUNS || start.elapsed() < MIN_TOTAL {
        let begin = Instant::now();
        run();
        fastest = fastest.min(begin.elapsed());
        runs += 1;
    }
    fastest
}

/// GB/s (bytes read plus written) of copying a 1 GiB buffer, each of
/// `threads` threads copying one contiguous block with `copy_from_slice`.
fn memory_copy_bandwidth(threads: usize) -> f64 {
    let src = vec![1.0f32; LARGE_COPY_ELEMENTS];
    let mut dst = vec![0.0f32; LARGE_COPY_ELEMENTS];
    let block = LARGE_COPY_ELEMENTS.div_ceil(threads);
    let seconds = fastest_time(|| {
        std::thread::scope(|scope| {
            for (dst, src) in dst.chunks_mut(block).zip(src.chunks(block)) {
                scope.spawn(move || dst.copy_from_slice(src));
            }
        })
    });
    8.0 * LARGE_COPY_ELEMENTS as f64 / seconds.as_secs_f64() / 1e9
}

/// Deterministic data in [-2, 2) from a xorshift generator, cheap enough for
/// hundreds of millions of elements.
fn data(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1 << 22) as f32 - 2.0
        })
        .collect()
}

fn tensor(backend: &dyn Backend, dims: &[usize], seed: u32) -> Tensor {
    backend
        .upload(&data(dims.iter().product(), seed), dims)
        .expect("upload")
}

fn zeros(backend: &dyn Backend, dims: &[usize]) -> Tensor {
    backend.zeros(dims).expect("zeros")
}

/// Work done by one run of an op.
enum Work {
    Flops(f64),
    Bytes(f64),
}

struct Row {
    op: String,
    shape: String,
    millis: f64,
    gflops: Option<f64>,
    gbytes: Option<f64>,
    copy_gbytes: Option<f64>,
}

struct Recorder<'b> {
    backend: &'b dyn Backend,
    /// The wgpu backend behind `backend`, which ops only queue work on.
    #[cfg(feature = "wgpu")]
    gpu: Option<&'b GpuBackend>,
    rows: Vec<Row>,
    /// Copy bandwidth by buffer size in elements.
    copy_cache: HashMap<usize, f64>,
    /// Only ops whose name contains this run.
    filter: Option<String>,
}

impl Recorder<'_> {
    /// Returns the time of one run of `run`: `fastest_time` on the CPU, and
    /// on a GPU the fastest batch of runs plus one wait, per run.
    fn time(&self, mut run: impl FnMut()) -> Duration {
        #[cfg(feature = "wgpu")]
        if let Some(gpu) = self.gpu {
            // Warm up (pipelines are created on first use), then size the
            // batch from one timed run to about 2 ms.
            run();
            gpu.wait();
            let begin = Instant::now();
            run();
            gpu.wait();
            let once = begin.elapsed().as_secs_f64();
            let batch = (2e-3 / once).ceil().clamp(1.0, 100.0) as u32;
            return fastest_time(|| {
                for _ in 0..batch {
                    run();
                }
                gpu.wait();
            }) / batch;
        }
        fastest_time(run)
    }

    /// Times `run` and adds a row, unless `KERNEL_BENCH_FILTER` is set and not part of `op`.
    fn record(&mut self, op: &str, shape: String, work: Work, run: impl FnMut()) {
        if !self.wants(op) {
            return;
        }
        let seconds = self.time(run).as_secs_f64();
        let (gflops, gbytes, copy_gbytes) = match work {
            Work::Flops(flops) => (Some(flops / seconds / 1e9), None, None),
            Work::Bytes(bytes) => {
                let copy = self.copy_bandwidth((bytes / 8.0) as usize);
                (None, Some(bytes / seconds / 1e9), Some(copy))
            }
        };
        println!("{op:>24} {shape:>22} {:>10.3} ms", seconds * 1e3);
        self.rows.push(Row {
            op: op.to_string(),
            shape,
            millis: seconds * 1e3,
            gflops,
            gbytes,
            copy_gbytes,
        });
    }

    fn wants(&self, op: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|filter| op.contains(filter.as_str()))
    }

    /// GB/s (bytes read plus written) of the backend's `copy` between two
    /// buffers of `elements` f32.
    fn copy_bandwidth(&mut self, elements: usize) -> f64 {
        let elements = elements.max(1);
        if let Some(&bandwidth) = self.copy_cache.get(&elements) {
            return bandwidth;
        }
        let src = self
            .backend
            .upload(&vec![1.0; elements], &[elements])
            .expect("upload");
        let mut dst = zeros(self.backend, &[elements]);
        let backend = self.backend;
        let seconds = self
            .time(|| backend.copy(&src, &mut dst).expect("copy"))
            .as_secs_f64();
        let bandwidth = 8.0 * elements as f64 / seconds / 1e9;
        self.copy_cache.insert(elements, bandwidth);
        bandwidth
    }

    fn matmul(&mut self, m: usize, k: usize, n: usize, options: MatmulOptions, label: &str) {
        if !self.wants("matmul") {
            return;
        }
        let backend = self.backend;
        let a_dims = if options.transpose_a { [k, m] } else { [m, k] };
        let b_dims = if options.transpose_b { [n, k] } else { [k, n] };
        let (a, b) = (tensor(backend, &a_dims, 1), tensor(backend, &b_dims, 2));
        let mut out = zeros(backend, &[m, n]);
        let flops = 2.0 * m as f64 * n as f64 * k as f64;
        self.record(
            &format!("matmul {label}"),
            format!("{m}x{k}x{n}"),
            Work::Flops(flops),
            || backend.matmul(&a, &b, &mut out, options).expect("matmul"),
        );
    }
}

fn bench_matmuls(recorder: &mut Recorder<'_>) {
    let forward = MatmulOptions::default();
    let input_grad = MatmulOptions {
        transpose_b: true,
        ..Default::default()
    };
    let weight_grad = MatmulOptions {
        transpose_a: true,
        accumulate: true,
        ..Default::default()
    };
    for hidden in [256, 768] {
        recorder.matmul(ROWS, hidden, hidden, forward, "x·W");
        recorder.matmul(ROWS, hidden, 4 * hidden, forward, "x·W");
        recorder.matmul(ROWS, 4 * hidden, hidden, forward, "x·W");
        recorder.matmul(ROWS, hidden, hidden, input_grad, "dy·Wᵀ");
        recorder.matmul(hidden, ROWS, hidden, weight_grad, "xᵀ·dy +=");
    }
    recorder.matmul(4096, 4096, 4096, forward, "square");
}

/// GELU, bias and dropout on the MLP activations `(B·T, 4C)`.
fn bench_elementwise(recorder: &mut Recorder<'_>, hidden: usize) {
    let backend = recorder.backend;
    let dims = [ROWS, 4 * hidden];
    let n = (ROWS * 4 * hidden) as f64;
    let shape = format!("({ROWS}, {})", 4 * hidden);
    let (x, dout, bias) = (
        tensor(backend, &dims, 3),
        tensor(backend, &dims, 4),
        tensor(backend, &[4 * hidden], 5),
    );
    let (mut out, mut dbias) = (zeros(backend, &dims), zeros(backend, &[4 * hidden]));

    recorder.record("gelu", shape.clone(), Work::Bytes(8.0 * n), || {
        backend.gelu(&x, &mut out).expect("gelu")
    });
    recorder.record(
        "gelu_backward",
        shape.clone(),
        Work::Bytes(12.0 * n),
        || {
            backend
                .gelu_backward(&dout, &x, &mut out)
                .expect("gelu_backward")
        },
    );
    recorder.record("bias_add", shape.clone(), Work::Bytes(8.0 * n), || {
        backend.bias_add(&x, &bias, &mut out).expect("bias_add")
    });
    recorder.record(
        "bias_add_backward",
        shape.clone(),
        Work::Bytes(4.0 * n),
        || {
            backend
                .bias_add_backward(&dout, &mut dbias)
                .expect("bias_add_backward")
        },
    );
    recorder.record("dropout p=0.1", shape, Work::Bytes(8.0 * n), || {
        backend.dropout(&x, 0.1, 7, &mut out).expect("dropout")
    });
}

/// Layer norm on `(B·T, C)`.
fn bench_layer_norm(recorder: &mut Recorder<'_>, hidden: usize) {
    let backend = recorder.backend;
    let dims = [BATCH, SEQ, hidden];
    let n = (ROWS * hidden) as f64;
    let shape = format!("({BATCH}, {SEQ}, {hidden})");
    let (x, dout) = (tensor(backend, &dims, 6), tensor(backend, &dims, 7));
    let (gamma, beta) = (tensor(backend, &[hidden], 8), tensor(backend, &[hidden], 9));
    let (mut out, mut mean, mut rstd) = (
        zeros(backend, &dims),
        zeros(backend, &[BATCH, SEQ]),
        zeros(backend, &[BATCH, SEQ]),
    );
    let (mut dgamma, mut dbeta) = (zeros(backend, &[hidden]), zeros(backend, &[hidden]));

    recorder.record("layer_norm", shape.clone(), Work::Bytes(8.0 * n), || {
        backend
            .layer_norm(&x, &gamma, &beta, 1e-12, &mut out, &mut mean, &mut rstd)
            .expect("layer_norm")
    });
    let mut dx = zeros(backend, &dims);
    recorder.record("layer_norm_backward", shape, Work::Bytes(12.0 * n), || {
        backend
            .layer_norm_backward(
                &dout,
                &x,
                &gamma,
                &mean,
                &rstd,
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            )
            .expect("layer_norm_backward")
    });
}

/// Attention over `(B, T, C)` with 64-channel heads and a quarter of each sequence padded.
fn bench_attention(recorder: &mut Recorder<'_>, hidden: usize) {
    let backend = recorder.backend;
    let heads = hidden / HEAD_DIM;
    let dims = [BATCH, SEQ, hidden];
    let shape = format!("({BATCH}, {SEQ}, {hidden}) H={heads}");
    let (q, k, v, dout) = (
        tensor(backend, &dims, 10),
        tensor(backend, &dims, 11),
        tensor(backend, &dims, 12),
        tensor(backend, &dims, 13),
    );
    let mask: Vec<u32> = (0..ROWS)
        .map(|i| u32::from(i % SEQ < SEQ * 3 / 4))
        .collect();
    let mask = backend
        .upload_u32(&mask, &[BATCH, SEQ])
        .expect("upload_u32");
    let (mut out, mut probs) = (
        zeros(backend, &dims),
        zeros(backend, &[BATCH, heads, SEQ, SEQ]),
    );
    // Two T×T×C matmuls per sequence forward, four backward.
    let flops = 4.0 * (BATCH * SEQ * SEQ * hidden) as f64;

    recorder.record("attention", shape.clone(), Work::Flops(flops), || {
        backend
            .attention(&q, &k, &v, &mask, heads, &mut out, &mut probs)
            .expect("attention")
    });
    let (mut dq, mut dk, mut dv) = (
        zeros(backend, &dims),
        zeros(backend, &dims),
        zeros(backend, &dims),
    );
    recorder.record(
        "attention_backward",
        shape,
        Work::Flops(2.0 * flops),
        || {
            backend
                .attention_backward(&dout, &q, &k, &v, &probs, heads, &mut dq, &mut dk, &mut dv)
                .expect("attention_backward")
        },
    );
}

/// Token embedding lookup and its gradient for `B·T` ids into a `(V, 768)` table.
fn bench_embedding(recorder: &mut Recorder<'_>) {
    let backend = recorder.backend;
    let hidden = 768;
    let ids: Vec<u32> = (0..ROWS as u32)
        .map(|i| i.wrapping_mul(2_654_435_761) % VOCAB as u32)
        .collect();
    let ids = backend.upload_u32(&ids, &[BATCH, SEQ]).expect("upload_u32");
    let table = tensor(backend, &[VOCAB, hidden], 14);
    let mut out = zeros(backend, &[BATCH, SEQ, hidden]);
    let mut dtable = zeros(backend, &[VOCAB, hidden]);
    let n = (ROWS * hidden) as f64;
    let shape = format!("({BATCH}, {SEQ}) V={VOCAB} C={hidden}");
    recorder.record("embedding", shape.clone(), Work::Bytes(8.0 * n), || {
        backend
            .embedding(&ids, &table, &mut out)
            .expect("embedding")
    });
    recorder.record("embedding_backward", shape, Work::Bytes(12.0 * n), || {
        backend
            .embedding_backward(&out, &ids, &mut dtable)
            .expect("embedding_backward")
    });
}

/// Masked-language-model cross-entropy over the vocabulary.
fn bench_cross_entropy(recorder: &mut Recorder<'_>) {
    let backend = recorder.backend;
    let logits = tensor(backend, &[MLM_ROWS, VOCAB], 15);
    let targets: Vec<u32> = (0..MLM_ROWS as u32)
        .map(|i| (i * 7) % VOCAB as u32)
        .collect();
    let targets = backend
        .upload_u32(&targets, &[MLM_ROWS])
        .expect("upload_u32");
    let (mut loss, mut lse) = (zeros(backend, &[1]), zeros(backend, &[MLM_ROWS]));
    let dloss = backend.upload(&[1.0], &[1]).expect("upload");
    let mut dlogits = zeros(backend, &[MLM_ROWS, VOCAB]);
    let n = (MLM_ROWS * VOCAB) as f64;
    let shape = format!("({MLM_ROWS}, {VOCAB})");
    recorder.record("cross_entropy", shape.clone(), Work::Bytes(4.0 * n), || {
        backend
            .cross_entropy(&logits, &targets, u32::MAX, &mut loss, &mut lse)
            .expect("cross_entropy")
    });
    recorder.record(
        "cross_entropy_backward",
        shape,
        Work::Bytes(8.0 * n),
        || {
            backend
                .cross_entropy_backward(&dloss, &logits, &targets, u32::MAX, &lse, &mut dlogits)
                .expect("cross_entropy_backward")
        },
    );
}

/// AdamW over BERT-base's parameter count, plus the norm reduction.
fn bench_optimizer(recorder: &mut Recorder<'_>) {
    // 440 MB per tensor: skip the uploads when the filter excludes both ops.
    if !recorder.wants("adamw_step") && !recorder.wants("norm") {
        return;
    }
    let backend = recorder.backend;
    let dims = [BERT_BASE_PARAMS];
    let n = BERT_BASE_PARAMS as f64;
    let shape = format!("({BERT_BASE_PARAMS})");
    let mut param = tensor(backend, &dims, 16);
    let grad = tensor(backend, &dims, 17);
    let (mut m, mut v) = (zeros(backend, &dims), zeros(backend, &dims));
    let config = AdamWConfig::default();
    // Reads param, grad, m and v, writes param, m and v.
    recorder.record("adamw_step", shape.clone(), Work::Bytes(28.0 * n), || {
        backend
            .adamw_step(&mut param, &grad, &mut m, &mut v, &config, 10)
            .expect("adamw_step")
    });
    let mut out = zeros(backend, &[1]);
    recorder.record("norm", shape, Work::Bytes(4.0 * n), || {
        backend.norm(&grad, &mut out).expect("norm")
    });
}

/// Returns the 1-minute load average from /proc/loadavg (Linux), to show
/// whether other processes competed for the cores during the run.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Prints the rows; `copy_label` names how `memory_copy` was measured.
fn print_table(backend: &dyn Backend, rows: &[Row], memory_copy: [f64; 2], copy_label: &str) {
    let device = backend.device_name();
    let reference = memory_copy[0].max(memory_copy[1]);
    println!();
    println!("1-minute load average at the end: {}", load_average());
    println!(
        "{copy_label}: {:.1} GB/s at the start, {:.1} GB/s at the end",
        memory_copy[0], memory_copy[1]
    );
    println!();
    println!(
        "| op | shape | backend | device | time (ms) | GFLOP/s | GB/s | % of memory copy | same-bytes copy GB/s | % of same-bytes copy |"
    );
    println!("|---|---|---|---|---:|---:|---:|---:|---:|---:|");
    let percent = |part: f64, whole: f64| format!("{:.0} %", 100.0 * part / whole);
    for row in rows {
        let gflops = row
            .gflops
            .map_or(String::new(), |value| format!("{value:.1}"));
        let (gbytes, of_memory, copy, of_copy) = match (row.gbytes, row.copy_gbytes) {
            (Some(gbytes), Some(copy)) => (
                format!("{gbytes:.1}"),
                percent(gbytes, reference),
                format!("{copy:.1}"),
                percent(gbytes, copy),
            ),
            _ => Default::default(),
        };
        println!(
            "| {} | {} | {} | {device} | {:.3} | {gflops} | {gbytes} | {of_memory} | {copy} | {of_copy} |",
            row.op,
            row.shape,
            backend.name(),
            row.millis
        );
    }
}

/// Runs every benchmark group.
fn bench_all(recorder: &mut Recorder<'_>) {
    bench_matmuls(recorder);
    for hidden in [256, 768] {
        bench_elementwise(recorder, hidden);
        bench_layer_norm(recorder, hidden);
        bench_attention(recorder, hidden);
    }
    bench_embedding(recorder);
    bench_cross_entropy(recorder);
    bench_optimizer(recorder);
}

/// Returns the `--device VALUE` or `--device=VALUE` argument, else
/// `KERNEL_BENCH_DEVICE`, else `cpu`.
fn bench_device() -> String {
    let args: Vec<String> = std::env::args().collect();
    for (index, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix("--device=") {
            return value.to_string();
        }
        if arg == "--device"
            && let Some(value) = args.get(index + 1)
        {
            return value.clone();
        }
    }
    std::env::var("KERNEL_BENCH_DEVICE").unwrap_or_else(|_| "cpu".to_string())
}

/// Runs the benchmark on the wgpu adapter that `device` names.
#[cfg(feature = "wgpu")]
fn gpu_main(device: &str) {
    let gpu = GpuBackend::open(device).unwrap_or_else(|error| panic!("{error}"));
    println!("backend {} on {}", gpu.name(), gpu.device_name());
    println!("1-minute load average at the start: {}", load_average());
    let mut recorder = Recorder {
        backend: &gpu,
        gpu: Some(&gpu),
        rows: Vec::new(),
        copy_cache: HashMap::new(),
        filter: std::env::var("KERNEL_BENCH_FILTER").ok(),
    };
    // Two buffers of up to 1 GiB each, within the adapter's binding limit.
    let copy_elements = LARGE_COPY_ELEMENTS.min((gpu.max_tensor_bytes() / 4) as usize);
    let device_copy_start = recorder.copy_bandwidth(copy_elements);
    bench_all(&mut recorder);
    recorder.copy_cache.remove(&copy_elements);
    let device_copy_end = recorder.copy_bandwidth(copy_elements);
    let label = format!(
        "device copy (Backend::copy, 2 buffers of {} MiB)",
        (copy_elements * 4) >> 20
    );
    print_table(
        &gpu,
        &recorder.rows,
        [device_copy_start, device_copy_end],
        &label,
    );
}

#[cfg(not(feature = "wgpu"))]
fn gpu_main(device: &str) {
    panic!("--device {device} needs the `wgpu` feature of flywheel-kernels");
}

fn main() {
    // `cargo bench` passes `--bench`, which is ignored.
    let device = bench_device();
    if device != "cpu" {
        return gpu_main(&device);
    }
    let threads = std::env::var("KERNEL_BENCH_THREADS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |count| count.get()));
    let backend = CpuBackend::with_threads(threads).expect("build the thread pool");
    println!("backend {} on {}", backend.name(), backend.device_name());
    println!("1-minute load average at the start: {}", load_average());

    let memory_copy_start = memory_copy_bandwidth(threads);
    let filter = std::env::var("KERNEL_BENCH_FILTER").ok();
    let mut recorder = Recorder {
        backend: &backend,
        #[cfg(feature = "wgpu")]
        gpu: None,
        rows: Vec::new(),
        copy_cache: HashMap::new(),
        filter,
    };
    bench_all(&mut recorder);
    let memory_copy_end = memory_copy_bandwidth(threads);
    print_table(
        &backend,
        &recorder.rows,
        [memory_copy_start, memory_copy_end],
        "memory copy (1 GiB, one block per thread)",
    );
}
