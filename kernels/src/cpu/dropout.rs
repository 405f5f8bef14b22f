//! CPU `DropoutOps`: the Philox mask from `crate::philox`, generated for 16
//! Philox counters (64 elements) at a time and applied in the same pass.

use rayon::prelude::*;

use super::CpuBackend;
use super::parallel::ELEMENT_CHUNK;
use super::simd::dispatch;
use super::storage::{read, write};
use crate::backend::{DropoutOps, check_dropout};
use crate::error::Result;
use crate::philox::{dropout_scale, dropout_threshold, philox4x32_10_lanes, seed_key};
use crate::tensor::Tensor;

/// Philox groups (of four elements) generated together, one per SIMD lane.
const GROUPS: usize = 16;

/// Applies the mask to `x` (whose first element is element `4·first_group`
/// of the tensor) and writes `out`.
// x: (n), out: (n)
#[inline(always)]
fn apply_mask_chunk(
    x: &[f32],
    out: &mut [f32],
    key: [u32; 2],
    threshold: u32,
    scale: f32,
    first_group: u64,
) {
    for (batch, (out, x)) in out
        .chunks_mut(4 * GROUPS)
        .zip(x.chunks(4 * GROUPS))
        .enumerate()
    {
        let base = first_group + (batch * GROUPS) as u64;
        let groups: [u64; GROUPS] = std::array::from_fn(|lane| base + lane as u64);
        let counter = [
            groups.map(|group| group as u32),
            groups.map(|group| (group >> 32) as u32),
            [0; GROUPS],
            [0; GROUPS],
        ];
        let words = philox4x32_10_lanes(counter, key);
        for (index, (out, &x)) in out.iter_mut().zip(x).enumerate() {
            let word = words[index % 4][index / 4];
            *out = if word >= threshold { x * scale } else { 0.0 };
        }
    }
}

/// `out[i] = x[i]·scale` where element `i` is kept, else 0.
// x: (N), out: (N)
fn apply_mask(x: &[f32], out: &mut [f32], p: f32, seed: u64) {
    let key = seed_key(seed);
    let threshold = dropout_threshold(p);
    let scale = dropout_scale(p);
    // ELEMENT_CHUNK is a multiple of 4·GROUPS, so every chunk starts at a Philox group boundary.
    out.par_chunks_mut(ELEMENT_CHUNK)
        .zip(x.par_chunks(ELEMENT_CHUNK))
        .enumerate()
        .for_each(|(chunk, (out, x))| {
            let first_group = (chunk * ELEMENT_CHUNK / 4) as u64;
            dispatch(
                #[inline(always)]
                || apply_mask_chunk(x, out, key, threshold, scale, first_group),
            )
        });
}

impl DropoutOps for CpuBackend {
    fn dropout(&self, x: &Tensor, p: f32, seed: u64, out: &mut Tensor) -> Result<()> {
        const OP: &str = "dropout";
        check_dropout(OP, ("x", x), ("out", out), p)?;
        let x = read::<f32>(OP, "x", x)?;
        let mut out = write::<f32>(OP, "out", out)?;
        let (x, out): (&[f32], &mut [f32]) = (&x, &mut out);
        self.install(|| apply_mask(x, out, p, seed));
        Ok(())
    }

    fn dropout_backward(&self, dout: &Tensor, p: f32, seed: u64, dx: &mut Tensor) -> Result<()> {
        const OP: &str = "dropout_backward";
        check_dropout(OP, ("dout", dout), ("dx", dx), p)?;
        let dout = read::<f32>(OP, "dout", dout)?;
        let mut dx = write::<f32>(OP, "dx", dx)?;
        let (dout, dx): (&[f32], &mut [f32]) = (&dout, &mut dx);
        self.install(|| apply_mask(dout, dx, p, seed));
        Ok(())
    }
}
