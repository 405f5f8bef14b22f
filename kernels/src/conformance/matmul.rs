//! Checks of `matmul` for every transpose, batch layout and accumulate mode.
//!
//! Bound: an element of `op(a)·op(b)` is a sum of `K` products. With the
//! product roundings and the final add into `out`, its error is at most
//! `(K + MATMUL_EXTRA_ROUNDINGS)·u·(Σ_l |a_il·b_lj| + |out_ij|)`, whatever
//! blocking and summation order the backend uses. Small-integer inputs, whose
//! sums are exact in f32, must match exactly.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_exact, assert_gradient, assert_rejected, assert_within, dot,
    download, f64s, poisoned, upload,
};
use super::reference::{self, Matmul};
use crate::backend::{Backend, MatmulOptions};
use crate::tensor::Tensor;

/// Roundings beyond the `K` of the sum: products, the `k`-block partial
/// sums added into the output, and the accumulate add.
const MATMUL_EXTRA_ROUNDINGS: f64 = 4.0;

/// (batch, M, K, N). Batch 1 runs rank-2 operands; larger batches run every
/// layout of batched and shared operands.
const CASES: &[(usize, usize, usize, usize)] = &[
    (1, 1, 1, 1),
    (1, 3, 5, 7),
    (1, 17, 33, 9),
    (1, 64, 130, 65),
    (1, 4, 0, 3),
    (1, 0, 3, 2),
    (3, 5, 7, 2),
    (2, 33, 17, 40),
];

fn operand_dims(
    batched: bool,
    batch: usize,
    rows: usize,
    cols: usize,
    transposed: bool,
) -> Vec<usize> {
    let (rows, cols) = if transposed {
        (cols, rows)
    } else {
        (rows, cols)
    };
    if batched {
        vec![batch, rows, cols]
    } else {
        vec![rows, cols]
    }
}

/// Runs one matmul on the backend and returns the output data.
fn run(
    backend: &dyn Backend,
    a: &Tensor,
    b: &Tensor,
    out: &mut Tensor,
    options: MatmulOptions,
) -> Vec<f32> {
    backend
        .matmul(a, b, out, options)
        .unwrap_or_else(|error| panic!("matmul {options:?}: {error}"));
    download(backend, out)
}

/// Checks `matmul` against the reference for every layout, on random and on exact inputs.
pub fn check_matmul(backend: &dyn Backend) {
    let mut rng = Rng::new(0x3a7);
    for &(batch, m, k, n) in CASES {
        let layouts: &[(bool, bool)] = if batch == 1 {
            &[(false, false)]
        } else {
            &[(true, true), (true, false), (false, true)]
        };
        for &(a_batched, b_batched) in layouts {
            for transpose_a in [false, true] {
                for transpose_b in [false, true] {
                    for accumulate in [false, true] {
                        let spec = Matmul {
                            batch,
                            m,
                            k,
                            n,
                            a_batched,
                            b_batched,
                            transpose_a,
                            transpose_b,
                        };
                        let options = MatmulOptions {
                            transpose_a,
                            transpose_b,
                            accumulate,
                        };
                        check_case(backend, &mut rng, spec, options);
                    }
                }
            }
        }
    }
    check_gradients(backend, &mut rng);
    check_rejects(backend);
}

fn check_case(backend: &dyn Backend, rng: &mut Rng, spec: Matmul, options: MatmulOptions) {
    let Matmul {
        batch,
        m,
        k,
        n,
        a_batched,
        b_batched,
        ..
    } = spec;
    let a_dims = operand_dims(a_batched, batch, m, k, spec.transpose_a);
    let b_dims = operand_dims(b_batched, batch, k, n, spec.transpose_b);
    let out_dims = if a_batched || b_batched {
        vec![batch, m, n]
    } else {
        vec![m, n]
    };
    let case = format!("matmul {spec:?} accumulate={}", options.accumulate);

    for exact in [false, true] {
        let (a, b) = if exact {
            (
                rng.small_ints(a_dims.iter().product(), 4),
                rng.small_ints(b_dims.iter().product(), 4),
            )
        } else {
            (
                rng.normal_vec(a_dims.iter().product(), 1.0),
                rng.normal_vec(b_dims.iter().product(), 1.0),
            )
        };
        let out_len: usize = out_dims.iter().product();
        let (initial, mut out) = if options.accumulate {
            let initial = if exact {
                rng.small_ints(out_len, 8)
            } else {
                rng.normal_vec(out_len, 1.0)
            };
            let tensor = upload(backend, &initial, &out_dims);
            (initial, tensor)
        } else {
            (vec![0.0; out_len], poisoned(backend, &out_dims))
        };
        let got = run(
            backend,
            &upload(backend, &a, &a_dims),
            &upload(backend, &b, &b_dims),
            &mut out,
            options,
        );

        let (product, magnitude) = reference::matmul(&f64s(&a), &f64s(&b), &spec);
        let want: Vec<f64> = product
            .iter()
            .zip(&initial)
            .map(|(p, &c)| p + c as f64)
            .collect();
        if exact {
            assert_exact(&format!("{case} on integers"), &got, &want);
        } else {
            let bound: Vec<f64> = magnitude
                .iter()
                .zip(&initial)
                .map(|(mag, &c)| {
                    (k as f64 + MATMUL_EXTRA_ROUNDINGS) * UNIT_ROUNDOFF * (mag + (c as f64).abs())
                })
                .collect();
            assert_within(&case, &got, &want, &bound);
        }
    }
}

