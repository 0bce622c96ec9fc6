//! Processor-specific code, the crate's only `unsafe`: [`prefetch`], a cache hint for the
//! scattered reads of classification; [`ascii_word_masks`], the SSE2 byte classification behind
//! the tokenizer; and the two numeric loops of classification that run over
//! every label — adding a term's dense row of weights, and the softmax of the calibrated scores —
//! compiled twice: for the baseline x86-64 instruction set (two `f64` lanes) and for AVX2 (four
//! lanes), picked at run time by [`run_wide`] (AVX2 when the processor has it and the model has at
//! least [`WIDE_MIN_LABELS`] labels).
//!
//! Both compilations run the same Rust arithmetic in the same order (a multiply, then an add: Rust
//! never fuses them, and AVX2 alone does not bring fused multiply-adds), so they give the same
//! bits; only how many labels one instruction handles changes (a test compares the two). The softmax uses [`exp_nonpositive`],
//! a polynomial `exp` that the compiler can vectorise (the C library's `exp` is one call per
//! label), within two units in the last place of the exact value; training keeps
//! [`super::calibration::softmax`] with the standard library's `exp`, so model files do not depend
//! on this module.

/// A piece of work that [`run_wide`] compiles for two instruction sets. Implementations mark
/// [`WideKernel::run`] `#[inline(always)]` and keep what it calls `#[inline(always)]` too, so that
/// all of it is compiled again inside the AVX2 function (a closure would not do: the compiler may
/// leave its body out of line, compiled for the baseline only).
pub trait WideKernel {
    /// What the work returns.
    type Output;
    /// How many labels the work runs over (the AVX2 compilation is used from
    /// [`WIDE_MIN_LABELS`]).
    fn labels(&self) -> usize;
    /// Does the work.
    fn run(self) -> Self::Output;
}

/// Fewest labels for which [`run_wide`] uses the AVX2 compilation. Below it the baseline code is
/// used: with R8's 8 labels (a row is only two AVX2 steps), alternating runs of
/// `bash bench/classify_ab.sh` showed no gain from AVX2 (latency ratios 1.06 for a first call and
/// 1.13 for a repeated one against the build before it; BENCHMARKS.md).
pub const WIDE_MIN_LABELS: usize = 16;

/// Runs `kernel` compiled for AVX2 when the processor has it and the kernel runs over at least
/// [`WIDE_MIN_LABELS`] labels, else as built for the baseline.
#[inline(always)]
pub fn run_wide<K: WideKernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        if kernel.labels() >= WIDE_MIN_LABELS && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `with_avx2` only needs the processor to support AVX2, checked just above.
            return unsafe { with_avx2(kernel) };
        }
    }
    kernel.run()
}

/// `kernel.run()`, compiled with AVX2 enabled.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<K: WideKernel>(kernel: K) -> K::Output {
    kernel.run()
}

/// Asks the processor to start loading the cache line that holds `value` into its caches, without
/// waiting for it: classification reads a few scattered entries of tables far larger than the
/// caches, and naming them ahead of the read lets their loads overlap with other work. A hint only:
/// it changes no value and never faults.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program can observe and cannot fault, whatever the
    // address; this one is also a valid reference. SSE, which the instruction belongs to, is part
    // of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Bytes per block of [`ascii_word_masks`].
pub const MASK_BLOCK: usize = 64;

