//! Checks of `embedding` and `embedding_backward` with repeated ids.
//!
//! Bound: the forward copies rows, so it must be exact. Each `dtable` row is
//! its old value plus the `dout` rows of its id, a sum of at most `N + 1`
//! terms, off by `(N + 1)·u·(Σ|dout| + |dtable|)`. Small integers must match
//! exactly.

use super::harness::{
    Rng, UNIT_ROUNDOFF, assert_exact, assert_gradient, assert_rejected, assert_within, dot,
    download, f64s, poisoned, upload, upload_u32,
};
use super::reference;
use crate::backend::Backend;

/// (ids shape, V, C).
const CASES: &[(&[usize], usize, usize)] = &[
    (&[1], 1, 1),
    (&[7], 11, 5),
    (&[2, 9], 50, 33),
    (&[3, 64], 20, 48),
    (&[600], 700, 40),
];

/// Checks the lookup and the gradient against the reference, on random and exact data.
pub fn check_embedding(backend: &dyn Backend) {
    let mut rng = Rng::new(0xe3b);
    for &(id_dims, vocab, channels) in CASES {
        let count: usize = id_dims.iter().product();
        // Draw ids from a third of the vocabulary, so that many repeat.
        let ids: Vec<u32> = (0..count)
            .map(|_| rng.below(vocab.div_ceil(3)) as u32 * 3 % vocab as u32)
            .collect();
        let out_dims: Vec<usize> = id_dims.iter().copied().chain([channels]).collect();
        let case = format!("ids {id_dims:?} V={vocab} C={channels}");
        let ids_tensor = upload_u32(backend, &ids, id_dims);

        let table = rng.normal_vec(vocab * channels, 1.0);
        let mut out = poisoned(backend, &out_dims);
        backend
            .embedding(
                &ids_tensor,
                &upload(backend, &table, &[vocab, channels]),
                &mut out,
            )
            .expect("embedding");
        assert_exact(
            &format!("embedding {case}"),
            &download(backend, &out),
            &reference::embedding(&ids, &f64s(&table), channels),
        );

        for exact in [false, true] {
            let (dout, initial) = if exact {
                (
                    rng.small_ints(count * channels, 8),
                    rng.small_ints(vocab * channels, 8),
                )
            } else {
                (
                    rng.normal_vec(count * channels, 1.0),
                    rng.normal_vec(vocab * channels, 1.0),
                )
            };
            let mut dtable = upload(backend, &initial, &[vocab, channels]);
            backend
                .embedding_backward(&upload(backend, &dout, &out_dims), &ids_tensor, &mut dtable)
                .expect("embedding_backward");
            let want = reference::embedding_backward(&f64s(&dout), &ids, &f64s(&initial), channels);
            let got = download(backend, &dtable);
            if exact {
                assert_exact(
                    &format!("embedding_backward {case} on integers"),
                    &got,
                    &want,
                );
            } else {
                let abs_dout: Vec<f64> = dout.iter().map(|d| (*d as f64).abs()).collect();
                let abs_initial: Vec<f64> = initial.iter().map(|d| (*d as f64).abs()).collect();
                let magnitude =
                    reference::embedding_backward(&abs_dout, &ids, &abs_initial, channels);
                let bound: Vec<f64> = magnitude
                    .iter()
                    .map(|mag| (count as f64 + 1.0) * UNIT_ROUNDOFF * mag)
                    .collect();
                assert_within(&format!("embedding_backward {case}"), &got, &want, &bound);
            }
        }
    }

    // Finite differences of Σ dout·embedding(ids, table) with respect to the table.
    let (vocab, channels) = (4, 3);
    let ids = [2u32, 0, 2, 3, 2];
    let table = f64s(&rng.normal_vec(vocab * channels, 1.0));
    let dout = rng.normal_vec(ids.len() * channels, 1.0);
    let dout64 = f64s(&dout);
    let mut dtable = backend.zeros(&[vocab, channels]).expect("zeros");
    let ids_tensor = upload_u32(backend, &ids, &[ids.len()]);
    backend
        .embedding_backward(
            &upload(backend, &dout, &[ids.len(), channels]),
            &ids_tensor,
            &mut dtable,
        )
        .expect("embedding_backward");
    let analytic =
        reference::embedding_backward(&dout64, &ids, &vec![0.0; vocab * channels], channels);
    let abs_dout: Vec<f64> = dout64.iter().map(|d| d.abs()).collect();
    let magnitude =
        reference::embedding_backward(&abs_dout, &ids, &vec![0.0; vocab * channels], channels);
    let bound: Vec<f64> = magnitude
        .iter()
        .map(|mag| (ids.len() as f64 + 1.0) * UNIT_ROUNDOFF * mag)
        .collect();
    let loss = |table: &[f64]| dot(&dout64, &reference::embedding(&ids, table, channels));
    assert_gradient(
        "embedding_backward",
        &table,
        loss,
        &analytic,
        &download(backend, &dtable),
        &bound,
    );

    let table = upload(backend, &[0.0; 6], &[3, 2]);
    let mut out = poisoned(backend, &[2, 3]);
    let result = backend.embedding(&upload_u32(backend, &[0, 1], &[2]), &table, &mut out);
    assert_rejected(backend, result, "embedding", &out);
}
