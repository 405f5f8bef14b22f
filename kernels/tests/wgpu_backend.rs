//! Tests of what the wgpu backend adds to the `Backend` contract: few
//! submits per training step, call-order writes, deterministic results,
//! argument errors, and backend selection. The conformance suite covers
//! the numerics of each op (`conformance_wgpu.rs`).

#![cfg(feature = "wgpu")]

mod wgpu_support;

use flywheel_kernels::prelude::*;
use flywheel_kernels::wgpu::GpuBackend;
use flywheel_kernels::{CpuBackend, DeviceError, select_backend};
use wgpu_support::backend;

/// Sizes of the small BERT-style model below.
const BATCH: usize = 2;
const SEQ: usize = 8;
const CHANNELS: usize = 16;
const HEADS: usize = 2;
const VOCAB: usize = 32;
const ROWS: usize = BATCH * SEQ;

/// Deterministic values in [-0.5, 0.5).
fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 8) as f32 / (1 << 24) as f32 - 0.5
        })
        .collect()
}

/// Parameters of one transformer layer with an embedding and an output head.
struct Model {
    table: Tensor,
    gamma: Tensor,
    beta: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    head: Tensor,
}

impl Model {
    fn new(backend: &dyn Backend) -> Model {
        let tensor = |dims: &[usize], seed: u32| {
            backend
                .upload(&values(dims.iter().product(), seed), dims)
                .expect("upload")
        };
        Model {
            table: tensor(&[VOCAB, CHANNELS], 1),
            gamma: backend
                .upload(&[1.0; CHANNELS], &[CHANNELS])
                .expect("upload"),
            beta: tensor(&[CHANNELS], 2),
            wq: tensor(&[CHANNELS, CHANNELS], 3),
            wk: tensor(&[CHANNELS, CHANNELS], 4),
            wv: tensor(&[CHANNELS, CHANNELS], 5),
            w1: tensor(&[CHANNELS, 4 * CHANNELS], 6),
            b1: tensor(&[4 * CHANNELS], 7),
            w2: tensor(&[4 * CHANNELS, CHANNELS], 8),
            head: tensor(&[CHANNELS, VOCAB], 9),
        }
    }
}