/// Two masks of a 64-byte block of text, for the tokenizer: bit `k` of the first is set where byte
/// `k` is an ASCII letter or digit, bit `k` of the second where it is not ASCII (0x80 or more).
/// Sixteen bytes per step with SSE2, part of every x86-64 processor.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn ascii_word_masks(block: &[u8; MASK_BLOCK]) -> (u64, u64) {
    // SAFETY: the function needs SSE2 only, which every x86-64 processor has.
    unsafe { ascii_word_masks_sse2(block) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn ascii_word_masks_sse2(block: &[u8; MASK_BLOCK]) -> (u64, u64) {
    use std::arch::x86_64::{
        _mm_add_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    let (mut word, mut high) = (0u64, 0u64);
    for (k, lanes) in block.chunks_exact(16).enumerate() {
        let half = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&lanes[at..at + 8]);
            i64::from_le_bytes(bytes)
        };
        let v = _mm_set_epi64x(half(8), half(0));
        // `x` lies in `lo..lo + n` exactly when `x + (128 − lo)`, as a signed byte, is below
        // `n − 128`; `| 0x20` maps A–Z onto a–z and nothing else onto a–z.
        let in_range = |x, lo: u8, n: u8| {
            _mm_cmplt_epi8(
                _mm_add_epi8(x, _mm_set1_epi8(128u8.wrapping_sub(lo) as i8)),
                _mm_set1_epi8(n.wrapping_sub(128) as i8),
            )
        };
        let digit = in_range(v, b'0', 10);
        let letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), b'a', 26);
        let flags = _mm_movemask_epi8(_mm_or_si128(digit, letter)) as u16;
        word |= u64::from(flags) << (16 * k);
        high |= u64::from(_mm_movemask_epi8(v) as u16) << (16 * k);
    }
    (word, high)
}

/// [`softmax`] as a [`WideKernel`].
pub struct Softmax<'a>(pub &'a [f64]);

impl WideKernel for Softmax<'_> {
    type Output = Vec<f64>;
    fn labels(&self) -> usize {
        self.0.len()
    }
    #[inline(always)]
    fn run(self) -> Vec<f64> {
        softmax(self.0)
    }
}

/// `sums_top[c] += q · row_top[c]` and `sums_ovr[c] += q · row_ovr[c]` for every label `c`: one
/// term's dense row of corrections, both weight families in one pass.
#[inline(always)]
pub fn add_dense_row(
    sums_top: &mut [f64],
    sums_ovr: &mut [f64],
    q: f64,
    row_top: &[f64],
    row_ovr: &[f64],
) {
    let sums = sums_top.iter_mut().zip(sums_ovr.iter_mut());
    for ((s_top, s_ovr), (d_top, d_ovr)) in sums.zip(row_top.iter().zip(row_ovr)) {
        *s_top += q * d_top;
        *s_ovr += q * d_ovr;
    }
}

/// `e^x` for `x ≤ 0` (and `-∞`, which gives 0; NaN gives NaN), within two units in the last place,
/// subnormal results included; written so that a loop over it vectorises (no call, no branch).
///
/// `x = n·ln 2 + r` with `n` the nearest integer to `x / ln 2` and `|r| ≤ ln 2 / 2` (Cody and Waite's
/// two-part `ln 2`, so `r` is exact to well below an ulp); `e^r` by its Taylor series to `r¹³/13!`
/// (the first term left out is below 10⁻¹⁷ of the result); then `2ⁿ` applied in two halves, so that
/// a result below the smallest normal number rounds once, correctly, into the subnormals.
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    // Below this, e^x rounds to zero; clamping keeps n within the two halves' exponent range.
    const LOWEST: f64 = -746.0;
    // ln 2 = LN2_HI + LN2_LO, the high part with 32 mantissa bits (so n · LN2_HI is exact).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Adding 1.5 · 2⁵² rounds to the nearest integer and leaves it in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // 1/k! for k = 13 down to 2.
    const INVERSE_FACTORIALS: [f64; 12] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        1.0 / 2.0,
    ];
    // A comparison, not `f64::max`, so that NaN stays NaN.
    let x = if x < LOWEST { LOWEST } else { x };
    let shifted = x * std::f64::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = INVERSE_FACTORIALS[0];
    for c in &INVERSE_FACTORIALS[1..] {
        p = p * r + c;
    }
    let e_r = (p * r + 1.0) * r + 1.0;
    // n as an integer: the low bits of `shifted` (n ≥ -1077, so `n + 1023` of each half is ≥ 484).
    let n = shifted.to_bits().wrapping_sub(SHIFT.to_bits()) as i64;
    let half = n >> 1;
    let scale_a = f64::from_bits(((half + 1023) as u64) << 52);
    let scale_b = f64::from_bits(((n - half + 1023) as u64) << 52);
    e_r * scale_a * scale_b
}

