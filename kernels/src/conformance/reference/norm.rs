//! Reference layer norm and its backward, straight from the formulas.

/// Returns `(out, mean, rstd)` for rows of `C` elements.
// x: (N, C), gamma: (C), beta: (C) -> out: (N, C), mean: (N), rstd: (N)
pub fn layer_norm(
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let channels = gamma.len();
    let mut out = Vec::with_capacity(x.len());
    let (mut means, mut rstds) = (Vec::new(), Vec::new());
    for row in x.chunks_exact(channels) {
        let mean = row.iter().sum::<f64>() / channels as f64;
        let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / channels as f64;
        let rstd = 1.0 / (variance + eps).sqrt();
        out.extend(
            row.iter()
                .zip(gamma)
                .zip(beta)
                .map(|((v, g), b)| (v - mean) * rstd * g + b),
        );
        means.push(mean);
        rstds.push(rstd);
    }
    (out, means, rstds)
}

/// Returns `(dx, dgamma, dbeta)`, where `dgamma` and `dbeta` are the row sums
/// alone (without the accumulated previous value).
// dout: (N, C), x: (N, C), gamma: (C) -> dx: (N, C), dgamma: (C), dbeta: (C)
pub fn layer_norm_backward(
    dout: &[f64],
    x: &[f64],
    gamma: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let channels = gamma.len();
    let (_, means, rstds) = layer_norm(x, gamma, &vec![0.0; channels], eps);
    let mut dx = Vec::with_capacity(x.len());
    let mut dgamma = vec![0.0; channels];
    let mut dbeta = vec![0.0; channels];
    for ((row, drow), (mean, rstd)) in x
        .chunks_exact(channels)
        .zip(dout.chunks_exact(channels))
        .zip(means.iter().zip(&rstds))
    {
        let xhat: Vec<f64> = row.iter().map(|v| (v - mean) * rstd).collect();
        let g: Vec<f64> = drow.iter().zip(gamma).map(|(d, g)| d * g).collect();
        let mean_g = g.iter().sum::<f64>() / channels as f64;
        let mean_g_xhat = g.iter().zip(&xhat).map(|(g, h)| g * h).sum::<f64>() / channels as f64;
        for c in 0..channels {
            dx.push(rstd * (g[c] - mean_g - xhat[c] * mean_g_xhat));
            dgamma[c] += drow[c] * xhat[c];
            dbeta[c] += drow[c];
        }
    }
    (dx, dgamma, dbeta)
}
