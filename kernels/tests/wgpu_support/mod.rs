//! The wgpu backend shared by the wgpu test files.
//!
//! The adapter comes from `FLYWHEEL_TEST_DEVICE`: `gpu`, `software` or an
//! adapter name substring. Without it the tests take the best hardware GPU
//! and otherwise a software adapter such as Mesa's lavapipe. One backend is
//! shared by all tests of a file, so each pipeline is compiled once.
//!
//! Without any adapter the tests pass after printing how to install one,
//! except with `CI=true`, where a missing adapter fails every test.

use std::sync::OnceLock;

use flywheel_kernels::wgpu::GpuBackend;

/// Returns the shared backend, or `None` when no adapter exists outside CI.
pub fn backend() -> Option<&'static GpuBackend> {
    static BACKEND: OnceLock<Option<GpuBackend>> = OnceLock::new();
    BACKEND.get_or_init(open).as_ref()
}

/// Opens a backend of its own, for tests that count submits, which other
/// tests running at the same time would disturb on the shared backend.
pub fn open() -> Option<GpuBackend> {
    let requests = match std::env::var("FLYWHEEL_TEST_DEVICE") {
        Ok(request) => vec![request],
        Err(_) => vec!["gpu".to_string(), "software".to_string()],
    };
    let mut errors = Vec::new();
    for request in &requests {
        match GpuBackend::open(request) {
            Ok(backend) => {
                eprintln!("wgpu tests on {}", backend.adapter().name);
                return Some(backend);
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    let message = format!(
        "no wgpu adapter for the wgpu tests:\n  {}\n\
         Install a Vulkan driver; for the software adapter on Debian or Ubuntu run\n\
         `apt-get install mesa-vulkan-drivers libvulkan1`.",
        errors.join("\n  ")
    );
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{message}\nCI=true, so a missing adapter fails the tests.");
    }
    eprintln!("\n!!!!!!!!!! SKIPPING the wgpu tests !!!!!!!!!!\n{message}\n");
    None
}
