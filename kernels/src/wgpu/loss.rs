//! `LossOps` on wgpu, launching `wgsl/loss.wgsl` and reduce.wgsl's `finish`.
//!
//! Losses stay on the device: each writes partial terms and `finish` sums
//! them in order into the `(1)` loss tensor. Counts that depend only on u32
//! tensors (kept rows) come from their host copies, and the pairwise
//! backward gets its per-item pair lists from the host copy of `pairs`.

use super::GpuBackend;
use super::buffer::check_outputs;
use super::embedding::check_indices;
use super::pipelines::Shader;
use super::recorder::{Binding, Dispatch, read, write};
use super::reduce::{ELEMENTS_PER_PARTIAL, Finish, Term, partial_count};
use crate::backend::{LossOps, check_cross_entropy, check_pairwise, check_same_shape};
use crate::check::expect_f32;
use crate::error::{KernelError, Result};
use crate::tensor::{Shape, Tensor};

/// Invocations per workgroup of the element-wise backward kernels.
const WORKGROUP: u64 = 256;

/// `TERM_*` of loss.wgsl.
const TERM_MSE: u32 = 0;
const TERM_BCE: u32 = 1;

/// `LossParams` of loss.wgsl.
fn params(n: usize, vocab: usize, ignore_index: u32, count: usize, mode: u32) -> [u32; 5] {
    [n as u32, vocab as u32, ignore_index, count as u32, mode]
}

/// Returns `IndexOutOfRange` for the first target that is neither
/// `ignore_index` nor below `vocab`.
fn check_targets(op: &'static str, targets: &[u32], ignore_index: u32, vocab: usize) -> Result<()> {
    match targets
        .iter()
        .position(|&target| target != ignore_index && target as usize >= vocab)
    {
        Some(position) => Err(KernelError::IndexOutOfRange {
            op,
            argument: "targets",
            index: targets[position],
            position,
            limit: vocab,
        }),
        None => Ok(()),
    }
}

/// For each item, the entries `2·pair + (1 if the item is the worse one)`
/// of the pairs that touch it, in pair order, as CSR offsets and entries.
fn pairs_by_item(pairs: &[u32], items: usize) -> (Vec<u32>, Vec<u32>) {
    let mut counts = vec![0u32; items + 1];
    for &item in pairs {
        counts[item as usize + 1] += 1;
    }
    for index in 1..counts.len() {
        counts[index] += counts[index - 1];
    }
    let starts = counts.clone();
    let mut entries = vec![0u32; pairs.len()];
    // pairs[2p] is the better item and pairs[2p + 1] the worse one, so the
    // flat position is the entry itself.
    for (position, &item) in pairs.iter().enumerate() {
        let slot = &mut counts[item as usize];
        entries[*slot as usize] = position as u32;
        *slot += 1;
    }
    (starts, entries)
}

