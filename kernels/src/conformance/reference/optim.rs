//! Reference AdamW step in f64.

use crate::backend::AdamWConfig;

/// Parameters and moment estimates of one tensor.
#[derive(Clone, Debug)]
pub struct AdamWState {
    pub param: Vec<f64>,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
}

/// Applies one AdamW step at `step` (1-based), with hyperparameters widened to f64.
pub fn adamw_step(state: &mut AdamWState, grad: &[f64], config: &AdamWConfig, step: u32) {
    let (lr, beta1, beta2) = (config.lr as f64, config.beta1 as f64, config.beta2 as f64);
    let (eps, weight_decay) = (config.eps as f64, config.weight_decay as f64);
    let bias1 = 1.0 - beta1.powi(step as i32);
    let bias2 = 1.0 - beta2.powi(step as i32);
    let moments = state.m.iter_mut().zip(state.v.iter_mut());
    for ((param, &grad), (m, v)) in state.param.iter_mut().zip(grad).zip(moments) {
        *m = beta1 * *m + (1.0 - beta1) * grad;
        *v = beta2 * *v + (1.0 - beta2) * grad * grad;
        let update = (*m / bias1) / ((*v / bias2).sqrt() + eps);
        *param -= lr * (update + weight_decay * *param);
    }
}
