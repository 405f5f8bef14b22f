//! Checks of `adamw_step` and `clip_grad_norm`.
//!
//! Bounds, with `u = 2⁻²⁴`:
//! - AdamW: each step rounds the moments a few times and the update about
//!   `ADAMW_ROUNDINGS` times relative to its terms. The error of the moments
//!   carries into later steps, so after `s` steps the bound is
//!   `s·ADAMW_ROUNDINGS·u` times each value's terms.
//! - clipping: the norm sums `n` squares (all positive), so it is within
//!   `(n + 8)·u·norm`, and scaled gradients carry that relative error.

use super::harness::{Rng, UNIT_ROUNDOFF, assert_close, assert_within, download, f64s, upload};
use super::reference::{self, AdamWState};
use crate::backend::{AdamWConfig, Backend};
use crate::error::KernelError;

/// Roundings per AdamW step relative to the magnitude of each term: the
/// bias corrections, the moment updates, the square root, the division and
/// the parameter update.
const ADAMW_ROUNDINGS: f64 = 16.0;

/// Checks several consecutive AdamW steps and a late step against the reference.
pub fn check_adamw(backend: &dyn Backend) {
    let mut rng = Rng::new(0xada);
    let configs = [
        AdamWConfig::default(),
        AdamWConfig {
            lr: 1e-2,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.1,
        },
    ];
    for dims in [&[1][..], &[7], &[4, 4100]] {
        for config in &configs {
            let len: usize = dims.iter().product();
            let param = rng.normal_vec(len, 1.0);
            let mut state = AdamWState {
                param: f64s(&param),
                m: vec![0.0; len],
                v: vec![0.0; len],
            };
            let mut param_t = upload(backend, &param, dims);
            let mut m_t = backend.zeros(dims).expect("zeros");
            let mut v_t = backend.zeros(dims).expect("zeros");
            for (count, step) in [1u32, 2, 3, 1000].into_iter().enumerate() {
                let grad = rng.normal_vec(len, 0.5);
                backend
                    .adamw_step(
                        &mut param_t,
                        &upload(backend, &grad, dims),
                        &mut m_t,
                        &mut v_t,
                        config,
                        step,
                    )
                    .expect("adamw_step");
                // Widen the f32 state after each step, so the reference starts from the same moments.
                let grad64 = f64s(&grad);
                let before = state.clone();
                reference::adamw_step(&mut state, &grad64, config, step);
                let steps = (count + 1) as f64;
                let case = format!("adamw_step {dims:?} {config:?} step {step}");
                let (got_m, got_v, got_param) = (
                    download(backend, &m_t),
                    download(backend, &v_t),
                    download(backend, &param_t),
                );

                let bound_m: Vec<f64> = (0..len)
                    .map(|i| {
                        steps
                            * ADAMW_ROUNDINGS
                            * UNIT_ROUNDOFF
                            * (before.m[i].abs() + grad64[i].abs())
                    })
                    .collect();
                assert_within(&format!("{case} m"), &got_m, &state.m, &bound_m);
                let bound_v: Vec<f64> = (0..len)
                    .map(|i| {
                        steps
                            * ADAMW_ROUNDINGS
                            * UNIT_ROUNDOFF
                            * (before.v[i] + grad64[i] * grad64[i])
                    })
                    .collect();
                assert_within(&format!("{case} v"), &got_v, &state.v, &bound_v);
                // An Adam update is at most about 1/sqrt(1 - beta2) in size; bound it by its terms.
                let bound_param: Vec<f64> = (0..len)
                    .map(|i| {
                        let update = (state.param[i] - before.param[i]).abs();
                        steps
                            * ADAMW_ROUNDINGS
                            * UNIT_ROUNDOFF
                            * (before.param[i].abs() + update + config.lr as f64)
                    })
                    .collect();
                assert_within(
                    &format!("{case} param"),
                    &got_param,
                    &state.param,
                    &bound_param,
                );
                state = AdamWState {
                    param: f64s(&got_param),
                    m: f64s(&got_m),
                    v: f64s(&got_v),
                };
            }
        }
    }

    let param = upload(backend, &[1.0; 3], &[3]);
    let mut param_wrong = upload(backend, &[1.0; 4], &[4]);
    let (mut m, mut v) = (
        backend.zeros(&[3]).expect("zeros"),
        backend.zeros(&[3]).expect("zeros"),
    );
    let result = backend.adamw_step(
        &mut param_wrong,
        &param,
        &mut m,
        &mut v,
        &AdamWConfig::default(),
        1,
    );
    assert!(
        matches!(
            result,
            Err(KernelError::ShapeMismatch {
                op: "adamw_step",
                ..
            })
        ),
        "adamw_step accepted mismatched shapes"
    );
    let mut param = upload(backend, &[1.0; 3], &[3]);
    let grad = upload(backend, &[1.0; 3], &[3]);
    let result = backend.adamw_step(
        &mut param,
        &grad,
        &mut m,
        &mut v,
        &AdamWConfig::default(),
        0,
    );
    assert!(
        matches!(
            result,
            Err(KernelError::InvalidArgument {
                argument: "step",
                ..
            })
        ),
        "adamw_step accepted step 0"
    );
    assert_eq!(
        download(backend, &param),
        [1.0; 3],
        "a rejected step changed the parameters"
    );
}

