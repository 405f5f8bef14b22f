//! Learning-rate schedule: linear warm-up from 0 to the peak over `warmup` steps, then linear
//! decay to 0 at `total` steps.

/// Returns the learning rate of optimizer step `step` (0-based).
pub fn learning_rate(peak: f32, step: u64, warmup: u64, total: u64) -> f32 {
    let step = step as f64;
    let factor = if step < warmup as f64 {
        (step + 1.0) / warmup as f64
    } else if total > warmup {
        ((total as f64 - step) / (total - warmup) as f64).max(0.0)
    } else {
        1.0
    };
    (f64::from(peak) * factor) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay() {
        assert_eq!(learning_rate(1.0, 0, 4, 10), 0.25);
        assert_eq!(learning_rate(1.0, 3, 4, 10), 1.0);
        assert_eq!(learning_rate(1.0, 4, 4, 10), 1.0);
        assert_eq!(learning_rate(1.0, 7, 4, 10), 0.5);
        assert_eq!(learning_rate(1.0, 10, 4, 10), 0.0);
        assert_eq!(learning_rate(2.0, 5, 0, 10), 1.0);
    }
}
