//! `CpuBackend`: the `Backend` implementation on host memory.
//!
//! Matmuls run on the `gemm` crate (AVX-512 kernels with its `x86-v4`
//! feature) and everything else on rayon, with one file per op family.
//!
//! # Determinism
//!
//! For the same inputs, a `CpuBackend` returns bit-identical results on
//! every run with the same thread count:
//!
//! - Element-wise and row-wise kernels split work into chunks whose size
//!   depends only on the shape, and combine partial sums in chunk order (see
//!   `parallel`), never through rayon's work-stealing reductions.
//! - `gemm` 0.19 splits the inner dimension `k` into blocks that it processes
//!   one after another. It parallelizes only over blocks of output rows and
//!   columns, so each output element is summed in a fixed order whichever
//!   thread computes it. (Read in `gemm-common` 0.19, `gemm_basic_generic`.)
//! - Embedding and pairwise-loss gradients add rows in index order.
//!
//! `tests/cpu_determinism.rs` checks this, and also that 1, 2 and 3 threads
//! give the same bits. Use `CpuBackend::with_threads` for a dedicated pool
//! with a fixed thread count; `CpuBackend::new` uses rayon's global pool.

mod attention;
mod dropout;
mod elementwise;
mod embedding;
mod loss;
mod matmul;
mod norm;
mod optim;
mod parallel;
mod reduce;
mod simd;
mod storage;

use rayon::{ThreadPool, ThreadPoolBuildError, ThreadPoolBuilder};

use crate::backend::Backend;
use crate::check::expect_f32;
use crate::error::{KernelError, Result};
use crate::tensor::{Shape, Tensor};
use storage::{Element, new_tensor, read, write};

/// Value of `Backend::name` for the CPU backend.
pub const CPU_BACKEND_NAME: &str = "cpu";

/// Backend that runs every op on the host CPU.
pub struct CpuBackend {
    /// Dedicated pool, or `None` for rayon's global pool.
    pool: Option<ThreadPool>,
    threads: usize,
    device_name: String,
}

impl CpuBackend {
    /// Creates a backend on rayon's global thread pool.
    pub fn new() -> Self {
        let threads = rayon::current_num_threads();
        CpuBackend {
            pool: None,
            threads,
            device_name: describe_device(threads),
        }
    }

    /// Creates a backend with its own pool of `threads` threads, so that
    /// results are bit-identical between runs and other rayon users do not
    /// share its threads.
    pub fn with_threads(threads: usize) -> std::result::Result<Self, ThreadPoolBuildError> {
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|index| format!("flywheel-cpu-{index}"))
            .build()?;
        let threads = pool.current_num_threads();
        Ok(CpuBackend {
            pool: Some(pool),
            threads,
            device_name: describe_device(threads),
        })
    }

    /// Number of threads that ops run on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on this backend's pool.
    fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend::new()
    }
}

/// Returns the CPU model from /proc/cpuinfo (Linux), the SIMD level and the thread count.
fn describe_device(threads: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}, {}, {threads} threads", simd::level_name())
}

fn check_length(op: &'static str, dims: &[usize], len: usize) -> Result<()> {
    let shape = Shape::new(dims);
    if shape.numel() != len {
        return Err(KernelError::LengthMismatch {
            op,
            expected: shape.numel(),
            actual: len,
            shape,
        });
    }
    Ok(())
}

fn write_host<T: Element>(op: &'static str, tensor: &mut Tensor, data: &[T]) -> Result<()> {
    check_length(op, tensor.dims(), data.len())?;
    let mut buffer = write::<T>(op, "tensor", tensor)?;
    buffer.copy_from_slice(data);
    Ok(())
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        CPU_BACKEND_NAME
    }

    fn device_name(&self) -> String {
        self.device_name.clone()
    }

    fn zeros(&self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims);
        Ok(new_tensor(vec![0.0f32; shape.numel()], shape))
    }

    fn zeros_u32(&self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims);
        Ok(new_tensor(vec![0u32; shape.numel()], shape))
    }

    fn upload(&self, data: &[f32], dims: &[usize]) -> Result<Tensor> {
        check_length("upload", dims, data.len())?;
        Ok(new_tensor(data.to_vec(), Shape::new(dims)))
    }

    fn upload_u32(&self, data: &[u32], dims: &[usize]) -> Result<Tensor> {
        check_length("upload_u32", dims, data.len())?;
        Ok(new_tensor(data.to_vec(), Shape::new(dims)))
    }

    fn write(&self, tensor: &mut Tensor, data: &[f32]) -> Result<()> {
        write_host("write", tensor, data)
    }

    fn write_u32(&self, tensor: &mut Tensor, data: &[u32]) -> Result<()> {
        write_host("write_u32", tensor, data)
    }

    fn download(&self, tensor: &Tensor) -> Result<Vec<f32>> {
        Ok(read::<f32>("download", "tensor", tensor)?.clone())
    }

    fn download_u32(&self, tensor: &Tensor) -> Result<Vec<u32>> {
        Ok(read::<u32>("download_u32", "tensor", tensor)?.clone())
    }

    fn fill(&self, tensor: &mut Tensor, value: f32) -> Result<()> {
        let mut buffer = write::<f32>("fill", "tensor", tensor)?;
        let buffer: &mut [f32] = &mut buffer;
        self.install(|| elementwise::fill(buffer, value));
        Ok(())
    }

    fn copy(&self, src: &Tensor, dst: &mut Tensor) -> Result<()> {
        expect_f32("copy", "src", src, src.dims())?;
        expect_f32("copy", "dst", dst, src.dims())?;
        let src = read::<f32>("copy", "src", src)?;
        let mut dst = write::<f32>("copy", "dst", dst)?;
        let (src, dst): (&[f32], &mut [f32]) = (&src, &mut dst);
        self.install(|| elementwise::copy(src, dst));
        Ok(())
    }
}
