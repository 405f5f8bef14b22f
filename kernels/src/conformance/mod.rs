//! The backend conformance suite: one set of checks, written once, that
//! every `Backend` must pass, and the f64 `reference` it compares against.
//!
//! Each `check_*` function takes `&dyn Backend` and runs one op family on
//! seeded random inputs at several shapes, including odd sizes and sizes that
//! cross the CPU backend's chunk boundaries. Outputs start filled with NaN, so
//! an element that an op fails to write cannot pass. Parameter gradients
//! start with random values, so an op that overwrites them instead of adding
//! fails. Results must lie within error bounds derived in `harness` and named
//! in each check file. Every gradient is compared with the f64 analytic
//! gradient at every shape and, at a small shape, with central finite
//! differences of the f64 forward. Each family also checks that a
//! mismatched shape is rejected before any output is written. A failed check
//! panics with the op, the shape and the worst element.
//!
//! A backend's test file gets one test per check from `conformance_tests!`:
//!
//! ```ignore
//! flywheel_kernels::conformance_tests!(flywheel_kernels::CpuBackend::with_threads(2).unwrap());
//! ```

mod attention;
mod dropout;
mod elementwise;
mod embedding;
pub mod harness;
mod loss;
mod matmul;
mod norm;
mod optim;
mod reduce;
pub mod reference;
mod storage;

pub use attention::check_attention;
pub use dropout::check_dropout;
pub use elementwise::{check_bias_add, check_gelu, check_residual, check_tanh};
pub use embedding::check_embedding;
pub use loss::{check_bce_with_logits, check_cross_entropy, check_mse, check_pairwise_logistic};
pub use matmul::check_matmul;
pub use norm::check_layer_norm;
pub use optim::{check_adamw, check_clip_grad_norm};
pub use reduce::check_reductions;
pub use storage::check_storage;

use crate::backend::Backend;

/// A conformance check, which panics when the backend fails it.
pub type Check = fn(&dyn Backend);

/// Every check with its name, in the order `run_all` runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("storage", check_storage),
    ("matmul", check_matmul),
    ("bias_add", check_bias_add),
    ("gelu", check_gelu),
    ("tanh", check_tanh),
    ("residual", check_residual),
    ("layer_norm", check_layer_norm),
    ("attention", check_attention),
    ("embedding", check_embedding),
    ("dropout", check_dropout),
    ("cross_entropy", check_cross_entropy),
    ("mse", check_mse),
    ("bce_with_logits", check_bce_with_logits),
    ("pairwise_logistic", check_pairwise_logistic),
    ("adamw", check_adamw),
    ("clip_grad_norm", check_clip_grad_norm),
    ("reductions", check_reductions),
];

/// Runs every check against `backend`, panicking at the first failure.
pub fn run_all(backend: &dyn Backend) {
    for (_, check) in CHECKS {
        check(backend);
    }
}

/// Defines one `#[test]` per conformance check, each building its backend
/// with the given expression.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@tests $backend;
            storage => check_storage,
            matmul => check_matmul,
            bias_add => check_bias_add,
            gelu => check_gelu,
            tanh => check_tanh,
            residual => check_residual,
            layer_norm => check_layer_norm,
            attention => check_attention,
            embedding => check_embedding,
            dropout => check_dropout,
            cross_entropy => check_cross_entropy,
            mse => check_mse,
            bce_with_logits => check_bce_with_logits,
            pairwise_logistic => check_pairwise_logistic,
            adamw => check_adamw,
            clip_grad_norm => check_clip_grad_norm,
            reductions => check_reductions,
        );
    };
    (@tests $backend:expr; $($name:ident => $check:ident,)*) => {
        $(
            #[test]
            fn $name() {
                let backend = $backend;
                $crate::conformance::$check(&backend);
            }
        )*
    };
}
