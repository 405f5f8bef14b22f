//! Command recording: ops append dispatches to one pending command encoder
//! and compute pass, and the backend submits them only in `flush`, which
//! `download` and `download_u32` call, or when the parameter arena is full.
//! A training step with one loss read-back is therefore one or two submits,
//! not one per kernel.
//!
//! Kernel parameters (sizes, strides, scalars) go into a host copy of a
//! uniform "arena" buffer, one aligned slot per dispatch, and the arena is
//! written to the device once per submit, just before the commands that read
//! it. Data writes into existing tensors are recorded as copies from staging
//! buffers, so they take effect in call order.

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use super::GpuBackend;
use super::buffer::write_mapped;
use super::pipelines::{Access, Shader};
use crate::error::{KernelError, Result};

/// Bytes of the parameter arena. With 256-byte slots (the usual uniform
/// offset alignment) it has room for 4096 dispatches, more than a BERT-base
/// step records.
pub(crate) const ARENA_BYTES: u64 = 1 << 20;

/// Largest parameter block of any kernel, in bytes.
const MAX_PARAMS_BYTES: usize = 128;

/// Commands recorded since the last submit.
#[derive(Default)]
pub(crate) struct Pending {
    encoder: Option<::wgpu::CommandEncoder>,
    /// The open compute pass; it borrows `encoder` until dropped.
    pass: Option<::wgpu::ComputePass<'static>>,
    /// Host copy of the arena's slots used by this batch.
    params: Vec<u8>,
}

/// One storage binding of a dispatch.
pub(crate) struct Binding<'a> {
    pub binding: u32,
    pub buffer: &'a ::wgpu::Buffer,
    pub access: Access,
}

/// Input bound read-only at `binding`.
pub(crate) fn read(binding: u32, buffer: &::wgpu::Buffer) -> Binding<'_> {
    Binding {
        binding,
        buffer,
        access: Access::Read,
    }
}

/// Output bound read-write at `binding`.
pub(crate) fn write(binding: u32, buffer: &::wgpu::Buffer) -> Binding<'_> {
    Binding {
        binding,
        buffer,
        access: Access::ReadWrite,
    }
}

/// One kernel launch.
pub(crate) struct Dispatch<'a> {
    pub shader: Shader,
    pub entry: &'static str,
    /// Override constants, which select a specialized pipeline.
    pub constants: &'a [(&'static str, f64)],
    /// The kernel's uniform parameter struct as 32-bit words (f32 as bits).
    pub params: &'a [u32],
    pub bindings: &'a [Binding<'a>],
    /// Number of workgroups; split over a 2-D grid by `grid`.
    pub workgroups: u64,
}

impl GpuBackend {
    /// Records `dispatch` into the pending compute pass. Launches of zero
    /// workgroups record nothing.
    pub(crate) fn dispatch(&self, op: &'static str, dispatch: Dispatch<'_>) -> Result<()> {
        if dispatch.workgroups == 0 {
            return Ok(());
        }
        let [x, y] = self.grid(op, dispatch.workgroups)?;
        let layout: Vec<(u32, Access)> = dispatch
            .bindings
            .iter()
            .map(|binding| (binding.binding, binding.access))
            .collect();
        let pipeline = self.pipelines.get(
            &self.device,
            dispatch.shader,
            dispatch.entry,
            dispatch.constants,
            &layout,
        );

        let params_bytes: &[u8] = bytemuck::cast_slice(dispatch.params);
        assert!(
            params_bytes.len() <= MAX_PARAMS_BYTES,
            "{op}: {} parameter bytes exceed the arena slot",
            params_bytes.len()
        );
        let mut pending = self.lock_pending();
        let slot = self.slot_size();
        if pending.params.len() as u64 + slot > ARENA_BYTES {
            self.submit(&mut pending);
        }
        let offset = pending.params.len() as u64;
        pending.params.extend_from_slice(params_bytes);
        pending.params.resize((offset + slot) as usize, 0);

        let params_size = params_bytes.len().max(16).div_ceil(16) as u64 * 16;
        let mut entries = vec![::wgpu::BindGroupEntry {
            binding: 0,
            resource: ::wgpu::BindingResource::Buffer(::wgpu::BufferBinding {
                buffer: &self.arena,
                offset,
                size: ::wgpu::BufferSize::new(params_size),
            }),
        }];
        entries.extend(
            dispatch
                .bindings
                .iter()
                .map(|binding| ::wgpu::BindGroupEntry {
                    binding: binding.binding,
                    resource: binding.buffer.as_entire_binding(),
                }),
        );
        let bind_group = self.device.create_bind_group(&::wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.bind_group_layout,
            entries: &entries,
        });

