//! Philox4x32-10, the counter-based random number generator behind dropout,
//! and the dropout mask derived from it.
//!
//! Philox4x32-10, the counter-based generator of the Random123 library, maps
//! a 128-bit counter and a 64-bit key to 128 random bits
//! with ten rounds of 32×32→64-bit multiplies, xors and key additions. The
//! same (key, counter) gives the same bits on every backend, so a dropout
//! mask depends only on the seed and the element index, never on threads or
//! on the order in which a GPU runs its workgroups.
//!
//! Everything here uses only u32 wrapping arithmetic, shifts and xors, which
//! WGSL has. WGSL has no u64, so `mul_hi_lo` builds the 64-bit product from
//! 16-bit halves. A WGSL shader can port these functions line for line.
//!
//! # Dropout mask
//!
//! Element `i` of a tensor (row-major index) uses word `i % 4` of
//! `philox4x32_10([i / 4 low 32 bits, i / 4 high 32 bits, 0, 0], [seed low 32 bits, seed high 32 bits])`.
//! The element is kept when that word is `>= dropout_threshold(p)`, which
//! happens with probability `1 - p` to within 2⁻³².

/// Philox4x32 round multipliers.
const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Philox4x32 key schedule increments (Weyl sequence).
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Returns the high and low 32 bits of the 64-bit product `a·b`, using only u32 arithmetic.
#[inline(always)]
pub fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let (a_hi, a_lo) = (a >> 16, a & 0xFFFF);
    let (b_hi, b_lo) = (b >> 16, b & 0xFFFF);
    let lo_lo = a_lo * b_lo;
    let lo_hi = a_lo * b_hi;
    let hi_lo = a_hi * b_lo;
    let hi_hi = a_hi * b_hi;
    // Carries out of the low word: each summand is below 2¹⁷, so no overflow.
    let middle = (lo_lo >> 16) + (lo_hi & 0xFFFF) + (hi_lo & 0xFFFF);
    let hi = hi_hi
        .wrapping_add(lo_hi >> 16)
        .wrapping_add(hi_lo >> 16)
        .wrapping_add(middle >> 16);
    (hi, a.wrapping_mul(b))
}

/// Philox4x32 with 10 rounds.
#[inline(always)]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let lanes = philox4x32_10_lanes(counter.map(|word| [word]), key);
    lanes.map(|[word]| word)
}

/// Philox4x32-10 on `L` counters at once: `counter[w][l]` is word `w` of
/// counter `l`, and so is the output. Written lane by lane so that
/// compilers vectorize it; `philox4x32_10` is the one-lane case.
#[inline(always)]
pub fn philox4x32_10_lanes<const L: usize>(counter: [[u32; L]; 4], key: [u32; 2]) -> [[u32; L]; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        for lane in 0..L {
            let (hi0, lo0) = mul_hi_lo(PHILOX_M0, x0[lane]);
            let (hi1, lo1) = mul_hi_lo(PHILOX_M1, x2[lane]);
            (x0[lane], x1[lane], x2[lane], x3[lane]) =
                (hi1 ^ x1[lane] ^ k[0], lo1, hi0 ^ x3[lane] ^ k[1], lo0);
        }
    }
    [x0, x1, x2, x3]
}

/// Splits a 64-bit seed into the Philox key.
#[inline(always)]
pub fn seed_key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Returns the four random words for elements `4·group .. 4·group + 3`.
#[inline(always)]
pub fn dropout_words(key: [u32; 2], group: u64) -> [u32; 4] {
    philox4x32_10([group as u32, (group >> 32) as u32, 0, 0], key)
}

/// Smallest kept word for dropout probability `p`: `round(p·2³²)`, saturated
/// to `u32::MAX`. Backends compute it on the host with this function so that
/// all of them compare against the same integer.
pub fn dropout_threshold(p: f32) -> u32 {
    let scaled = (p as f64 * 4_294_967_296.0).round();
    if scaled >= u32::MAX as f64 {
        u32::MAX
    } else {
        scaled as u32
    }
}

/// Factor applied to kept elements, `1/(1 - p)`, rounded once from f64.
pub fn dropout_scale(p: f32) -> f32 {
    (1.0 / (1.0 - p as f64)) as f32
}

/// Returns whether element `index` survives dropout with this seed and threshold.
pub fn dropout_keep(seed: u64, threshold: u32, index: u64) -> bool {
    let words = dropout_words(seed_key(seed), index / 4);
    words[(index % 4) as usize] >= threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors for Philox4x32-10 from the Random123 library,
    /// file `tests/kat_vectors`: counter, key, expected output.
    #[test]
    fn philox_matches_random123_vectors() {
        let vectors: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            (
                [0; 4],
                [0; 2],
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, expected) in vectors {
            assert_eq!(
                philox4x32_10(counter, key),
                expected,
                "counter {counter:x?} key {key:x?}"
            );
        }
    }

    #[test]
    fn mul_hi_lo_matches_u64_product() {
        let samples = [
            0u32,
            1,
            0xFFFF,
            0x1_0000,
            0xFFFF_FFFF,
            PHILOX_M0,
            PHILOX_M1,
            0x8000_0000,
            12345,
        ];
        for &a in &samples {
            for &b in &samples {
                let product = a as u64 * b as u64;
                assert_eq!(
                    mul_hi_lo(a, b),
                    ((product >> 32) as u32, product as u32),
                    "{a:#x} * {b:#x}"
                );
            }
        }
    }

    #[test]
    fn dropout_threshold_range_ends() {
        assert_eq!(dropout_threshold(0.0), 0);
        assert_eq!(dropout_threshold(0.5), 1 << 31);
        assert_eq!(dropout_threshold(1.0), u32::MAX);
    }
}
