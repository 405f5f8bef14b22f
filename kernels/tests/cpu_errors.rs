//! Errors that the CPU backend reports beyond the conformance suite:
//! aliased outputs, out-of-range indices, foreign tensors and invalid
//! scalar arguments. Each check also confirms the output was left unchanged.

use std::sync::Arc;

use flywheel_kernels::CpuBackend;
use flywheel_kernels::prelude::*;

fn backend() -> CpuBackend {
    CpuBackend::with_threads(2).expect("pool")
}

#[test]
fn aliased_output_rejected() {
    let backend = backend();
    let x = backend.upload(&[1.0, -1.0, 2.0], &[3]).unwrap();
    let mut alias = x.clone();
    let error = backend.gelu(&x, &mut alias).unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::Aliased {
                op: "gelu",
                argument: "out"
            }
        ),
        "{error}"
    );
    assert_eq!(backend.download(&x).unwrap(), [1.0, -1.0, 2.0]);

    // A reshape shares storage, so it aliases too.
    let y = backend.upload(&[1.0; 9], &[3, 3]).unwrap();
    let mut y_alias = y.reshape(&[9]).unwrap().reshape(&[3, 3]).unwrap();
    let error = backend
        .matmul(&y, &y, &mut y_alias, MatmulOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::Aliased {
                op: "matmul",
                argument: "out"
            }
        ),
        "{error}"
    );

    // Two outputs that share storage.
    let (mut dq, mut dv) = (
        backend.zeros(&[1, 1, 2]).unwrap(),
        backend.zeros(&[1, 1, 2]).unwrap(),
    );
    let mut dk_alias = dq.clone();
    let qkv = backend.upload(&[0.5, 0.5], &[1, 1, 2]).unwrap();
    let probs = backend.upload(&[1.0], &[1, 1, 1, 1]).unwrap();
    let error = backend
        .attention_backward(
            &qkv,
            &qkv,
            &qkv,
            &qkv,
            &probs,
            1,
            &mut dq,
            &mut dk_alias,
            &mut dv,
        )
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::Aliased {
                op: "attention_backward",
                argument: "dk"
            }
        ),
        "{error}"
    );
}

#[test]
fn embedding_id_out_of_range() {
    let backend = backend();
    let table = backend.upload(&[1.0; 6], &[3, 2]).unwrap();
    let ids = backend.upload_u32(&[0, 2, 3], &[3]).unwrap();
    let mut out = backend.upload(&[7.0; 6], &[3, 2]).unwrap();
    let error = backend.embedding(&ids, &table, &mut out).unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::IndexOutOfRange {
                index: 3,
                position: 2,
                limit: 3,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        backend.download(&out).unwrap(),
        [7.0; 6],
        "output changed before the error"
    );

    let mut dtable = backend.zeros(&[3, 2]).unwrap();
    let error = backend
        .embedding_backward(&out, &ids, &mut dtable)
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::IndexOutOfRange {
                op: "embedding_backward",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn loss_index_out_of_range() {
    let backend = backend();
    let logits = backend.zeros(&[2, 4]).unwrap();
    let targets = backend.upload_u32(&[1, 4], &[2]).unwrap();
    let (mut loss, mut lse) = (backend.zeros(&[1]).unwrap(), backend.zeros(&[2]).unwrap());
    let error = backend
        .cross_entropy(&logits, &targets, u32::MAX, &mut loss, &mut lse)
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::IndexOutOfRange {
                argument: "targets",
                index: 4,
                ..
            }
        ),
        "{error}"
    );
    // The ignore index may lie outside the vocabulary.
    backend
        .cross_entropy(&logits, &targets, 4, &mut loss, &mut lse)
        .expect("ignored target 4");

    let scores = backend.zeros(&[3]).unwrap();
    let pairs = backend.upload_u32(&[0, 1, 2, 5], &[2, 2]).unwrap();
    let weights = backend.upload(&[1.0, 1.0], &[2]).unwrap();
    let error = backend
        .pairwise_logistic(&scores, &pairs, &weights, &mut loss)
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::IndexOutOfRange {
                argument: "pairs",
                index: 5,
                position: 3,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn foreign_tensor_rejected() {
    let backend = backend();
    let foreign = Tensor::from_storage(Arc::new(0u8), Shape::new(&[2]), DType::F32);
    let mut out = backend.zeros(&[2]).unwrap();
    let error = backend.gelu(&foreign, &mut out).unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::ForeignTensor {
                op: "gelu",
                argument: "x",
                backend: "cpu"
            }
        ),
        "{error}"
    );
}

