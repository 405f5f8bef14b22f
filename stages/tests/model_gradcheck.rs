//! Gradient check of the whole model (embeddings, two encoder layers, MLM head with the tied
//! decoder, relevance head, hidden dropout) against central finite differences.
//!
//! The backend computes in f32, so the check uses a tiny model with a large initialisation
//! range (gradients of order 1e-2 and above) and a step of 1e-2. Round-off in the loss
//! difference is then about 1e-5 relative, and the O(h²) truncation error is below 1e-3. Each
//! tensor is checked on its entries with the largest analytic gradient, and passes when the
//! relative L2 error over those entries is below 2e-2, or the absolute L2 error below 1e-4
//! (the key bias has an exact gradient of 0, because softmax ignores a constant added to all
//! scores of a query, so only round-off is left there).

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;
use flywheel_stages::model::init::init_weights;
use flywheel_stages::model::{Bert, BertConfig, Dropout, HostBatch, IGNORE_INDEX};

const STEP: f32 = 1e-2;
const TOLERANCE: f64 = 2e-2;
const ABSOLUTE_TOLERANCE: f64 = 1e-4;

fn tiny_config() -> BertConfig {
    let mut config = BertConfig::new(23, 8, 2, 2, 16);
    config.max_position_embeddings = 8;
    config.initializer_range = 0.5;
    config.layer_norm_eps = 1e-5;
    config
}

fn batch() -> HostBatch {
    // Two sequences of 6 tokens; the second has two padding positions.
    HostBatch {
        batch: 2,
        seq: 6,
        ids: vec![2, 7, 4, 11, 9, 3, 2, 15, 4, 3, 0, 0],
        type_ids: vec![0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0],
        mask: vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
    }
}

struct Problem {
    bert: Bert,
    batch: HostBatch,
    positions: Vec<u32>,
    targets: Vec<u32>,
    relevance_target: Tensor,
    relevance_loss: Tensor,
    dlogits: Tensor,
    one: Tensor,
}

impl Problem {
    /// Loss = MLM cross-entropy + MSE of the relevance logits, with dropout p = 0.1.
    fn loss(&mut self, be: &dyn Backend) -> f64 {
        let dropout = Some(Dropout { p: 0.1, seed: 42 });
        self.bert.encode(be, &self.batch, dropout).unwrap();
        let mlm = self.bert.mlm_forward(be, &self.positions, &self.targets).unwrap();
        let logits = self.bert.relevance_forward(be).unwrap();
        be.mse(&logits, &self.relevance_target, &mut self.relevance_loss).unwrap();
        let mlm = be.download(&mlm).unwrap()[0];
        let relevance = be.download(&self.relevance_loss).unwrap()[0];
        f64::from(mlm) + f64::from(relevance)
    }

    fn backward(&mut self, be: &dyn Backend) {
        self.bert.grads.fill_zero(be).unwrap();
        self.loss(be);
        let logits = self.bert.relevance_forward(be).unwrap();
        be.mse_backward(&self.one, &logits, &self.relevance_target, &mut self.dlogits).unwrap();
        self.bert.mlm_backward(be).unwrap();
        self.bert.relevance_backward(be, &self.dlogits).unwrap();
        self.bert.encode_backward(be).unwrap();
    }
}

#[test]
fn whole_model_gradients_match_finite_differences() {
    let be = CpuBackend::with_threads(1).unwrap();
    let config = tiny_config();
    let weights = init_weights(&config, 3);
    let mut problem = Problem {
        bert: Bert::new(&be, config, &weights).unwrap(),
        batch: batch(),
        // Rows 1, 4 and 8 predict tokens; the last prediction row is padding.
        positions: vec![1, 4, 8, 0],
        targets: vec![7, 9, 4, IGNORE_INDEX],
        relevance_target: be.upload(&[1.0, -0.5], &[2, 1]).unwrap(),
        relevance_loss: be.zeros(&[1]).unwrap(),
        dlogits: be.zeros(&[2, 1]).unwrap(),
        one: be.upload(&[1.0], &[1]).unwrap(),
    };
    problem.backward(&be);

    let names: Vec<String> = problem.bert.params.named().into_iter().map(|(name, _)| name).collect();
    let mut worst = (0.0f64, String::new());
    for (index, name) in names.iter().enumerate() {
        let analytic = be.download(problem.bert.grads.named()[index].1).unwrap();
        let mut order: Vec<usize> = (0..analytic.len()).collect();
        order.sort_by(|&a, &b| analytic[b].abs().total_cmp(&analytic[a].abs()));
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for &entry in order.iter().take(4) {
            let original = be.download(problem.bert.params.named()[index].1).unwrap();
            let mut probe = |delta: f32| {
                let mut values = original.clone();
                values[entry] += delta;
                be.write(problem.bert.params.named_mut()[index].1, &values).unwrap();
                problem.loss(&be)
            };
            let numeric = (probe(STEP) - probe(-STEP)) / (2.0 * f64::from(STEP));
            be.write(problem.bert.params.named_mut()[index].1, &original).unwrap();
            let a = f64::from(analytic[entry]);
            diff += (a - numeric).powi(2);
            norm += a.abs().max(numeric.abs()).powi(2);
        }
        let relative = if norm > 0.0 { (diff / norm).sqrt() } else { 0.0 };
        let absolute = diff.sqrt();
        assert!(relative < TOLERANCE || absolute < ABSOLUTE_TOLERANCE, "{name}: relative gradient error {relative:.3e} exceeds {TOLERANCE} (absolute {absolute:.3e})");
        if absolute < ABSOLUTE_TOLERANCE {
            continue;
        }
        if relative > worst.0 {
            worst = (relative, name.clone());
        }
    }
    println!("worst relative gradient error {:.3e} on {}", worst.0, worst.1);
}
