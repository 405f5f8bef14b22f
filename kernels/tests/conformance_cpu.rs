//! Runs the backend conformance suite against the CPU backend, once on a
//! two-thread pool and once single-threaded, so that both the parallel and
//! the sequential paths of `gemm` and rayon are covered.

mod two_threads {
    flywheel_kernels::conformance_tests!(
        flywheel_kernels::CpuBackend::with_threads(2).expect("build a 2-thread pool")
    );
}

mod one_thread {
    flywheel_kernels::conformance_tests!(
        flywheel_kernels::CpuBackend::with_threads(1).expect("build a 1-thread pool")
    );
}
