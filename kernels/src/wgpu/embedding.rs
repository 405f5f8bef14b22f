//! `EmbeddingOps` on wgpu, launching `wgsl/embedding.wgsl`, and the index
//! check that every op taking ids, targets or pairs shares.
//!
//! Ids are checked and sorted on the host from the u32 tensor's host copy
//! (see `buffer`), so neither needs a read-back.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::pipelines::Shader;
use super::recorder::{Dispatch, read, write};
use crate::backend::{EmbeddingOps, check_embedding};
use crate::error::{KernelError, Result};
use crate::tensor::{Shape, Tensor};

/// Elements per workgroup of the forward: 256 invocations × 4 elements.
const ELEMENTS_PER_WORKGROUP: u64 = 1024;

/// Returns `IndexOutOfRange` for the first index that is not below `limit`.
pub(crate) fn check_indices(
    op: &'static str,
    argument: &'static str,
    indices: &[u32],
    limit: usize,
) -> Result<()> {
    match indices.iter().position(|&index| index as usize >= limit) {
        Some(position) => Err(KernelError::IndexOutOfRange {
            op,
            argument,
            index: indices[position],
            position,
            limit,
        }),
        None => Ok(()),
    }
}

/// Positions sorted by (id, position), and one `(id, start, end)` segment
/// of that order per distinct id.
fn sort_by_id(ids: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut order: Vec<u32> = (0..ids.len() as u32).collect();
    // A stable sort keeps positions ascending within each id.
    order.sort_by_key(|&position| ids[position as usize]);
    let mut segments = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let id = ids[order[start] as usize];
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&position| ids[position as usize] == id)
                .count();
        segments.extend([id, start as u32, end as u32]);
        start = end;
    }
    (order, segments)
}

impl EmbeddingOps for GpuBackend {
    fn embedding(&self, ids: &Tensor, table: &Tensor, out: &mut Tensor) -> Result<()> {
        const OP: &str = "embedding";
        let (count, vocab, channels) = check_embedding(OP, ids, ("table", table), ("out", out))?;
        check_outputs(OP, &[("out", out)], &[ids, table])?;
        let (ids_buffer, id_values) = self.u32_buffer(OP, "ids", ids)?;
        check_indices(OP, "ids", &id_values, vocab)?;
        let n = count * channels;
        self.dispatch(
            OP,
            Dispatch {
                shader: Shader::Embedding,
                entry: "embedding_forward",
                constants: &[],
                params: &[n as u32, channels as u32],
                bindings: &[
                    read(1, ids_buffer),
                    read(2, self.f32_buffer(OP, "table", table)?),
                    write(3, self.f32_buffer(OP, "out", out)?),
                ],
                workgroups: (n as u64).div_ceil(ELEMENTS_PER_WORKGROUP),
            },
        )
    }

    fn embedding_backward(&self, dout: &Tensor, ids: &Tensor, dtable: &mut Tensor) -> Result<()> {
        const OP: &str = "embedding_backward";
        let (_, vocab, channels) = check_embedding(OP, ids, ("dtable", dtable), ("dout", dout))?;
        check_outputs(OP, &[("dtable", dtable)], &[dout, ids])?;
        let dout_buffer = self.f32_buffer(OP, "dout", dout)?;
        let dtable_buffer = self.f32_buffer(OP, "dtable", dtable)?;
        let (_, id_values) = self.u32_buffer(OP, "ids", ids)?;
        check_indices(OP, "ids", &id_values, vocab)?;
        if channels == 0 || id_values.is_empty() {
            return Ok(());
        }

        let (order, segments) = sort_by_id(&id_values);
        let segment_count = segments.len() / 3;
        let order_buffer = self.create_buffer(
            OP,
            &Shape::new(&[order.len()]),
            Some(bytemuck::cast_slice(&order)),
        )?;
        let segments_buffer = self.create_buffer(
            OP,
            &Shape::new(&[segments.len()]),
            Some(bytemuck::cast_slice(&segments)),
        )?;
        self.dispatch(
            OP,
            Dispatch {
                shader: Shader::Embedding,
                entry: "embedding_backward",
                constants: &[],
                params: &[segment_count as u32, channels as u32],
                bindings: &[
                    write(3, dtable_buffer),
                    read(4, dout_buffer),
                    read(5, &order_buffer),
                    read(6, &segments_buffer),
                ],
                workgroups: segment_count as u64,
            },
        )
    }
}
