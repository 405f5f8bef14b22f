//! Runs the backend conformance suite against the wgpu backend, with the
//! same checks and tolerances as the CPU backend.
//!
//! The adapter comes from `FLYWHEEL_TEST_DEVICE` (`gpu`, `software` or an
//! adapter name substring); without it the tests take the best hardware GPU
//! and otherwise a software adapter such as Mesa's lavapipe. One backend is
//! shared by all tests, so each pipeline is compiled once.
//!
//! Without any adapter the tests pass after printing how to install one,
//! except with `CI=true`, where a missing adapter fails every test.

use std::sync::OnceLock;

use flywheel_kernels::wgpu::GpuBackend;

/// The shared backend, or `None` when no adapter exists outside CI.
pub fn backend() -> Option<&'static GpuBackend> {
    static BACKEND: OnceLock<Option<GpuBackend>> = OnceLock::new();
    BACKEND.get_or_init(open).as_ref()
}

fn open() -> Option<GpuBackend> {
    let requests = match std::env::var("FLYWHEEL_TEST_DEVICE") {
        Ok(request) => vec![request],
        Err(_) => vec!["gpu".to_string(), "software".to_string()],
    };
    let mut errors = Vec::new();
    for request in &requests {
        match GpuBackend::open(request) {
            Ok(backend) => {
                eprintln!("wgpu conformance on {}", backend.adapter().name);
                return Some(backend);
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    let message = format!(
        "no wgpu adapter for the wgpu conformance tests ({}).\n\
         Install a Vulkan driver; for the software adapter on Debian or Ubuntu run\n\
         `apt-get install mesa-vulkan-drivers libvulkan1`.",
        errors.join("; ")
    );
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{message}\nCI=true, so a missing adapter fails the tests.");
    }
    eprintln!("\n!!!!!!!!!! SKIPPING the wgpu conformance tests !!!!!!!!!!\n{message}\n");
    None
}

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
