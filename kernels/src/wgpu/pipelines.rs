//! `Pipelines`: compute pipelines created once, lazily, and cached by
//! shader file, entry point, override constants and binding layout.
//!
//! Each WGSL file is compiled with `common.wgsl` appended (WGSL has no
//! includes), so line numbers in compiler messages match the file.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// One WGSL file of `kernels/wgsl`, one per op family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Attention,
    Dropout,
    Elementwise,
    Embedding,
    Loss,
    Matmul,
    Norm,
    Optim,
    Reduce,
}

const COMMON: &str = include_str!("../../wgsl/common.wgsl");

impl Shader {
    fn file(self) -> (&'static str, &'static str) {
        match self {
            Shader::Attention => ("attention.wgsl", include_str!("../../wgsl/attention.wgsl")),
            Shader::Dropout => ("dropout.wgsl", include_str!("../../wgsl/dropout.wgsl")),
            Shader::Elementwise => (
                "elementwise.wgsl",
                include_str!("../../wgsl/elementwise.wgsl"),
            ),
            Shader::Embedding => ("embedding.wgsl", include_str!("../../wgsl/embedding.wgsl")),
            Shader::Loss => ("loss.wgsl", include_str!("../../wgsl/loss.wgsl")),
            Shader::Matmul => ("matmul.wgsl", include_str!("../../wgsl/matmul.wgsl")),
            Shader::Norm => ("norm.wgsl", include_str!("../../wgsl/norm.wgsl")),
            Shader::Optim => ("optim.wgsl", include_str!("../../wgsl/optim.wgsl")),
            Shader::Reduce => ("reduce.wgsl", include_str!("../../wgsl/reduce.wgsl")),
        }
    }

    /// Returns the file's text followed by the shared helpers.
    fn source(self) -> String {
        let (_, text) = self.file();
        let mut source = String::with_capacity(text.len() + COMMON.len() + 1);
        source.push_str(text);
        if !text.ends_with('\n') {
            source.push('\n');
        }
        source.push_str(COMMON);
        source
    }
}

/// Access mode of one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

/// Binding numbers and access of a kernel's storage buffers; binding 0 is
/// always the kernel's uniform parameters.
pub(crate) type LayoutKey = Vec<(u32, Access)>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    shader: Shader,
    entry: &'static str,
    /// Override constants by name, with the value's f64 bits.
    constants: Vec<(&'static str, u64)>,
    layout: LayoutKey,
}

/// A cached pipeline and the layout its bind groups must use.
#[derive(Clone)]
pub(crate) struct Pipeline {
    pub pipeline: ::wgpu::ComputePipeline,
    pub bind_group_layout: ::wgpu::BindGroupLayout,
}

/// Caches of shader modules, layouts and pipelines. Entries are inserted
/// only once complete, so a panic in another thread leaves them valid and
/// a poisoned lock is taken over.
#[derive(Default)]
pub(crate) struct Pipelines {
    modules: Mutex<HashMap<Shader, ::wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<LayoutKey, (::wgpu::BindGroupLayout, ::wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, Pipeline>>,
}

impl Pipelines {
    /// Returns the pipeline for `entry` in `shader`, creating it on first use.
    pub fn get(
        &self,
        device: &::wgpu::Device,
        shader: Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        layout: &[(u32, Access)],
    ) -> Pipeline {
        let key = PipelineKey {
            shader,
            entry,
            constants: constants
                .iter()
                .map(|&(name, value)| (name, value.to_bits()))
                .collect(),
            layout: layout.to_vec(),
        };
        let mut pipelines = self
            .pipelines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(pipeline) = pipelines.get(&key) {
            return pipeline.clone();
        }
        let module = self.module(device, shader);
        let (bind_group_layout, pipeline_layout) = self.layout(device, layout);
        let pipeline = device.create_compute_pipeline(&::wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(entry),
            compilation_options: ::wgpu::PipelineCompilationOptions {
                constants,
                // Every kernel writes the workgroup memory it reads, and the
                // zeroing code makes pipeline creation slow on some drivers.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let pipeline = Pipeline {
            pipeline,
            bind_group_layout,
        };
        pipelines.insert(key, pipeline.clone());
        pipeline
    }

    fn module(&self, device: &::wgpu::Device, shader: Shader) -> ::wgpu::ShaderModule {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        modules
            .entry(shader)
            .or_insert_with(|| {
                device.create_shader_module(::wgpu::ShaderModuleDescriptor {
                    label: Some(shader.file().0),
                    source: ::wgpu::ShaderSource::Wgsl(shader.source().into()),
                })
            })
            .clone()
    }

    fn layout(
        &self,
        device: &::wgpu::Device,
        key: &[(u32, Access)],
    ) -> (::wgpu::BindGroupLayout, ::wgpu::PipelineLayout) {
        let mut layouts = self.layouts.lock().unwrap_or_else(PoisonError::into_inner);
        layouts
            .entry(key.to_vec())
            .or_insert_with(|| {
                let mut entries = vec![layout_entry(0, ::wgpu::BufferBindingType::Uniform)];
                entries.extend(key.iter().map(|&(binding, access)| {
                    let read_only = access == Access::Read;
                    layout_entry(binding, ::wgpu::BufferBindingType::Storage { read_only })
                }));
                let bind_group_layout =
                    device.create_bind_group_layout(&::wgpu::BindGroupLayoutDescriptor {
                        label: None,
                        entries: &entries,
                    });
                let pipeline_layout =
                    device.create_pipeline_layout(&::wgpu::PipelineLayoutDescriptor {
                        label: None,
                        bind_group_layouts: &[Some(&bind_group_layout)],
                        immediate_size: 0,
                    });
                (bind_group_layout, pipeline_layout)
            })
            .clone()
    }
}

fn layout_entry(binding: u32, ty: ::wgpu::BufferBindingType) -> ::wgpu::BindGroupLayoutEntry {
    ::wgpu::BindGroupLayoutEntry {
        binding,
        visibility: ::wgpu::ShaderStages::COMPUTE,
        ty: ::wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}
