//! CPU `EmbeddingOps`: parallel row gather, and a backward that sorts
//! positions by id so that each table row sums its gradients in position
//! order without atomics.

use rayon::prelude::*;

use super::CpuBackend;
use super::parallel::rows_per_task;
use super::storage::{read, write};
use crate::backend::{EmbeddingOps, check_embedding};
use crate::error::{KernelError, Result};
use crate::tensor::Tensor;

/// Returns an error for the first id that is not below `limit`.
pub(crate) fn check_indices(
    op: &'static str,
    argument: &'static str,
    ids: &[u32],
    limit: usize,
) -> Result<()> {
    match ids.iter().position(|&id| id as usize >= limit) {
        Some(position) => Err(KernelError::IndexOutOfRange {
            op,
            argument,
            index: ids[position],
            position,
            limit,
        }),
        None => Ok(()),
    }
}

impl EmbeddingOps for CpuBackend {
    fn embedding(&self, ids: &Tensor, table: &Tensor, out: &mut Tensor) -> Result<()> {
        const OP: &str = "embedding";
        let (_, vocab, channels) = check_embedding(OP, ids, ("table", table), ("out", out))?;
        let ids = read::<u32>(OP, "ids", ids)?;
        let table = read::<f32>(OP, "table", table)?;
        let mut out = write::<f32>(OP, "out", out)?;
        let (ids, table, out): (&[u32], &[f32], &mut [f32]) = (&ids, &table, &mut out);
        check_indices(OP, "ids", ids, vocab)?;
        if channels == 0 {
            return Ok(());
        }

        let rows = rows_per_task(channels);
        self.install(|| {
            out.par_chunks_mut(rows * channels)
                .zip(ids.par_chunks(rows))
                .for_each(|(out, ids)| {
                    for (out, &id) in out.chunks_exact_mut(channels).zip(ids) {
                        let start = id as usize * channels;
                        out.copy_from_slice(&table[start..start + channels]);
                    }
                })
        });
        Ok(())
    }

    fn embedding_backward(&self, dout: &Tensor, ids: &Tensor, dtable: &mut Tensor) -> Result<()> {
        const OP: &str = "embedding_backward";
        let (_, vocab, channels) = check_embedding(OP, ids, ("dtable", dtable), ("dout", dout))?;
        let dout = read::<f32>(OP, "dout", dout)?;
        let ids = read::<u32>(OP, "ids", ids)?;
        let mut dtable = write::<f32>(OP, "dtable", dtable)?;
        let (dout, ids, dtable): (&[f32], &[u32], &mut [f32]) = (&dout, &ids, &mut dtable);
        check_indices(OP, "ids", ids, vocab)?;
        if channels == 0 || ids.is_empty() {
            return Ok(());
        }

        // Positions sorted by (id, position): a stable sort by id keeps
        // positions ascending within each id.
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_by_key(|&position| ids[position as usize]);

        // Each task owns a block of table rows and adds the sorted positions
        // whose ids fall in the block, in order.
        let rows = rows_per_task(channels);
        self.install(|| {
            dtable
                .par_chunks_mut(rows * channels)
                .enumerate()
                .for_each(|(block, dtable)| {
                    let first_id = block * rows;
                    let start = order
                        .partition_point(|&position| (ids[position as usize] as usize) < first_id);
                    let end = order.partition_point(|&position| {
                        (ids[position as usize] as usize) < first_id + rows
                    });
                    for &position in &order[start..end] {
                        let local = (ids[position as usize] as usize - first_id) * channels;
                        let source =
                            &dout[position as usize * channels..(position as usize + 1) * channels];
                        for (dst, &value) in dtable[local..local + channels].iter_mut().zip(source)
                        {
                            *dst += value;
                        }
                    }
                })
        });
        Ok(())
    }
}
