//! Reference matmul with per-element magnitudes `(|op(a)|·|op(b)|)[i, j]`.

/// Sizes and layout of a reference matmul, mirroring `MatmulDims` and `MatmulOptions`.
#[derive(Clone, Copy, Debug)]
pub struct Matmul {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a_batched: bool,
    pub b_batched: bool,
    pub transpose_a: bool,
    pub transpose_b: bool,
}

/// Returns `op(a)·op(b)` and `|op(a)|·|op(b)|`, both `(batch, M, N)`.
pub fn matmul(a: &[f64], b: &[f64], spec: &Matmul) -> (Vec<f64>, Vec<f64>) {
    let Matmul { batch, m, k, n, .. } = *spec;
    let mut out = vec![0.0; batch * m * n];
    let mut magnitude = vec![0.0; batch * m * n];
    for entry in 0..batch {
        let a_base = if spec.a_batched { entry * m * k } else { 0 };
        let b_base = if spec.b_batched { entry * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let (mut sum, mut abs_sum) = (0.0, 0.0);
                for l in 0..k {
                    let a_value = if spec.transpose_a {
                        a[a_base + l * m + i]
                    } else {
                        a[a_base + i * k + l]
                    };
                    let b_value = if spec.transpose_b {
                        b[b_base + j * k + l]
                    } else {
                        b[b_base + l * n + j]
                    };
                    sum += a_value * b_value;
                    abs_sum += (a_value * b_value).abs();
                }
                out[entry * m * n + i * n + j] = sum;
                magnitude[entry * m * n + i * n + j] = abs_sum;
            }
        }
    }
    (out, magnitude)
}
