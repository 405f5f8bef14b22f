//! Bit-identical CPU results: a forward and backward pass through every op
//! family, run twice on dedicated thread pools, must produce the same bits.

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;

const BATCH: usize = 4;
const SEQ: usize = 32;
const CHANNELS: usize = 64;
const HEADS: usize = 4;
const VOCAB: usize = 500;
const HIDDEN: usize = 4 * CHANNELS;

/// Deterministic pseudo-random data in [-1, 1) from a 64-bit LCG.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn zeros(backend: &CpuBackend, dims: &[usize]) -> Tensor {
    backend.zeros(dims).expect("zeros")
}

/// Runs a small encoder-layer step and returns the bits of every output.
fn run_step(backend: &CpuBackend) -> Vec<Vec<u32>> {
    let rows = BATCH * SEQ;
    let btc = [BATCH, SEQ, CHANNELS];
    let ids: Vec<u32> = (0..rows as u32)
        .map(|i| (i * 7919) % VOCAB as u32)
        .collect();
    let mask: Vec<u32> = (0..rows)
        .map(|i| u32::from(i % SEQ < SEQ - (i / SEQ) * 5))
        .collect();
    let targets: Vec<u32> = (0..rows as u32)
        .map(|i| {
            if i % 4 == 0 {
                (i * 31) % VOCAB as u32
            } else {
                u32::MAX
            }
        })
        .collect();

    let ids = backend.upload_u32(&ids, &[BATCH, SEQ]).expect("ids");
    let mask = backend.upload_u32(&mask, &[BATCH, SEQ]).expect("mask");
    let targets = backend.upload_u32(&targets, &[rows]).expect("targets");
    let mut table = backend
        .upload(&data(VOCAB * CHANNELS, 1), &[VOCAB, CHANNELS])
        .expect("table");
    let gamma = backend
        .upload(&data(CHANNELS, 2), &[CHANNELS])
        .expect("gamma");
    let beta = backend
        .upload(&data(CHANNELS, 3), &[CHANNELS])
        .expect("beta");
    let w_up = backend
        .upload(&data(CHANNELS * HIDDEN, 4), &[CHANNELS, HIDDEN])
        .expect("w_up");
    let bias_up = backend
        .upload(&data(HIDDEN, 5), &[HIDDEN])
        .expect("bias_up");

    // Forward: embedding, layer norm, self-attention, MLP up-projection, GELU, dropout, tied output and loss.
    let mut x = zeros(backend, &btc);
    backend.embedding(&ids, &table, &mut x).expect("embedding");
    let (mut ln, mut mean, mut rstd) = (
        zeros(backend, &btc),
        zeros(backend, &[BATCH, SEQ]),
        zeros(backend, &[BATCH, SEQ]),
    );
    backend
        .layer_norm(&x, &gamma, &beta, 1e-5, &mut ln, &mut mean, &mut rstd)
        .expect("layer_norm");
    let (mut att, mut probs) = (
        zeros(backend, &btc),
        zeros(backend, &[BATCH, HEADS, SEQ, SEQ]),
    );
    backend
        .attention(&ln, &ln, &ln, &mask, HEADS, &mut att, &mut probs)
        .expect("attention");
    let att_rows = att.reshape(&[rows, CHANNELS]).expect("reshape");
    let mut up = zeros(backend, &[rows, HIDDEN]);
    backend
        .matmul(&att_rows, &w_up, &mut up, MatmulOptions::default())
        .expect("matmul");
    let mut up_biased = zeros(backend, &[rows, HIDDEN]);
    backend
        .bias_add(&up, &bias_up, &mut up_biased)
        .expect("bias_add");
    let mut act = zeros(backend, &[rows, HIDDEN]);
    backend.gelu(&up_biased, &mut act).expect("gelu");
    let mut dropped = zeros(backend, &[rows, HIDDEN]);
    backend
        .dropout(&act, 0.1, 42, &mut dropped)
        .expect("dropout");
    let mut down = zeros(backend, &[rows, CHANNELS]);
    backend
        .matmul(
            &dropped,
            &w_up,
            &mut down,
            MatmulOptions {
                transpose_b: true,
                ..Default::default()
            },
        )
        .expect("matmul");
    let mut logits = zeros(backend, &[rows, VOCAB]);
    backend
        .matmul(
            &down,
            &table,
            &mut logits,
            MatmulOptions {
                transpose_b: true,
                ..Default::default()
            },
        )
        .expect("matmul");
    let (mut loss, mut lse) = (zeros(backend, &[1]), zeros(backend, &[rows]));
    backend
        .cross_entropy(&logits, &targets, u32::MAX, &mut loss, &mut lse)
        .expect("cross_entropy");

    // Backward through the same ops, then one optimizer step with clipping.
    let dloss = backend.upload(&[1.0], &[1]).expect("dloss");
    let mut dlogits = zeros(backend, &[rows, VOCAB]);
    backend
        .cross_entropy_backward(&dloss, &logits, &targets, u32::MAX, &lse, &mut dlogits)
        .expect("cross_entropy_backward");
    let mut dtable = zeros(backend, &[VOCAB, CHANNELS]);
    backend
        .matmul(
            &dlogits,
            &down,
            &mut dtable,
            MatmulOptions {
                transpose_a: true,
                accumulate: true,
                ..Default::default()
            },
        )
        .expect("matmul");
    let mut ddown = zeros(backend, &[rows, CHANNELS]);
    backend
        .matmul(&dlogits, &table, &mut ddown, MatmulOptions::default())
        .expect("matmul");
    let mut ddropped = zeros(backend, &[rows, HIDDEN]);
    backend
        .matmul(&ddown, &w_up, &mut ddropped, MatmulOptions::default())
        .expect("matmul");
    let mut dact = zeros(backend, &[rows, HIDDEN]);
    backend
        .dropout_backward(&ddropped, 0.1, 42, &mut dact)
        .expect("dropout_backward");
    let mut dup = zeros(backend, &[rows, HIDDEN]);
    backend
        .gelu_backward(&dact, &up_biased, &mut dup)
        .expect("gelu_backward");
    let mut dbias_up = zeros(backend, &[HIDDEN]);
    backend
        .bias_add_backward(&dup, &mut dbias_up)
        .expect("bias_add_backward");
    let mut datt_rows = zeros(backend, &[rows, CHANNELS]);
    backend
        .matmul(
            &dup,
            &w_up,
            &mut datt_rows,
            MatmulOptions {
                transpose_b: true,
                ..Default::default()
            },
        )
        .expect("matmul");
    let datt = datt_rows.reshape(&btc).expect("reshape");
    let (mut dq, mut dk, mut dv) = (
        zeros(backend, &btc),
        zeros(backend, &btc),
        zeros(backend, &btc),
    );
    backend
        .attention_backward(
            &datt, &ln, &ln, &ln, &probs, HEADS, &mut dq, &mut dk, &mut dv,
        )
        .expect("attention_backward");
    backend.accumulate(&dk, &mut dq).expect("accumulate");
    backend.accumulate(&dv, &mut dq).expect("accumulate");
    let (mut dx, mut dgamma, mut dbeta) = (
        zeros(backend, &btc),
        zeros(backend, &[CHANNELS]),
        zeros(backend, &[CHANNELS]),
    );
    backend
        .layer_norm_backward(
            &dq,
            &x,
            &gamma,
            &mean,
            &rstd,
            &mut dx,
            &mut dgamma,
            &mut dbeta,
        )
        .expect("layer_norm_backward");
    backend
        .embedding_backward(&dx, &ids, &mut dtable)
        .expect("embedding_backward");

    let mut norm = zeros(backend, &[1]);
    backend
        .clip_grad_norm(
            &mut [&mut dtable, &mut dgamma, &mut dbeta, &mut dbias_up],
            0.5,
            &mut norm,
        )
        .expect("clip_grad_norm");
    let (mut m, mut v) = (
        zeros(backend, &[VOCAB, CHANNELS]),
        zeros(backend, &[VOCAB, CHANNELS]),
    );
    backend
        .adamw_step(
            &mut table,
            &dtable,
            &mut m,
            &mut v,
            &AdamWConfig::default(),
            1,
        )
        .expect("adamw_step");
    let mut total = zeros(backend, &[1]);
    backend.sum(&logits, &mut total).expect("sum");

    let outputs = [
        &x, &ln, &att, &probs, &act, &dropped, &logits, &loss, &lse, &dlogits, &dq, &dx, &dgamma,
        &dbeta, &dbias_up, &norm, &table, &m, &v, &total,
    ];
    outputs
        .iter()
        .map(|tensor| {
            backend
                .download(tensor)
                .expect("download")
                .iter()
                .map(|value| value.to_bits())
                .collect()
        })
        .collect()
}