/// Runs one forward and backward pass, gradient clipping and an AdamW
/// update of every parameter, without reading anything back. Returns the
/// loss tensor.
fn training_step(backend: &dyn Backend, model: &mut Model) -> Result<Tensor> {
    let zeros = |dims: &[usize]| backend.zeros(dims);
    let ids: Vec<u32> = (0..ROWS as u32).map(|i| (i * 7) % VOCAB as u32).collect();
    let targets: Vec<u32> = (0..ROWS as u32)
        .map(|i| (i * 5 + 3) % VOCAB as u32)
        .collect();
    let mask: Vec<u32> = (0..ROWS).map(|i| u32::from(i % SEQ < SEQ - 2)).collect();
    let ids = backend.upload_u32(&ids, &[BATCH, SEQ])?;
    let targets = backend.upload_u32(&targets, &[ROWS])?;
    let mask = backend.upload_u32(&mask, &[BATCH, SEQ])?;
    let btc = [BATCH, SEQ, CHANNELS];
    let flat = |tensor: &Tensor, cols: usize| tensor.reshape(&[ROWS, cols]);

    // Forward: embedding, layer norm, attention, residual, MLP, head, loss.
    let mut x = zeros(&btc)?;
    backend.embedding(&ids, &model.table, &mut x)?;
    let (mut normed, mut mean, mut rstd) =
        (zeros(&btc)?, zeros(&[BATCH, SEQ])?, zeros(&[BATCH, SEQ])?);
    backend.layer_norm(
        &x,
        &model.gamma,
        &model.beta,
        1e-5,
        &mut normed,
        &mut mean,
        &mut rstd,
    )?;
    let (mut q, mut k, mut v) = (zeros(&btc)?, zeros(&btc)?, zeros(&btc)?);
    let normed_rows = flat(&normed, CHANNELS)?;
    for (weight, out) in [
        (&model.wq, &mut q),
        (&model.wk, &mut k),
        (&model.wv, &mut v),
    ] {
        backend.matmul(
            &normed_rows,
            weight,
            &mut flat(out, CHANNELS)?,
            MatmulOptions::default(),
        )?;
    }
    let (mut attended, mut probs) = (zeros(&btc)?, zeros(&[BATCH, HEADS, SEQ, SEQ])?);
    backend.attention(&q, &k, &v, &mask, HEADS, &mut attended, &mut probs)?;
    let mut dropped = zeros(&btc)?;
    backend.dropout(&attended, 0.1, 11, &mut dropped)?;
    let mut residual = zeros(&btc)?;
    backend.add(&x, &dropped, &mut residual)?;
    let residual_rows = flat(&residual, CHANNELS)?;
    let (mut hidden, mut biased, mut activated) = (
        zeros(&[ROWS, 4 * CHANNELS])?,
        zeros(&[ROWS, 4 * CHANNELS])?,
        zeros(&[ROWS, 4 * CHANNELS])?,
    );
    backend.matmul(
        &residual_rows,
        &model.w1,
        &mut hidden,
        MatmulOptions::default(),
    )?;
    backend.bias_add(&hidden, &model.b1, &mut biased)?;
    backend.gelu(&biased, &mut activated)?;
    let mut mlp_out = zeros(&[ROWS, CHANNELS])?;
    backend.matmul(
        &activated,
        &model.w2,
        &mut mlp_out,
        MatmulOptions::default(),
    )?;
    let mut output = zeros(&[ROWS, CHANNELS])?;
    backend.add(&residual_rows, &mlp_out, &mut output)?;
    let mut logits = zeros(&[ROWS, VOCAB])?;
    backend.matmul(&output, &model.head, &mut logits, MatmulOptions::default())?;
    let (mut loss, mut lse) = (zeros(&[1])?, zeros(&[ROWS])?);
    backend.cross_entropy(&logits, &targets, u32::MAX, &mut loss, &mut lse)?;

    // Backward, in reverse: head, MLP, residual, dropout, attention, layer norm, embedding.
    let dloss = backend.upload(&[1.0], &[1])?;
    let mut dlogits = zeros(&[ROWS, VOCAB])?;
    backend.cross_entropy_backward(&dloss, &logits, &targets, u32::MAX, &lse, &mut dlogits)?;
    let weight_grad = MatmulOptions {
        transpose_a: true,
        accumulate: true,
        ..Default::default()
    };
    let input_grad = MatmulOptions {
        transpose_b: true,
        ..Default::default()
    };
    let input_grad_sum = MatmulOptions {
        transpose_b: true,
        accumulate: true,
        ..Default::default()
    };
    let mut grads: Vec<Tensor> = [
        &model.table,
        &model.gamma,
        &model.beta,
        &model.wq,
        &model.wk,
        &model.wv,
        &model.w1,
        &model.b1,
        &model.w2,
        &model.head,
    ]
    .iter()
    .map(|param| zeros(param.dims()))
    .collect::<Result<_>>()?;
    let [dtable, dgamma, dbeta, dwq, dwk, dwv, dw1, db1, dw2, dhead] = &mut grads[..] else {
        unreachable!("ten parameters")
    };

    backend.matmul(&output, &dlogits, dhead, weight_grad)?;
    let mut doutput = zeros(&[ROWS, CHANNELS])?;
    backend.matmul(&dlogits, &model.head, &mut doutput, input_grad)?;
    backend.matmul(&activated, &doutput, dw2, weight_grad)?;
    let mut dactivated = zeros(&[ROWS, 4 * CHANNELS])?;
    backend.matmul(&doutput, &model.w2, &mut dactivated, input_grad)?;
    let mut dbiased = zeros(&[ROWS, 4 * CHANNELS])?;
    backend.gelu_backward(&dactivated, &biased, &mut dbiased)?;
    backend.bias_add_backward(&dbiased, db1)?;
    backend.matmul(&residual_rows, &dbiased, dw1, weight_grad)?;
    // output = residual + mlp(residual): both branches add into dresidual.
    let mut dresidual = zeros(&[ROWS, CHANNELS])?;
    backend.matmul(&dbiased, &model.w1, &mut dresidual, input_grad)?;
    backend.accumulate(&doutput, &mut dresidual)?;
    let dresidual = dresidual.reshape(&btc)?;
    let mut dattended = zeros(&btc)?;
    backend.dropout_backward(&dresidual, 0.1, 11, &mut dattended)?;
    let (mut dq, mut dk, mut dv) = (zeros(&btc)?, zeros(&btc)?, zeros(&btc)?);
    backend.attention_backward(
        &dattended, &q, &k, &v, &probs, HEADS, &mut dq, &mut dk, &mut dv,
    )?;
    let mut dnormed = zeros(&[ROWS, CHANNELS])?;
    for (index, (weight, dweight, dproj)) in [
        (&model.wq, &mut *dwq, &dq),
        (&model.wk, &mut *dwk, &dk),
        (&model.wv, &mut *dwv, &dv),
    ]
    .into_iter()
    .enumerate()
    {
        let dproj = flat(dproj, CHANNELS)?;
        backend.matmul(&normed_rows, &dproj, dweight, weight_grad)?;
        let options = if index == 0 {
            input_grad
        } else {
            input_grad_sum
        };
        backend.matmul(&dproj, weight, &mut dnormed, options)?;
    }
    let mut dx = zeros(&btc)?;
    let dnormed = dnormed.reshape(&btc)?;
    backend.layer_norm_backward(
        &dnormed,
        &x,
        &model.gamma,
        &mean,
        &rstd,
        &mut dx,
        dgamma,
        dbeta,
    )?;
    // x feeds the layer norm and the residual sum.
    backend.accumulate(&dresidual, &mut dx)?;
    backend.embedding_backward(&dx, &ids, dtable)?;

    // Clip and update every parameter.
    let mut norm = zeros(&[1])?;
    let mut grad_refs: Vec<&mut Tensor> = grads.iter_mut().collect();
    backend.clip_grad_norm(&mut grad_refs, 1.0, &mut norm)?;
    let config = AdamWConfig::default();
    let params = [
        &mut model.table,
        &mut model.gamma,
        &mut model.beta,
        &mut model.wq,
        &mut model.wk,
        &mut model.wv,
        &mut model.w1,
        &mut model.b1,
        &mut model.w2,
        &mut model.head,
    ];
    for (param, grad) in params.into_iter().zip(&grads) {
        let (mut m, mut v) = (zeros(param.dims())?, zeros(param.dims())?);
        backend.adamw_step(param, grad, &mut m, &mut v, &config, 1)?;
    }
    Ok(loss)
}