/// `softmax(scores)`: `e^(s − max) / Σ e^(s' − max)`, with [`exp_nonpositive`]; uniform when no
/// score is finite. The sum runs over four interleaved partial sums, added in a fixed order, so
/// it has the same bits on every instruction set.
#[inline(always)]
pub fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let n = scores.len().max(1) as f64;
        return vec![1.0 / n; scores.len()];
    }
    let mut exps: Vec<f64> = scores.iter().map(|s| exp_nonpositive(s - max)).collect();
    let mut partial = [0.0; 4];
    let mut quads = exps.chunks_exact(4);
    for quad in &mut quads {
        for (sum, e) in partial.iter_mut().zip(quad) {
            *sum += e;
        }
    }
    for (sum, e) in partial.iter_mut().zip(quads.remainder()) {
        *sum += e;
    }
    let sum = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    for e in &mut exps {
        *e /= sum;
    }
    exps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two non-negative finite doubles.
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_two_ulps_of_the_standard_library() {
        let mut worst = 0;
        // Every scale from 10⁻⁹ to the subnormals, plus a dense sweep of [-40, 0].
        let mut xs: Vec<f64> = (0..200_000).map(|i| -f64::from(i) * 2e-4).collect();
        xs.extend((0..20_000).map(|i| -(1e-9f64).powf(1.0 - f64::from(i) / 20_000.0) * 745.0));
        xs.extend([0.0, -0.0, -1e-300, -708.0, -709.5, -740.0, -744.4, -745.1]);
        for x in xs {
            let want = x.exp();
            let got = exp_nonpositive(x);
            let d = ulps(got, want);
            worst = worst.max(d);
            assert!(d <= 2, "exp({x:e}) = {got:e}, want {want:e}: {d} ulps");
        }
        assert!(
            worst >= 1,
            "a polynomial exp that is never off by an ulp is suspicious"
        );
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(-746.0), 0.0);
        assert_eq!(exp_nonpositive(-1e6), 0.0);
        assert!(exp_nonpositive(f64::NAN).is_nan());
        // The smallest subnormal is e^-744.44; just above it the result must not flush to zero.
        assert!(exp_nonpositive(-744.0) > 0.0);
    }

    #[test]
    fn softmax_agrees_with_the_reference_and_sums_to_one() {
        let scores: Vec<f64> = (0..90)
            .map(|i| -((i * 37 % 91) as f64) * 0.731 + 3.0)
            .collect();
        let fast = softmax(&scores);
        let reference = super::super::calibration::softmax(&scores, 1.0);
        for (f, r) in fast.iter().zip(&reference) {
            assert!(
                (f - r).abs() <= 1e-15 * r.max(1e-300) + 1e-300,
                "{f:e} vs {r:e}"
            );
        }
        assert!((fast.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        assert_eq!(softmax(&[f64::NEG_INFINITY; 3]), vec![1.0 / 3.0; 3]);
        assert!(softmax(&[]).is_empty());
    }

    #[test]
    fn wide_and_baseline_code_give_the_same_bits() {
        let scores: Vec<f64> = (0..90)
            .map(|i| (f64::from(i) * 1.37).sin() * 25.0)
            .collect();
        let row_top: Vec<f64> = (0..90).map(|i| (f64::from(i) * 0.61).cos()).collect();
        let row_ovr: Vec<f64> = (0..90).map(|i| (f64::from(i) * 0.29).sin()).collect();
        struct Both<'a>(&'a [f64], &'a [f64], &'a [f64]);
        impl WideKernel for Both<'_> {
            type Output = (Vec<f64>, Vec<f64>);
            fn labels(&self) -> usize {
                self.0.len()
            }
            #[inline(always)]
            fn run(self) -> Self::Output {
                let (mut top, mut ovr) = (self.0.to_vec(), self.0.to_vec());
                add_dense_row(&mut top, &mut ovr, 0.377, self.1, self.2);
                (softmax(&top), ovr)
            }
        }
        let wide = run_wide(Both(&scores, &row_top, &row_ovr));
        let baseline = Both(&scores, &row_top, &row_ovr).run();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&wide.0), bits(&baseline.0));
        assert_eq!(bits(&wide.1), bits(&baseline.1));
    }
}