        let pass = self.open_pass(&mut pending);
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
        self.dispatches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Splits `workgroups` into an (x, y) grid within the per-dimension limit;
    /// kernels recover the flat index with `flat_group` in common.wgsl.
    fn grid(&self, op: &'static str, workgroups: u64) -> Result<[u32; 2]> {
        let per_dimension = self.limits.max_compute_workgroups_per_dimension as u64;
        let x = workgroups.min(per_dimension);
        let y = workgroups.div_ceil(x);
        if y > per_dimension {
            return Err(KernelError::InvalidArgument {
                op,
                argument: "shape",
                value: format!("{workgroups} workgroups"),
                expected: format!(
                    "at most {} workgroups per launch on adapter `{}`; split the call",
                    per_dimension * per_dimension,
                    self.info.name
                ),
            });
        }
        Ok([x as u32, y as u32])
    }

    pub(crate) fn slot_size(&self) -> u64 {
        let alignment = self.limits.min_uniform_buffer_offset_alignment as u64;
        (MAX_PARAMS_BYTES as u64).div_ceil(alignment) * alignment
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn encoder<'p>(&self, pending: &'p mut Pending) -> &'p mut ::wgpu::CommandEncoder {
        // A copy or a submit needs the encoder back, which ends the pass.
        pending.pass = None;
        pending.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&::wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    fn open_pass<'p>(&self, pending: &'p mut Pending) -> &'p mut ::wgpu::ComputePass<'static> {
        if pending.pass.is_none() {
            let pass = self
                .encoder(pending)
                .begin_compute_pass(&::wgpu::ComputePassDescriptor::default())
                .forget_lifetime();
            pending.pass = Some(pass);
        }
        pending.pass.as_mut().expect("pass opened above")
    }

    /// Records a copy of `bytes` bytes from `src` to `dst` in call order.
    pub(crate) fn record_copy(&self, src: &::wgpu::Buffer, dst: &::wgpu::Buffer, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut pending = self.lock_pending();
        self.encoder(&mut pending)
            .copy_buffer_to_buffer(src, 0, dst, 0, bytes);
    }

    /// Records a write of host `data` into the start of `dst` in call order,
    /// through a staging buffer.
    pub(crate) fn record_write(&self, dst: &::wgpu::Buffer, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let staging = self.device.create_buffer(&::wgpu::BufferDescriptor {
            label: Some("write staging"),
            size: data.len() as u64,
            usage: ::wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        write_mapped(&staging, data);
        self.record_copy(&staging, dst, data.len() as u64);
    }

    /// Submits every recorded command. Ops are queued until a read-back or
    /// an explicit flush, so call this where a program waits on something
    /// else, such as before timing or between training phases.
    pub fn flush(&self) {
        let mut pending = self.lock_pending();
        self.submit(&mut pending);
    }

    /// Submits every recorded command and blocks until the device has
    /// finished all submitted work, for timing.
    pub fn wait(&self) {
        self.flush();
        self.wait_for_device();
    }

    /// Blocks until all submitted work is done and map callbacks have run.
    fn wait_for_device(&self) {
        if let Err(error) = self.device.poll(::wgpu::PollType::wait_indefinitely()) {
            panic!(
                "wgpu: waiting for adapter `{}` failed ({error}); the device was lost or \
                 hung, so no result of this backend can be trusted",
                self.info.name
            );
        }
    }

    fn submit(&self, pending: &mut Pending) {
        pending.pass = None;
        let Some(encoder) = pending.encoder.take() else {
            return;
        };
        if !pending.params.is_empty() {
            self.queue.write_buffer(&self.arena, 0, &pending.params);
            pending.params.clear();
        }
        self.queue.submit([encoder.finish()]);
        self.submits.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the first `bytes` bytes of `src` to the host after every
    /// recorded op, with one submit.
    pub(crate) fn read_back(&self, src: &::wgpu::Buffer, bytes: u64) -> Vec<u8> {
        if bytes == 0 {
            return Vec::new();
        }
        let staging = self.device.create_buffer(&::wgpu::BufferDescriptor {
            label: Some("read-back staging"),
            size: bytes,
            usage: ::wgpu::BufferUsages::MAP_READ | ::wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut pending = self.lock_pending();
            self.encoder(&mut pending)
                .copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
            self.submit(&mut pending);
        }

        let slice = staging.slice(..);
        let (sender, receiver) = mpsc::channel();
        slice.map_async(::wgpu::MapMode::Read, move |result| {
            // The receiver outlives the wait below, so the send cannot fail.
            let _ = sender.send(result);
        });
        self.wait_for_device();
        match receiver.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("wgpu: mapping a read-back buffer failed: {error}"),
            Err(_) => panic!("wgpu: the read-back callback did not run after the wait"),
        }
        let data = slice
            .get_mapped_range()
            .expect("a buffer mapped for reading can be viewed")
            .to_vec();
        staging.unmap();
        data
    }
}