#[test]
fn dtype_mismatch_rejected() {
    let backend = backend();
    let ids = backend.upload_u32(&[1, 2], &[2]).unwrap();
    let mut out = backend.zeros(&[2]).unwrap();
    let error = backend.gelu(&ids, &mut out).unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::DTypeMismatch {
                expected: DType::F32,
                actual: DType::U32,
                ..
            }
        ),
        "{error}"
    );
    let mut filled = ids.clone();
    assert!(matches!(
        backend.fill(&mut filled, 1.0),
        Err(KernelError::DTypeMismatch { .. })
    ));
}

#[test]
fn invalid_scalars_rejected() {
    let backend = backend();
    let x = backend.zeros(&[1, 2, 6]).unwrap();
    let mask = backend.upload_u32(&[1, 1], &[1, 2]).unwrap();
    let (mut out, mut probs) = (
        backend.zeros(&[1, 2, 6]).unwrap(),
        backend.zeros(&[1, 4, 2, 2]).unwrap(),
    );
    let error = backend
        .attention(&x, &x, &x, &mask, 4, &mut out, &mut probs)
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::InvalidArgument {
                argument: "heads",
                ..
            }
        ),
        "{error}"
    );

    let rows = backend.zeros(&[2, 3]).unwrap();
    let (gamma, beta) = (backend.zeros(&[3]).unwrap(), backend.zeros(&[3]).unwrap());
    let (mut out, mut mean, mut rstd) = (
        backend.zeros(&[2, 3]).unwrap(),
        backend.zeros(&[2]).unwrap(),
        backend.zeros(&[2]).unwrap(),
    );
    let error = backend
        .layer_norm(&rows, &gamma, &beta, 0.0, &mut out, &mut mean, &mut rstd)
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::InvalidArgument {
                argument: "eps",
                ..
            }
        ),
        "{error}"
    );

    let mut grad = backend.zeros(&[3]).unwrap();
    let mut norm = backend.zeros(&[1]).unwrap();
    let error = backend
        .clip_grad_norm(&mut [&mut grad], 0.0, &mut norm)
        .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::InvalidArgument {
                argument: "max_norm",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn error_messages_name_op_and_shapes() {
    let backend = backend();
    let a = backend.zeros(&[2, 3]).unwrap();
    let b = backend.zeros(&[4, 5]).unwrap();
    let mut out = backend.zeros(&[2, 5]).unwrap();
    let message = backend
        .matmul(&a, &b, &mut out, MatmulOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(message, "matmul: `b` has shape (4, 5), expected (3, 5)");
}

#[test]
fn fully_masked_sequence_outputs_zeros() {
    let backend = backend();
    let q = backend.upload(&[1.0, -2.0, 0.5, 3.0], &[1, 2, 2]).unwrap();
    let mask = backend.upload_u32(&[0, 0], &[1, 2]).unwrap();
    let (mut out, mut probs) = (
        backend.upload(&[f32::NAN; 4], &[1, 2, 2]).unwrap(),
        backend.upload(&[f32::NAN; 4], &[1, 1, 2, 2]).unwrap(),
    );
    backend
        .attention(&q, &q, &q, &mask, 1, &mut out, &mut probs)
        .unwrap();
    assert_eq!(backend.download(&out).unwrap(), [0.0; 4]);
    assert_eq!(backend.download(&probs).unwrap(), [0.0; 4]);
}