#[test]
fn training_step_submits_once() {
    let Some(gpu) = wgpu_support::open() else {
        return;
    };
    let gpu = &gpu;
    let mut model = Model::new(gpu);
    let (submits, dispatches) = (gpu.submit_count(), gpu.dispatch_count());
    let loss = training_step(gpu, &mut model).expect("training step");
    let recorded = gpu.dispatch_count() - dispatches;
    assert_eq!(
        gpu.submit_count(),
        submits,
        "the step submitted before anything was read back"
    );
    let loss = gpu.download(&loss).expect("download the loss");
    assert_eq!(
        gpu.submit_count() - submits,
        1,
        "reading the loss after {recorded} dispatches took more than one submit"
    );
    assert!(
        recorded >= 60,
        "the step recorded only {recorded} dispatches"
    );
    assert!(loss[0].is_finite(), "loss {}", loss[0]);
}

#[test]
fn training_step_matches_cpu() {
    let Some(gpu) = backend() else { return };
    let cpu = CpuBackend::with_threads(1).expect("build a 1-thread pool");
    let mut gpu_model = Model::new(gpu);
    let mut cpu_model = Model::new(&cpu);
    let gpu_loss = gpu
        .download(&training_step(gpu, &mut gpu_model).expect("gpu step"))
        .unwrap();
    let cpu_loss = cpu
        .download(&training_step(&cpu, &mut cpu_model).expect("cpu step"))
        .unwrap();
    // Both sum in f32 in different orders through about 20 ops of O(1) values.
    assert!(
        (gpu_loss[0] - cpu_loss[0]).abs() <= 1e-5 * cpu_loss[0].abs().max(1.0),
        "loss on the GPU {} and on the CPU {}",
        gpu_loss[0],
        cpu_loss[0]
    );
    // The first AdamW step moves each weight by about lr = 1e-4, so 1e-6
    // catches a wrong or missing gradient.
    for (name, gpu_param, cpu_param) in [
        ("table", &gpu_model.table, &cpu_model.table),
        ("gamma", &gpu_model.gamma, &cpu_model.gamma),
        ("wq", &gpu_model.wq, &cpu_model.wq),
        ("head", &gpu_model.head, &cpu_model.head),
    ] {
        let (gpu_values, cpu_values) = (
            gpu.download(gpu_param).unwrap(),
            cpu.download(cpu_param).unwrap(),
        );
        for (index, (g, c)) in gpu_values.iter().zip(&cpu_values).enumerate() {
            assert!(
                (g - c).abs() <= 1e-6,
                "updated {name}[{index}]: GPU {g}, CPU {c}"
            );
        }
    }
}

#[test]
fn arena_overflow_submits_early() {
    let Some(gpu) = wgpu_support::open() else {
        return;
    };
    let mut tensor = gpu.zeros(&[3]).expect("zeros");
    let submits = gpu.submit_count();
    let fills = gpu.max_dispatches_per_submit() + 10;
    for index in 0..fills {
        gpu.fill(&mut tensor, index as f32).expect("fill");
    }
    assert_eq!(gpu.download(&tensor).unwrap(), [(fills - 1) as f32; 3]);
    let used = gpu.submit_count() - submits;
    assert_eq!(used, 2, "{fills} fills and a download took {used} submits");
}

