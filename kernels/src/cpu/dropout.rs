//! CPU `DropoutOps`: the Philox mask from `crate::philox`, generated four
//! elements per Philox call and applied in the same pass.

use rayon::prelude::*;

use super::parallel::ELEMENT_CHUNK;
use super::simd::dispatch;
use super::storage::{read, write};
use super::CpuBackend;
use crate::backend::{DropoutOps, check_dropout};
use crate::error::Result;
use crate::philox::{dropout_scale, dropout_threshold, dropout_words, seed_key};
use crate::tensor::Tensor;

/// `out[i] = x[i]·scale` where element `i` is kept, else 0.
// x: (N), out: (N)
fn apply_mask(x: &[f32], out: &mut [f32], p: f32, seed: u64) {
    let key = seed_key(seed);
    let threshold = dropout_threshold(p);
    let scale = dropout_scale(p);
    // ELEMENT_CHUNK is a multiple of 4, so every chunk starts at a Philox group boundary.
    out.par_chunks_mut(ELEMENT_CHUNK).zip(x.par_chunks(ELEMENT_CHUNK)).enumerate().for_each(|(chunk, (out, x))| {
        let first_group = (chunk * ELEMENT_CHUNK / 4) as u64;
        dispatch(
            #[inline(always)]
            || {
                for (group, (out, x)) in out.chunks_mut(4).zip(x.chunks(4)).enumerate() {
                    let words = dropout_words(key, first_group + group as u64);
                    for ((out, &x), &word) in out.iter_mut().zip(x).zip(&words) {
                        *out = if word >= threshold { x * scale } else { 0.0 };
                    }
                }
            },
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
