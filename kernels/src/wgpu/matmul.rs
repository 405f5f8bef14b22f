//! stub
use super::GpuBackend;
use crate::backend::*;
use crate::error::Result;
use crate::tensor::Tensor;
impl MatmulOps for GpuBackend { fn matmul(&self, _a: &Tensor, _b: &Tensor, _o: &mut Tensor, _p: MatmulOptions) -> Result<()> { unimplemented!() } }
impl NormOps for GpuBackend {
    fn layer_norm(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: f32, _: &mut Tensor, _: &mut Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn layer_norm_backward(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: &mut Tensor, _: &mut Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
}
impl AttentionOps for GpuBackend {
    fn attention(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: usize, _: &mut Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn attention_backward(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: usize, _: &mut Tensor, _: &mut Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
}
impl EmbeddingOps for GpuBackend {
    fn embedding(&self, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn embedding_backward(&self, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
}
impl DropoutOps for GpuBackend {
    fn dropout(&self, _: &Tensor, _: f32, _: u64, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn dropout_backward(&self, _: &Tensor, _: f32, _: u64, _: &mut Tensor) -> Result<()> { unimplemented!() }
}
impl LossOps for GpuBackend {
    fn cross_entropy(&self, _: &Tensor, _: &Tensor, _: u32, _: &mut Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn cross_entropy_backward(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: u32, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn mse(&self, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn mse_backward(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn bce_with_logits(&self, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn bce_with_logits_backward(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn pairwise_logistic(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
    fn pairwise_logistic_backward(&self, _: &Tensor, _: &Tensor, _: &Tensor, _: &Tensor, _: &mut Tensor) -> Result<()> { unimplemented!() }
}
impl OptimOps for GpuBackend {
    fn adamw_step(&self, _: &mut Tensor, _: &Tensor, _: &mut Tensor, _: &mut Tensor, _: &AdamWConfig, _: u32) -> Result<()> { unimplemented!() }
    fn clip_grad_norm(&self, _: &mut [&mut Tensor], _: f32, _: &mut Tensor) -> Result<()> { unimplemented!() }
}
