//! Turning scores into probabilities that mean what they say.
//!
//! Raw naive Bayes posteriors are pushed towards 0 and 1 on long texts. A single temperature `T`,
//! fitted on held-out (cross-validated) scores by minimising the negative log-likelihood, divides the
//! scores before a numerically stable softmax (log-sum-exp with the maximum shifted out).

/// Softmax of `scores / temperature`, stable for any magnitude of score.
pub fn softmax(scores: &[f64], temperature: f64) -> Vec<f64> {
    let t = if temperature > 0.0 && temperature.is_finite() {
        temperature
    } else {
        1.0
    };
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let n = scores.len().max(1) as f64;
        return vec![1.0 / n; scores.len()];
    }
    let exps: Vec<f64> = scores.iter().map(|s| ((s - max) / t).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// `ln Σ exp(x)`, computed without overflow.
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Mean negative log-likelihood of the gold labels under `softmax(scores / t)`.
fn negative_log_likelihood(samples: &[(Vec<f64>, usize)], t: f64) -> f64 {
    let total: f64 = samples
        .iter()
        .map(|(scores, gold)| {
            // log-sum-exp of scores / t, shifted by the maximum, without allocating.
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max) / t;
            let sum: f64 = scores.iter().map(|s| (s / t - max).exp()).sum();
            max + sum.ln() - scores[*gold] / t
        })
        .sum();
    total / samples.len().max(1) as f64
}

/// Fits the temperature that minimises the held-out negative log-likelihood, by golden-section
/// search over `ln T`. Returns 1 when there is nothing to fit.
pub fn fit_temperature(samples: &[(Vec<f64>, usize)]) -> f64 {
    if samples.is_empty() {
        return 1.0;
    }
    // Bracket the search around the typical score spread, which varies by orders of magnitude
    // between model kinds.
    let spread = samples
        .iter()
        .map(|(s, _)| {
            let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = s.iter().copied().fold(f64::INFINITY, f64::min);
            max - min
        })
        .filter(|d| d.is_finite() && *d > 0.0)
        .fold(0.0, f64::max);
    if spread <= 0.0 {
        return 1.0;
    }
    let centre = spread.ln();
    let (mut lo, mut hi) = (centre - 12.0, centre + 4.0);
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let f = |x: f64| negative_log_likelihood(samples, x.exp());
    let mut a = hi - phi * (hi - lo);
    let mut b = lo + phi * (hi - lo);
    let (mut fa, mut fb) = (f(a), f(b));
    for _ in 0..80 {
        if fa < fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - phi * (hi - lo);
            fa = f(a);
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + phi * (hi - lo);
            fb = f(b);
        }
    }
    ((lo + hi) / 2.0).exp()
}

/// Expected calibration error of top-1 confidences: the mean over `bins` equal-width confidence bins,
/// weighted by bin size, of |accuracy − mean confidence|.
pub fn expected_calibration_error(predictions: &[(f64, bool)], bins: usize) -> f64 {
    if predictions.is_empty() || bins == 0 {
        return 0.0;
    }
    let mut count = vec![0usize; bins];
    let mut confidence = vec![0.0; bins];
    let mut correct = vec![0.0; bins];
    for &(p, ok) in predictions {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        confidence[b] += p;
        if ok {
            correct[b] += 1.0;
        }
    }
    let n = predictions.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (correct[b] - confidence[b]).abs() / n)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_for_huge_scores() {
        let p = softmax(&[-12_000.0, -12_001.0, -15_000.0], 1.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] - 1.0 / (1.0 + (-1f64).exp())).abs() < 1e-12);
        assert!(p.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn log_sum_exp_matches_the_definition_on_small_values() {
        let v = [0.5, -1.0, 2.0];
        let direct = v.iter().map(|x: &f64| x.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&v) - direct).abs() < 1e-12);
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }

    #[test]
    fn temperature_softens_overconfident_scores() {
        // Scores that always claim a 20-nat margin but are right only 3 times out of 4.
        let mut samples = Vec::new();
        for i in 0..400 {
            samples.push((vec![20.0, 0.0], if i % 4 == 0 { 1 } else { 0 }));
        }
        let t = fit_temperature(&samples);
        let p = softmax(&[20.0, 0.0], t);
        assert!((p[0] - 0.75).abs() < 0.01, "p = {p:?}, t = {t}");
    }

    #[test]
    fn ece_of_perfectly_calibrated_bins_is_zero() {
        let preds: Vec<(f64, bool)> = (0..10)
            .map(|i| (0.95, i != 0))
            .chain((0..10).map(|i| (0.55, i < 5)))
            .collect();
        let ece = expected_calibration_error(&preds, 10);
        assert!((ece - 0.05 * 0.5 - 0.05 * 0.5).abs() < 1e-12, "{ece}");
    }
}