/// Checks the backward recipe in `backend::matmul` against finite differences:
/// `da = dout·bᵀ` and `db += aᵀ·dout`.
fn check_gradients(backend: &dyn Backend, rng: &mut Rng) {
    let (m, k, n) = (3, 4, 5);
    let a = rng.normal_vec(m * k, 1.0);
    let b = rng.normal_vec(k * n, 1.0);
    let dout = rng.normal_vec(m * n, 1.0);
    let db_initial = rng.normal_vec(k * n, 1.0);
    let (a64, b64, dout64) = (f64s(&a), f64s(&b), f64s(&dout));
    let forward = |a: &[f64], b: &[f64]| {
        let spec = Matmul {
            batch: 1,
            m,
            k,
            n,
            a_batched: false,
            b_batched: false,
            transpose_a: false,
            transpose_b: false,
        };
        reference::matmul(a, b, &spec).0
    };

    let (a_t, b_t, dout_t) = (
        upload(backend, &a, &[m, k]),
        upload(backend, &b, &[k, n]),
        upload(backend, &dout, &[m, n]),
    );
    let mut da = poisoned(backend, &[m, k]);
    let da_got = run(
        backend,
        &dout_t,
        &b_t,
        &mut da,
        MatmulOptions {
            transpose_b: true,
            ..Default::default()
        },
    );
    let mut db = upload(backend, &db_initial, &[k, n]);
    let db_got = run(
        backend,
        &a_t,
        &dout_t,
        &mut db,
        MatmulOptions {
            transpose_a: true,
            accumulate: true,
            ..Default::default()
        },
    );
    let db_added: Vec<f32> = db_got
        .iter()
        .zip(&db_initial)
        .map(|(got, initial)| got - initial)
        .collect();

    let spec_da = Matmul {
        batch: 1,
        m,
        k: n,
        n: k,
        a_batched: false,
        b_batched: false,
        transpose_a: false,
        transpose_b: true,
    };
    let (da_want, da_mag) = reference::matmul(&dout64, &b64, &spec_da);
    let spec_db = Matmul {
        batch: 1,
        m: k,
        k: m,
        n,
        a_batched: false,
        b_batched: false,
        transpose_a: true,
        transpose_b: false,
    };
    let (db_want, db_mag) = reference::matmul(&a64, &dout64, &spec_db);
    let da_bound: Vec<f64> = da_mag
        .iter()
        .map(|mag| (n as f64 + MATMUL_EXTRA_ROUNDINGS) * UNIT_ROUNDOFF * mag)
        .collect();
    // db also carries the initial value, and subtracting it back adds one rounding of |db|.
    let db_bound: Vec<f64> = db_mag
        .iter()
        .zip(db_initial.iter().zip(&db_got))
        .map(|(mag, (&initial, &got))| {
            (m as f64 + MATMUL_EXTRA_ROUNDINGS) * UNIT_ROUNDOFF * (mag + (initial as f64).abs())
                + UNIT_ROUNDOFF * (got as f64).abs()
        })
        .collect();
    assert_gradient(
        "matmul da",
        &a64,
        |a| dot(&dout64, &forward(a, &b64)),
        &da_want,
        &da_got,
        &da_bound,
    );
    assert_gradient(
        "matmul db",
        &b64,
        |b| dot(&dout64, &forward(&a64, b)),
        &db_want,
        &db_added,
        &db_bound,
    );
}

fn check_rejects(backend: &dyn Backend) {
    let a = upload(backend, &[0.0; 6], &[2, 3]);
    let b = upload(backend, &[0.0; 8], &[4, 2]);
    let mut out = poisoned(backend, &[2, 2]);
    assert_rejected(
        backend,
        backend.matmul(&a, &b, &mut out, MatmulOptions::default()),
        "matmul",
        &out,
    );
    let b = upload(backend, &[0.0; 6], &[3, 2]);
    let mut wrong_out = poisoned(backend, &[2, 3]);
    assert_rejected(
        backend,
        backend.matmul(&a, &b, &mut wrong_out, MatmulOptions::default()),
        "matmul",
        &wrong_out,
    );
    let batched_a = upload(backend, &[0.0; 12], &[2, 2, 3]);
    let batched_b = upload(backend, &[0.0; 18], &[3, 3, 2]);
    let mut batched_out = poisoned(backend, &[2, 2, 2]);
    assert_rejected(
        backend,
        backend.matmul(
            &batched_a,
            &batched_b,
            &mut batched_out,
            MatmulOptions::default(),
        ),
        "matmul",
        &batched_out,
    );
}