impl GpuBackend {
    fn loss_kernel(
        &self,
        op: &'static str,
        entry: &'static str,
        params: [u32; 5],
        bindings: &[Binding<'_>],
        workgroups: usize,
    ) -> Result<()> {
        self.dispatch(
            op,
            Dispatch {
                shader: Shader::Loss,
                entry,
                constants: &[],
                params: &params,
                bindings,
                workgroups: workgroups as u64,
            },
        )
    }

    /// Mean over the elements of `term(a, b)`, for MSE and BCE.
    fn element_loss(
        &self,
        op: &'static str,
        inputs: [(&'static str, &Tensor); 2],
        loss: &Tensor,
        mode: u32,
    ) -> Result<()> {
        let count = check_same_shape(op, &inputs)?;
        expect_f32(op, "loss", loss, &[1])?;
        check_outputs(op, &[("loss", loss)], &[inputs[0].1, inputs[1].1])?;
        let a = self.f32_buffer(op, inputs[0].0, inputs[0].1)?;
        let b = self.f32_buffer(op, inputs[1].0, inputs[1].1)?;
        let loss_buffer = self.f32_buffer(op, "loss", loss)?;
        let partials = self.scratch(op, partial_count(count))?;
        self.loss_kernel(
            op,
            "element_partials",
            params(count, 0, 0, count, mode),
            &[read(1, a), write(4, &partials), read(8, b)],
            partial_count(count),
        )?;
        self.finish_sum(
            op,
            &partials,
            partial_count(count),
            Finish::Mean(count),
            loss_buffer,
        )
    }

    /// Gradient of an element loss into `grad`.
    fn element_loss_backward(
        &self,
        op: &'static str,
        dloss: &Tensor,
        inputs: [(&'static str, &Tensor); 2],
        output: (&'static str, &Tensor),
        mode: u32,
    ) -> Result<()> {
        let count = check_same_shape(op, &[inputs[0], inputs[1], output])?;
        expect_f32(op, "dloss", dloss, &[1])?;
        check_outputs(op, &[output], &[dloss, inputs[0].1, inputs[1].1])?;
        self.loss_kernel(
            op,
            "element_backward",
            params(count, 0, 0, count, mode),
            &[
                read(1, self.f32_buffer(op, inputs[0].0, inputs[0].1)?),
                read(5, self.f32_buffer(op, "dloss", dloss)?),
                write(6, self.f32_buffer(op, output.0, output.1)?),
                read(8, self.f32_buffer(op, inputs[1].0, inputs[1].1)?),
            ],
            (count as u64).div_ceil(WORKGROUP) as usize,
        )
    }
}

impl LossOps for GpuBackend {
    fn cross_entropy(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ignore_index: u32,
        loss: &mut Tensor,
        logsumexp: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "cross_entropy";
        let (rows, vocab) = check_cross_entropy(
            OP,
            logits,
            targets,
            &[],
            &[("logsumexp", logsumexp)],
            &[("loss", loss)],
        )?;
        check_outputs(
            OP,
            &[("loss", loss), ("logsumexp", logsumexp)],
            &[logits, targets],
        )?;
        let logits_buffer = self.f32_buffer(OP, "logits", logits)?;
        let (targets_buffer, target_values) = self.u32_buffer(OP, "targets", targets)?;
        let loss_buffer = self.f32_buffer(OP, "loss", loss)?;
        let lse_buffer = self.f32_buffer(OP, "logsumexp", logsumexp)?;
        check_targets(OP, &target_values, ignore_index, vocab)?;
        let kept_rows = target_values
            .iter()
            .filter(|&&target| target != ignore_index)
            .count();
        if rows == 0 || vocab == 0 {
            // ln Σ over no columns is ln 0.
            self.fill_buffer(OP, lse_buffer, rows, f32::NEG_INFINITY)?;
            return self.fill_buffer(OP, loss_buffer, 1, 0.0);
        }

        let terms = self.scratch(OP, rows)?;
        self.loss_kernel(
            OP,
            "cross_entropy_rows",
            params(rows, vocab, ignore_index, kept_rows, 0),
            &[
                read(1, logits_buffer),
                read(2, targets_buffer),
                write(3, lse_buffer),
                write(4, &terms),
            ],
            rows,
        )?;
        self.finish_sum(OP, &terms, rows, Finish::Mean(kept_rows), loss_buffer)
    }

    fn cross_entropy_backward(
        &self,
        dloss: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        ignore_index: u32,
        logsumexp: &Tensor,
        dlogits: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "cross_entropy_backward";
        let (rows, vocab) = check_cross_entropy(
            OP,
            logits,
            targets,
            &[("dlogits", dlogits)],
            &[("logsumexp", logsumexp)],
            &[("dloss", dloss)],
        )?;
        check_outputs(
            OP,
            &[("dlogits", dlogits)],
            &[dloss, logits, targets, logsumexp],
        )?;
        let (targets_buffer, target_values) = self.u32_buffer(OP, "targets", targets)?;
        check_targets(OP, &target_values, ignore_index, vocab)?;
        let kept_rows = target_values
            .iter()
            .filter(|&&target| target != ignore_index)
            .count();
        let bindings = [
            read(1, self.f32_buffer(OP, "logits", logits)?),
            read(2, targets_buffer),
            read(5, self.f32_buffer(OP, "dloss", dloss)?),
            write(6, self.f32_buffer(OP, "dlogits", dlogits)?),
            read(7, self.f32_buffer(OP, "logsumexp", logsumexp)?),
        ];
        if vocab == 0 {
            return Ok(());
        }
        self.loss_kernel(
            OP,
            "cross_entropy_backward",
            params(rows, vocab, ignore_index, kept_rows, 0),
            &bindings,
            rows,
        )
    }

    fn mse(&self, pred: &Tensor, target: &Tensor, loss: &mut Tensor) -> Result<()> {
        self.element_loss("mse", [("pred", pred), ("target", target)], loss, TERM_MSE)
    }

    fn mse_backward(
        &self,
        dloss: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        dpred: &mut Tensor,
    ) -> Result<()> {
        self.element_loss_backward(
            "mse_backward",
            dloss,
            [("pred", pred), ("target", target)],
            ("dpred", dpred),
            TERM_MSE,
        )
    }

    fn bce_with_logits(&self, logits: &Tensor, targets: &Tensor, loss: &mut Tensor) -> Result<()> {
        self.element_loss(
            "bce_with_logits",
            [("logits", logits), ("targets", targets)],
            loss,
            TERM_BCE,
        )
    }

    fn bce_with_logits_backward(
        &self,
        dloss: &Tensor,
        logits: &Tensor,
        targets: &Tensor,
        dlogits: &mut Tensor,
    ) -> Result<()> {
        self.element_loss_backward(
            "bce_with_logits_backward",
            dloss,
            [("logits", logits), ("targets", targets)],
            ("dlogits", dlogits),
            TERM_BCE,
        )
    }

    fn pairwise_logistic(
        &self,
        scores: &Tensor,
        pairs: &Tensor,
        weights: &Tensor,
        loss: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "pairwise_logistic";
        let (items, pair_count) = check_pairwise(OP, scores, pairs, weights, &[("loss", loss)])?;
        check_outputs(OP, &[("loss", loss)], &[scores, pairs, weights])?;
        let (pairs_buffer, pair_values) = self.u32_buffer(OP, "pairs", pairs)?;
        check_indices(OP, "pairs", &pair_values, items)?;
        let chunks = pair_count.div_ceil(ELEMENTS_PER_PARTIAL);
        let partials = self.scratch(OP, 2 * chunks)?;
        self.loss_kernel(
            OP,
            "pairwise_partials",
            params(pair_count, 0, 0, chunks, 0),
            &[
                read(1, self.f32_buffer(OP, "scores", scores)?),
                write(4, &partials),
                read(9, pairs_buffer),
                read(10, self.f32_buffer(OP, "weights", weights)?),
            ],
            chunks,
        )?;
        let loss_buffer = self.f32_buffer(OP, "loss", loss)?;
        self.finish_sum(OP, &partials, chunks, Finish::Ratio, loss_buffer)
    }

    fn pairwise_logistic_backward(
        &self,
        dloss: &Tensor,
        scores: &Tensor,
        pairs: &Tensor,
        weights: &Tensor,
        dscores: &mut Tensor,
    ) -> Result<()> {
        const OP: &str = "pairwise_logistic_backward";
        let (items, pair_count) = check_pairwise(
            OP,
            scores,
            pairs,
            weights,
            &[("dloss", dloss), ("dscores", dscores)],
        )?;
        check_outputs(
            OP,
            &[("dscores", dscores)],
            &[dloss, scores, pairs, weights],
        )?;
        let (pairs_buffer, pair_values) = self.u32_buffer(OP, "pairs", pairs)?;
        check_indices(OP, "pairs", &pair_values, items)?;
        let weights_buffer = self.f32_buffer(OP, "weights", weights)?;

        let weight_sum = self.scratch(OP, 1)?;
        let partials = self.scratch(OP, partial_count(pair_count))?;
        self.partial_sums(OP, weights_buffer, pair_count, Term::Value, &partials, 0)?;
        self.finish_sum(
            OP,
            &partials,
            partial_count(pair_count),
            Finish::Sum,
            &weight_sum,
        )?;

        let (starts, entries) = pairs_by_item(&pair_values, items);
        let starts_buffer = self.create_buffer(
            OP,
            &Shape::new(&[starts.len()]),
            Some(bytemuck::cast_slice(&starts)),
        )?;
        let entries_buffer = self.create_buffer(
            OP,
            &Shape::new(&[entries.len()]),
            Some(bytemuck::cast_slice(&entries)),
        )?;
        self.loss_kernel(
            OP,
            "pairwise_backward",
            params(items, 0, 0, 0, 0),
            &[
                read(1, self.f32_buffer(OP, "scores", scores)?),
                read(5, self.f32_buffer(OP, "dloss", dloss)?),
                write(6, self.f32_buffer(OP, "dscores", dscores)?),
                read(9, pairs_buffer),
                read(10, weights_buffer),
                read(11, &weight_sum),
                read(12, &starts_buffer),
                read(13, &entries_buffer),
            ],
            (items as u64).div_ceil(WORKGROUP) as usize,
        )
    }
}
