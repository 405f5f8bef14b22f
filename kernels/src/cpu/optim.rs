//! CPU `OptimOps`: a fused AdamW pass over four streams, and global-norm
//! clipping with per-tensor sums of squares combined in argument order.

use rayon::prelude::*;

use super::CpuBackend;
use super::parallel::{ELEMENT_CHUNK, chunked_sum};
use super::simd::{dispatch, sum_by};
use super::storage::{read, write};
use crate::backend::{AdamWConfig, OptimOps, check_adamw, check_clip};
use crate::error::Result;
use crate::tensor::Tensor;

/// Updates one chunk of parameters and moments.
// param, grad, m, v: (N)
#[inline(always)]
fn adamw_chunk(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamWConfig,
    bias1: f32,
    bias2: f32,
) {
    let AdamWConfig {
        lr,
        beta1,
        beta2,
        eps,
        weight_decay,
    } = *config;
    let moments = m.iter_mut().zip(v.iter_mut());
    for ((param, &grad), (m, v)) in param.iter_mut().zip(grad).zip(moments) {
        *m = beta1 * *m + (1.0 - beta1) * grad;
        *v = beta2 * *v + (1.0 - beta2) * grad * grad;
        let m_hat = *m / bias1;
        let v_hat = *v / bias2;
        *param -= lr * (m_hat / (v_hat.sqrt() + eps) + weight_decay * *param);
    }
}

impl OptimOps for CpuBackend {
    fn adamw_step(
        &self,
        param: &mut Tensor,
        grad: &Tensor,
        m: &mut Tensor,
        v: &mut Tensor,
        config: &AdamWConfig,
        step: u32,
    ) -> Result<()> {
        const OP: &str = "adamw_step";
        check_adamw(param, grad, m, v, config, step)?;
        let grad = read::<f32>(OP, "grad", grad)?;
        let mut param = write::<f32>(OP, "param", param)?;
        let mut m = write::<f32>(OP, "m", m)?;
        let mut v = write::<f32>(OP, "v", v)?;
        let (grad, param, m, v): (&[f32], &mut [f32], &mut [f32], &mut [f32]) =
            (&grad, &mut param, &mut m, &mut v);

        // Bias corrections 1 - betaᵗ, computed in f64 so that large steps do not lose digits.
        let bias1 = (1.0 - (config.beta1 as f64).powi(step as i32)) as f32;
        let bias2 = (1.0 - (config.beta2 as f64).powi(step as i32)) as f32;
        let config = *config;
        self.install(|| {
            param
                .par_chunks_mut(ELEMENT_CHUNK)
                .zip(grad.par_chunks(ELEMENT_CHUNK))
                .zip(
                    m.par_chunks_mut(ELEMENT_CHUNK)
                        .zip(v.par_chunks_mut(ELEMENT_CHUNK)),
                )
                .for_each(|((param, grad), (m, v))| {
                    dispatch(
                        #[inline(always)]
                        || adamw_chunk(param, grad, m, v, &config, bias1, bias2),
                    )
                })
        });
        Ok(())
    }

    fn clip_grad_norm(
        &self,
        grads: &mut [&mut Tensor],
        max_norm: f32,
        norm: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "clip_grad_norm";
        check_clip(grads, max_norm, norm)?;
        let mut norm = write::<f32>(OP, "norm", norm)?;

        let mut squares = 0.0f64;
        for grad in grads.iter() {
            let grad = read::<f32>(OP, "grads", grad)?;
            let grad: &[f32] = &grad;
            squares += self.install(|| {
                chunked_sum(grad, |chunk| {
                    dispatch(
                        #[inline(always)]
                        || sum_by(chunk, |value| value * value),
                    )
                })
            });
        }
        let total = squares.sqrt();
        norm[0] = total as f32;

        if total > max_norm as f64 {
            let scale = (max_norm as f64 / (total + 1e-6)) as f32;
            for grad in grads.iter_mut() {
                let mut grad = write::<f32>(OP, "grads", grad)?;
                let grad: &mut [f32] = &mut grad;
                self.install(|| {
                    grad.par_chunks_mut(ELEMENT_CHUNK).for_each(|chunk| {
                        for value in chunk {
                            *value *= scale;
                        }
                    })
                });
            }
        }
        Ok(())
    }
}
