//! Runs the backend conformance suite against the wgpu backend, with the
//! same checks and tolerances as the CPU backend. See `wgpu_support` for
//! how the adapter is chosen and when the tests skip.

#![cfg(feature = "wgpu")]

mod wgpu_support;

use wgpu_support::backend;

macro_rules! conformance_checks {
    ($($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if let Some(backend) = backend() {
                    flywheel_kernels::conformance::$check(backend);
                }
            }
        )*
    };
}

conformance_checks!(
    check_storage,
    check_matmul,
    check_bias_add,
    check_gelu,
    check_tanh,
    check_residual,
    check_layer_norm,
    check_attention,
    check_embedding,
    check_dropout,
    check_cross_entropy,
    check_mse,
    check_bce_with_logits,
    check_pairwise_logistic,
    check_adamw,
    check_clip_grad_norm,
    check_reductions,
);
