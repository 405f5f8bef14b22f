//! `GpuBackend`: the `Backend` implementation on wgpu, with one WGSL file
//! per op family in `kernels/wgsl`.
//!
//! - **Device.** `GpuBackend::open` takes `gpu`, `software` or an adapter
//!   name substring (see `crate::select` for `auto` and `cpu`) and opens the
//!   adapter with its own limits. `list_adapters` lists what wgpu finds.
//! - **Storage.** Tensors are device buffers (see `buffer`) that stay on the
//!   device for a whole training run.
//! - **Recording.** Ops check their arguments on the host, then record
//!   dispatches into one pending compute pass (see `recorder`). Nothing is
//!   submitted until `download`, `download_u32` or `flush`, and
//!   `submit_count` counts the submits.
//! - **Pipelines.** Each pipeline is created on first use and cached (see
//!   `pipelines`).
//!
//! # Numerics
//!
//! Sums run in a fixed order without float atomics, so repeated calls give
//! identical bits on one device. `exp`, `tanh` and the GELU polynomial
//! follow the CPU backend's formulas (see `common.wgsl`), and dropout uses
//! the same Philox stream, so dropout masks match the CPU bit for bit.
//!
//! # Errors
//!
//! Argument errors are `KernelError`s, as on the CPU. A lost device or a
//! failed read-back panics, because no later result could be trusted.
//!
//! ```no_run
//! use flywheel_kernels::prelude::*;
//! use flywheel_kernels::wgpu::GpuBackend;
//!
//! let backend = GpuBackend::open("gpu")?;
//! let a = backend.upload(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
//! let mut out = backend.zeros(&[2, 2]).unwrap();
//! backend.gelu(&a, &mut out).unwrap();
//! println!("{:?} in {} submits", backend.download(&out).unwrap(), backend.submit_count());
//! # Ok::<(), flywheel_kernels::DeviceError>(())
//! ```

mod adapters;
mod attention;
mod buffer;
mod dropout;
mod elementwise;
mod embedding;
mod loss;
mod matmul;
mod norm;
mod optim;
mod pipelines;
mod recorder;
mod reduce;
mod storage;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use adapters::{AdapterSummary, list_adapters};

use crate::select::DeviceError;

/// Value of `Backend::name` for the wgpu backend.
pub const GPU_BACKEND_NAME: &str = "wgpu";

/// Source of `GpuBackend::id`, which distinguishes the buffers of two backends.
static NEXT_BACKEND_ID: AtomicU64 = AtomicU64::new(1);

/// Backend that runs every op as WGSL compute shaders on one wgpu device.
pub struct GpuBackend {
    device: ::wgpu::Device,
    queue: ::wgpu::Queue,
    info: ::wgpu::AdapterInfo,
    limits: ::wgpu::Limits,
    id: u64,
    pipelines: pipelines::Pipelines,
    pending: Mutex<recorder::Pending>,
    /// Uniform buffer holding every pending dispatch's parameters.
    arena: ::wgpu::Buffer,
    submits: AtomicU64,
    dispatches: AtomicU64,
}

impl GpuBackend {
    /// Opens the adapter that `request` names: `gpu` (the best hardware
    /// GPU, discrete before integrated), `software` (a CPU-emulated adapter
    /// such as Mesa's lavapipe), or a case-insensitive substring of an
    /// adapter name as `list_adapters` prints it.
    pub fn open(request: &str) -> Result<Self, DeviceError> {
        let adapter = adapters::find_adapter(request)?;
        Self::from_adapter(&adapter)
    }

    /// Opens a device on `adapter` with the adapter's own limits.
    pub fn from_adapter(adapter: &::wgpu::Adapter) -> Result<Self, DeviceError> {
        let (device, queue) = adapters::open_device(adapter)?;
        let limits = device.limits();
        let arena = device.create_buffer(&::wgpu::BufferDescriptor {
            label: Some("kernel parameters"),
            size: recorder::ARENA_BYTES,
            usage: ::wgpu::BufferUsages::UNIFORM | ::wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(GpuBackend {
            device,
            queue,
            info: adapter.get_info(),
            limits,
            id: NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed),
            pipelines: pipelines::Pipelines::default(),
            pending: Mutex::new(recorder::Pending::default()),
            arena,
            submits: AtomicU64::new(0),
            dispatches: AtomicU64::new(0),
        })
    }

    /// Number of command buffers submitted to the device so far.
    pub fn submit_count(&self) -> u64 {
        self.submits.load(Ordering::Relaxed)
    }

    /// Kernel launches that fit in one submit: the parameter arena's slot
    /// count. A longer run of ops without a read-back submits early.
    pub fn max_dispatches_per_submit(&self) -> u64 {
        recorder::ARENA_BYTES / self.slot_size()
    }

    /// Number of kernel launches recorded so far.
    pub fn dispatch_count(&self) -> u64 {
        self.dispatches.load(Ordering::Relaxed)
    }

    /// Returns the adapter's name, API, device type and driver.
    pub fn adapter(&self) -> AdapterSummary {
        AdapterSummary {
            name: self.info.name.clone(),
            backend: self.info.backend.to_str().to_string(),
            device_type: adapters::device_type_name(self.info.device_type).to_string(),
            driver: format!("{} {}", self.info.driver, self.info.driver_info)
                .trim()
                .to_string(),
        }
    }

    /// Returns whether the adapter emulates a GPU on the CPU (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        self.info.device_type == ::wgpu::DeviceType::Cpu
    }

    /// Largest tensor in bytes that this device accepts: the smaller of the
    /// storage-binding and buffer-size limits.
    pub fn max_tensor_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }
}