/// Runs a matmul large enough for gemm to split it across threads and into
/// several blocks of the inner dimension, and returns the output bits.
fn run_large_matmul(backend: &CpuBackend) -> Vec<u32> {
    let (m, k, n) = (256, 1100, 384);
    let a = backend.upload(&data(m * k, 10), &[m, k]).expect("a");
    let b = backend.upload(&data(k * n, 11), &[k, n]).expect("b");
    let mut out = backend.zeros(&[m, n]).expect("out");
    backend
        .matmul(&a, &b, &mut out, MatmulOptions::default())
        .expect("matmul");
    backend
        .download(&out)
        .expect("download")
        .iter()
        .map(|value| value.to_bits())
        .collect()
}

#[test]
fn same_thread_count_bit_identical() {
    let first = CpuBackend::with_threads(2).expect("pool");
    let second = CpuBackend::with_threads(2).expect("pool");
    let reference = run_step(&first);
    assert_eq!(
        run_step(&first),
        reference,
        "second run on the same backend"
    );
    assert_eq!(
        run_step(&second),
        reference,
        "run on a second backend with the same thread count"
    );
    let matmul = run_large_matmul(&first);
    assert_eq!(run_large_matmul(&second), matmul, "large matmul");
}

#[test]
fn thread_counts_bit_identical() {
    let one = CpuBackend::with_threads(1).expect("pool");
    let two = CpuBackend::with_threads(2).expect("pool");
    let three = CpuBackend::with_threads(3).expect("pool");
    let reference = run_step(&one);
    assert_eq!(run_step(&two), reference, "2 threads against 1");
    assert_eq!(run_step(&three), reference, "3 threads against 1");
    let matmul = run_large_matmul(&one);
    assert_eq!(
        run_large_matmul(&two),
        matmul,
        "large matmul, 2 threads against 1"
    );
    assert_eq!(
        run_large_matmul(&three),
        matmul,
        "large matmul, 3 threads against 1"
    );
}
