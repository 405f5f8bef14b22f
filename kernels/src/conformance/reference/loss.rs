//! Reference losses and their gradients, straight from the formulas in
//! `backend::loss`.

fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Returns `(loss, logsumexp per row)`.
// logits: (N, V), targets: (N)
pub fn cross_entropy(
    logits: &[f64],
    targets: &[u32],
    ignore_index: u32,
    vocab: usize,
) -> (f64, Vec<f64>) {
    let mut total = 0.0;
    let mut kept_rows = 0usize;
    let mut lses = Vec::new();
    for (row, &target) in logits.chunks_exact(vocab).zip(targets) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        lses.push(lse);
        if target != ignore_index {
            total += lse - row[target as usize];
            kept_rows += 1;
        }
    }
    (
        if kept_rows == 0 {
            0.0
        } else {
            total / kept_rows as f64
        },
        lses,
    )
}

// logits: (N, V), targets: (N) -> dlogits: (N, V)
pub fn cross_entropy_backward(
    dloss: f64,
    logits: &[f64],
    targets: &[u32],
    ignore_index: u32,
    vocab: usize,
) -> Vec<f64> {
    let (_, lses) = cross_entropy(logits, targets, ignore_index, vocab);
    let kept_rows = targets
        .iter()
        .filter(|&&target| target != ignore_index)
        .count();
    let mut dlogits = Vec::with_capacity(logits.len());
    for ((row, &target), lse) in logits.chunks_exact(vocab).zip(targets).zip(lses) {
        for (j, &x) in row.iter().enumerate() {
            let gradient = if target == ignore_index {
                0.0
            } else {
                let onehot = if j == target as usize { 1.0 } else { 0.0 };
                ((x - lse).exp() - onehot) * dloss / kept_rows as f64
            };
            dlogits.push(gradient);
        }
    }
    dlogits
}

pub fn mse(pred: &[f64], target: &[f64]) -> f64 {
    if pred.is_empty() {
        return 0.0;
    }
    pred.iter()
        .zip(target)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / pred.len() as f64
}

pub fn mse_backward(dloss: f64, pred: &[f64], target: &[f64]) -> Vec<f64> {
    pred.iter()
        .zip(target)
        .map(|(p, t)| dloss * 2.0 * (p - t) / pred.len() as f64)
        .collect()
}

pub fn bce_with_logits(logits: &[f64], targets: &[f64]) -> f64 {
    if logits.is_empty() {
        return 0.0;
    }
    logits
        .iter()
        .zip(targets)
        .map(|(&x, &y)| softplus(x) - x * y)
        .sum::<f64>()
        / logits.len() as f64
}

pub fn bce_with_logits_backward(dloss: f64, logits: &[f64], targets: &[f64]) -> Vec<f64> {
    logits
        .iter()
        .zip(targets)
        .map(|(&x, &y)| dloss * (sigmoid(x) - y) / logits.len() as f64)
        .collect()
}

/// `Σ w·softplus(s_j - s_i) / Σ w`, or 0 when the weights sum to 0.
// scores: (N), pairs: (P, 2), weights: (P)
pub fn pairwise_logistic(scores: &[f64], pairs: &[u32], weights: &[f64]) -> f64 {
    let weight_sum: f64 = weights.iter().sum();
    if weight_sum == 0.0 {
        return 0.0;
    }
    let total: f64 = pairs
        .chunks_exact(2)
        .zip(weights)
        .map(|(pair, w)| w * softplus(scores[pair[1] as usize] - scores[pair[0] as usize]))
        .sum();
    total / weight_sum
}

pub fn pairwise_logistic_backward(
    dloss: f64,
    scores: &[f64],
    pairs: &[u32],
    weights: &[f64],
) -> Vec<f64> {
    let mut dscores = vec![0.0; scores.len()];
    let weight_sum: f64 = weights.iter().sum();
    if weight_sum == 0.0 {
        return dscores;
    }
    for (pair, w) in pairs.chunks_exact(2).zip(weights) {
        let (better, worse) = (pair[0] as usize, pair[1] as usize);
        let gradient = dloss * w * sigmoid(scores[worse] - scores[better]) / weight_sum;
        dscores[better] -= gradient;
        dscores[worse] += gradient;
    }
    dscores
}