#[test]
fn write_takes_effect_in_call_order() {
    let Some(gpu) = backend() else { return };
    let mut x = gpu.upload(&[1.0, 2.0], &[2]).expect("upload");
    let mut before = gpu.zeros(&[2]).expect("zeros");
    let mut after = gpu.zeros(&[2]).expect("zeros");
    gpu.copy(&x, &mut before).expect("copy");
    gpu.write(&mut x, &[5.0, 6.0]).expect("write");
    gpu.copy(&x, &mut after).expect("copy");
    gpu.fill(&mut x, 9.0).expect("fill");
    assert_eq!(gpu.download(&before).unwrap(), [1.0, 2.0]);
    assert_eq!(gpu.download(&after).unwrap(), [5.0, 6.0]);
    assert_eq!(gpu.download(&x).unwrap(), [9.0, 9.0]);
}

#[test]
fn repeated_calls_give_identical_bits() {
    let Some(gpu) = backend() else { return };
    let a = gpu.upload(&values(70 * 90, 21), &[70, 90]).unwrap();
    let b = gpu.upload(&values(90 * 50, 22), &[90, 50]).unwrap();
    let x = gpu.upload(&values(100_003, 23), &[100_003]).unwrap();
    let run = || {
        let mut product = gpu.zeros(&[70, 50]).unwrap();
        gpu.matmul(&a, &b, &mut product, MatmulOptions::default())
            .unwrap();
        let mut total = gpu.zeros(&[1]).unwrap();
        gpu.sum(&x, &mut total).unwrap();
        let mut bits: Vec<u32> = gpu
            .download(&product)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        bits.extend(gpu.download(&total).unwrap().iter().map(|v| v.to_bits()));
        bits
    };
    assert_eq!(run(), run());
}

#[test]
fn oversized_tensor_names_shape_and_limit() {
    let Some(gpu) = backend() else { return };
    let limit = gpu.max_tensor_bytes();
    let elements = (limit / 4 + 1) as usize;
    let error = gpu
        .zeros(&[elements])
        .expect_err("a tensor over the binding limit");
    let message = error.to_string();
    assert!(
        matches!(
            error,
            KernelError::InvalidArgument {
                op: "zeros",
                argument: "dims",
                ..
            }
        ),
        "unexpected error: {message}"
    );
    for part in [
        format!("({elements})"),
        format!("{} bytes", elements * 4),
        format!("{limit} bytes"),
    ] {
        assert!(
            message.contains(&part),
            "`{message}` does not mention {part}"
        );
    }
}

#[test]
fn aliased_output_rejected() {
    let Some(gpu) = backend() else { return };
    let x = gpu.upload(&[1.0; 4], &[2, 2]).unwrap();
    let mut alias = x.reshape(&[4]).unwrap().reshape(&[2, 2]).unwrap();
    let result = gpu.gelu(&x, &mut alias);
    assert!(
        matches!(
            result,
            Err(KernelError::Aliased {
                op: "gelu",
                argument: "out"
            })
        ),
        "{result:?}"
    );
}

#[test]
fn cpu_tensor_rejected() {
    let Some(gpu) = backend() else { return };
    let cpu = CpuBackend::with_threads(1).unwrap();
    let x = cpu.upload(&[1.0; 4], &[4]).unwrap();
    let mut out = gpu.zeros(&[4]).unwrap();
    let result = gpu.gelu(&x, &mut out);
    assert!(
        matches!(
            result,
            Err(KernelError::ForeignTensor {
                op: "gelu",
                argument: "x",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn out_of_range_ids_rejected() {
    let Some(gpu) = backend() else { return };
    let ids = gpu.upload_u32(&[0, 5, 2], &[3]).unwrap();
    let table = gpu.zeros(&[4, 2]).unwrap();
    let mut out = gpu.zeros(&[3, 2]).unwrap();
    let result = gpu.embedding(&ids, &table, &mut out);
    assert!(
        matches!(
            result,
            Err(KernelError::IndexOutOfRange {
                index: 5,
                position: 1,
                limit: 4,
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn select_backend_cpu_and_unknown() {
    let cpu = select_backend("cpu").expect("the cpu backend always opens");
    assert_eq!(cpu.name(), "cpu");
    match select_backend("no-such-adapter-name") {
        Err(DeviceError::NoAdapter { request, .. }) => assert_eq!(request, "no-such-adapter-name"),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(backend) => panic!("opened {} for an unknown name", backend.device_name()),
    }
}

#[test]
fn select_backend_software_by_name() {
    let Some(gpu) = backend() else { return };
    let name = gpu.adapter().name;
    let opened = GpuBackend::open(&name.to_uppercase()).expect("open by name, ignoring case");
    assert_eq!(opened.adapter().name, name);
}
