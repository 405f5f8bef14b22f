//! Adapter discovery: `list_adapters`, the request strings of
//! `GpuBackend::open`, and device creation with the adapter's own limits.

use crate::select::DeviceError;

/// One adapter as `flywheel devices` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name, such as `NVIDIA H100 80GB HBM3` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Graphics API: `vulkan`, `metal` or `dx12`.
    pub backend: String,
    /// `discrete`, `integrated`, `virtual`, `cpu` (software) or `other`.
    pub device_type: String,
    /// Driver name and version, where the driver reports them.
    pub driver: String,
}

/// Lists every adapter that wgpu finds on the Vulkan, Metal and DirectX 12
/// backends (the `WGPU_BACKEND` environment variable narrows the search).
pub fn list_adapters() -> Vec<AdapterSummary> {
    enumerate().iter().map(summarize).collect()
}

fn summarize(adapter: &::wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    AdapterSummary {
        name: info.name.clone(),
        backend: info.backend.to_str().to_string(),
        device_type: device_type_name(info.device_type).to_string(),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
    }
}

pub(crate) fn device_type_name(device_type: ::wgpu::DeviceType) -> &'static str {
    match device_type {
        ::wgpu::DeviceType::DiscreteGpu => "discrete",
        ::wgpu::DeviceType::IntegratedGpu => "integrated",
        ::wgpu::DeviceType::VirtualGpu => "virtual",
        ::wgpu::DeviceType::Cpu => "cpu",
        ::wgpu::DeviceType::Other => "other",
    }
}

fn enumerate() -> Vec<::wgpu::Adapter> {
    let instance =
        ::wgpu::Instance::new(::wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(::wgpu::Backends::all()))
}

/// Rank of a hardware adapter for `gpu`: lower is preferred, `None` is not hardware.
fn hardware_rank(device_type: ::wgpu::DeviceType) -> Option<u8> {
    match device_type {
        ::wgpu::DeviceType::DiscreteGpu => Some(0),
        ::wgpu::DeviceType::IntegratedGpu => Some(1),
        ::wgpu::DeviceType::VirtualGpu => Some(2),
        ::wgpu::DeviceType::Cpu | ::wgpu::DeviceType::Other => None,
    }
}

/// Finds the adapter for `request`: `gpu` (best hardware GPU), `software`
/// (a CPU-emulated adapter such as lavapipe), or a case-insensitive
/// substring of the adapter name.
pub(crate) fn find_adapter(request: &str) -> Result<::wgpu::Adapter, DeviceError> {
    let adapters = enumerate();
    let chosen = match request {
        "gpu" => adapters
            .iter()
            .filter_map(|adapter| Some((hardware_rank(adapter.get_info().device_type)?, adapter)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, adapter)| adapter),
        "software" => adapters
            .iter()
            .find(|adapter| adapter.get_info().device_type == ::wgpu::DeviceType::Cpu),
        name => {
            let needle = name.to_lowercase();
            adapters
                .iter()
                .find(|adapter| adapter.get_info().name.to_lowercase().contains(&needle))
        }
    };
    chosen.cloned().ok_or_else(|| DeviceError::NoAdapter {
        request: request.to_string(),
        available: describe_all(&adapters),
    })
}

fn describe_all(adapters: &[::wgpu::Adapter]) -> String {
    if adapters.is_empty() {
        return "wgpu found no adapter. Install a Vulkan driver (for the software adapter on \
                Debian or Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1), or pass \
                `cpu`"
            .to_string();
    }
    let names: Vec<String> = adapters
        .iter()
        .map(|adapter| {
            let summary = summarize(adapter);
            format!(
                "`{}` ({}, {})",
                summary.name, summary.backend, summary.device_type
            )
        })
        .collect();
    format!(
        "the adapters are {}. Pass a substring of one of these names, or `cpu`",
        names.join(", ")
    )
}

/// Opens a device with the adapter's own limits. wgpu's defaults cap a
/// buffer at 256 MiB and a storage binding at 128 MiB, far below what GPUs
/// offer, and BERT's parameters and activations need more.
pub(crate) fn open_device(
    adapter: &::wgpu::Adapter,
) -> Result<(::wgpu::Device, ::wgpu::Queue), DeviceError> {
    let descriptor = ::wgpu::DeviceDescriptor {
        label: Some("flywheel-kernels"),
        required_features: ::wgpu::Features::empty(),
        required_limits: adapter.limits(),
        memory_hints: ::wgpu::MemoryHints::Performance,
        ..Default::default()
    };
    pollster::block_on(adapter.request_device(&descriptor)).map_err(|error| {
        DeviceError::OpenFailed {
            adapter: adapter.get_info().name,
            reason: error.to_string(),
        }
    })
}