/// Checks the global norm over several tensors, with and without clipping.
pub fn check_clip_grad_norm(backend: &dyn Backend) {
    let mut rng = Rng::new(0xc11);
    let shapes: [&[usize]; 3] = [&[7], &[3, 5], &[4, 4100]];
    let grads: Vec<Vec<f32>> = shapes
        .iter()
        .map(|dims| rng.normal_vec(dims.iter().product(), 0.1))
        .collect();
    let count: usize = grads.iter().map(Vec::len).sum();
    let norm: f64 = grads
        .iter()
        .flatten()
        .map(|&g| g as f64 * g as f64)
        .sum::<f64>()
        .sqrt();
    let norm_error = (count as f64 + 8.0) * UNIT_ROUNDOFF;

    for max_norm in [2.0 * norm, 0.5 * norm] {
        let mut tensors: Vec<_> = grads
            .iter()
            .zip(shapes)
            .map(|(g, dims)| upload(backend, g, dims))
            .collect();
        let mut norm_t = backend.zeros(&[1]).expect("zeros");
        let mut refs: Vec<_> = tensors.iter_mut().collect();
        backend
            .clip_grad_norm(&mut refs, max_norm as f32, &mut norm_t)
            .expect("clip_grad_norm");
        assert_close(
            &format!("clip_grad_norm norm, max_norm {max_norm}"),
            &download(backend, &norm_t),
            &[norm],
            0.0,
            norm_error,
        );

        let scale = if norm > max_norm as f32 as f64 {
            max_norm as f32 as f64 / (norm + 1e-6)
        } else {
            1.0
        };
        for (tensor, grad) in tensors.iter().zip(&grads) {
            let want: Vec<f64> = grad.iter().map(|&g| g as f64 * scale).collect();
            let rel = if scale == 1.0 {
                0.0
            } else {
                norm_error + 2.0 * UNIT_ROUNDOFF
            };
            assert_close(
                &format!("clip_grad_norm grads, max_norm {max_norm}"),
                &download(backend, tensor),
                &want,
                0.0,
                rel,
            );
        }
    }

    let mut norm_t = backend.zeros(&[2]).expect("zeros");
    let mut grad = upload(backend, &[1.0], &[1]);
    let result = backend.clip_grad_norm(&mut [&mut grad], 1.0, &mut norm_t);
    assert!(
        matches!(
            result,
            Err(KernelError::ShapeMismatch {
                op: "clip_grad_norm",
                ..
            })
        ),
        "clip_grad_norm accepted a (2) norm"
    );
}
