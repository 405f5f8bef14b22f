//! Checks of upload, write, download, fill, copy and reshape.

use super::harness::{Rng, download, poisoned, upload, upload_u32};
use crate::backend::Backend;
use crate::error::KernelError;
use crate::tensor::DType;

/// Checks that data survives every host and device path unchanged.
pub fn check_storage(backend: &dyn Backend) {
    let mut rng = Rng::new(0x5707);
    for dims in [&[][..], &[1], &[7], &[3, 5], &[2, 3, 17], &[4, 4100]] {
        let len: usize = dims.iter().product();
        let data = rng.normal_vec(len, 1.0);
        let tensor = upload(backend, &data, dims);
        assert_eq!(tensor.dims(), dims, "upload keeps the shape");
        assert_eq!(tensor.dtype(), DType::F32);
        assert_eq!(
            download(backend, &tensor),
            data,
            "upload then download {dims:?}"
        );

        let zeros = backend.zeros(dims).expect("zeros");
        assert!(
            download(backend, &zeros).iter().all(|&value| value == 0.0),
            "zeros {dims:?}"
        );

        let mut filled = poisoned(backend, dims);
        backend.fill(&mut filled, 2.5).expect("fill");
        assert!(
            download(backend, &filled).iter().all(|&value| value == 2.5),
            "fill {dims:?}"
        );

        let mut copied = poisoned(backend, dims);
        backend.copy(&tensor, &mut copied).expect("copy");
        assert_eq!(download(backend, &copied), data, "copy {dims:?}");

        let replacement = rng.normal_vec(len, 1.0);
        let mut written = poisoned(backend, dims);
        backend.write(&mut written, &replacement).expect("write");
        assert_eq!(download(backend, &written), replacement, "write {dims:?}");
    }

    let ids: Vec<u32> = vec![0, 1, 30_521, u32::MAX];
    let mut id_tensor = upload_u32(backend, &ids, &[2, 2]);
    assert_eq!(id_tensor.dtype(), DType::U32);
    assert_eq!(backend.download_u32(&id_tensor).expect("download_u32"), ids);
    backend
        .write_u32(&mut id_tensor, &[4, 3, 2, 1])
        .expect("write_u32");
    assert_eq!(
        backend.download_u32(&id_tensor).expect("download_u32"),
        [4, 3, 2, 1]
    );
    let zero_ids = backend.zeros_u32(&[3]).expect("zeros_u32");
    assert_eq!(
        backend.download_u32(&zero_ids).expect("download_u32"),
        [0, 0, 0]
    );

    check_reshape(backend);
    check_storage_errors(backend);
}

/// Checks that a reshape shares storage, so a write through one handle shows in the other.
fn check_reshape(backend: &dyn Backend) {
    let data: Vec<f32> = (0..12).map(|value| value as f32).collect();
    let tensor = upload(backend, &data, &[2, 3, 2]);
    let mut flat = tensor
        .reshape(&[6, 2])
        .expect("reshape to the same element count");
    assert_eq!(flat.dims(), [6, 2]);
    assert!(flat.shares_storage(&tensor));
    backend.fill(&mut flat, 1.0).expect("fill");
    assert_eq!(
        download(backend, &tensor),
        vec![1.0; 12],
        "reshape shares storage"
    );
    assert!(matches!(
        tensor.reshape(&[5, 2]),
        Err(KernelError::InvalidArgument { op: "reshape", .. })
    ));
}

fn check_storage_errors(backend: &dyn Backend) {
    assert!(
        matches!(
            backend.upload(&[1.0, 2.0], &[3]),
            Err(KernelError::LengthMismatch {
                expected: 3,
                actual: 2,
                ..
            })
        ),
        "upload with too little data"
    );
    let mut tensor = upload(backend, &[1.0, 2.0], &[2]);
    assert!(
        matches!(
            backend.write(&mut tensor, &[1.0]),
            Err(KernelError::LengthMismatch { .. })
        ),
        "write with too little data"
    );
    assert!(
        matches!(
            backend.download_u32(&tensor),
            Err(KernelError::DTypeMismatch { .. })
        ),
        "download_u32 of f32 data"
    );
    let ids = upload_u32(backend, &[1], &[1]);
    assert!(
        matches!(
            backend.download(&ids),
            Err(KernelError::DTypeMismatch { .. })
        ),
        "download of u32 data"
    );
    let mut wrong = poisoned(backend, &[3]);
    assert!(
        matches!(
            backend.copy(&tensor, &mut wrong),
            Err(KernelError::ShapeMismatch { op: "copy", .. })
        ),
        "copy into another shape"
    );
}
