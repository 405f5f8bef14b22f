//! `select_backend`: turns a `--device` value into a backend, and
//! `DeviceError`, the error for a device that cannot be found or opened.
//!
//! | value | backend |
//! |---|---|
//! | `auto` | the first discrete GPU, else the first integrated or virtual GPU, else `CpuBackend` |
//! | `cpu` | `CpuBackend` on rayon's global pool |
//! | `gpu` | the first discrete, integrated or virtual GPU, or an error |
//! | `software` | a software Vulkan adapter such as Mesa's lavapipe (llvmpipe), or an error |
//! | anything else | the first adapter whose name contains the value, ignoring case |
//!
//! `auto` never picks a software adapter: lavapipe is slower than
//! `CpuBackend` and is meant for testing the WGSL kernels without a GPU.
//! Without the `wgpu` cargo feature only `auto` and `cpu` work.
//!
//! ```no_run
//! let backend = flywheel_kernels::select_backend("auto")?;
//! println!("{} on {}", backend.name(), backend.device_name());
//! # Ok::<(), flywheel_kernels::DeviceError>(())
//! ```

use crate::backend::Backend;
use crate::cpu::CpuBackend;

/// Failure to find or open the device that a `--device` value names.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No adapter matches the request.
    #[error("no wgpu adapter matches device `{request}`; {available}")]
    NoAdapter {
        request: String,
        /// The adapters found and what to pass instead, or how to install one.
        available: String,
    },

    /// The adapter was found but creating a device on it failed.
    #[error("failed to open adapter `{adapter}`: {reason}")]
    OpenFailed { adapter: String, reason: String },

    /// The value needs the GPU backend, and this build has none.
    #[error(
        "device `{request}` needs the wgpu backend, but flywheel-kernels was built without \
         its `wgpu` feature; rebuild with default features or pass `--device cpu`"
    )]
    WgpuDisabled { request: String },
}

/// Opens the backend that `device` names (see the module docs for the values).
pub fn select_backend(device: &str) -> Result<Box<dyn Backend>, DeviceError> {
    match device {
        "cpu" => Ok(Box::new(CpuBackend::new())),
        "auto" => auto_backend(),
        _ => open_gpu(device),
    }
}

/// Opens the best hardware GPU, or the CPU backend when there is none. A GPU
/// that exists but fails to open is an error rather than a silent fallback
/// to the much slower CPU.
#[cfg(feature = "wgpu")]
fn auto_backend() -> Result<Box<dyn Backend>, DeviceError> {
    match crate::wgpu::GpuBackend::open("gpu") {
        Ok(backend) => Ok(Box::new(backend)),
        Err(DeviceError::NoAdapter { .. }) => Ok(Box::new(CpuBackend::new())),
        Err(error) => Err(error),
    }
}

#[cfg(not(feature = "wgpu"))]
fn auto_backend() -> Result<Box<dyn Backend>, DeviceError> {
    Ok(Box::new(CpuBackend::new()))
}

#[cfg(feature = "wgpu")]
fn open_gpu(device: &str) -> Result<Box<dyn Backend>, DeviceError> {
    Ok(Box::new(crate::wgpu::GpuBackend::open(device)?))
}

#[cfg(not(feature = "wgpu"))]
fn open_gpu(device: &str) -> Result<Box<dyn Backend>, DeviceError> {
    Err(DeviceError::WgpuDisabled {
        request: device.to_string(),
    })
}
