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

/// Golden-section steps of [`fit_temperature`]: the bracket of 16 nats in `ln T` shrinks to 10⁻⁴
/// (the Newton steps of [`fit_temperature_and_bias`] refine it).
const GOLDEN_SECTION_STEPS: usize = 25;

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
    for _ in 0..GOLDEN_SECTION_STEPS {
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

/// Newton steps of [`fit_temperature_and_bias`] at most (it usually converges in under ten).
const MAX_NEWTON_STEPS: usize = 30;

/// Probabilities below this are left out of the Hessian's outer-product term (their share of any
/// entry is below 10⁻²⁰).
const NEGLIGIBLE_PROBABILITY: f64 = 1e-10;

/// [`fit_temperature_and_bias`] stops when a step lowers the mean held-out NLL by less than this
/// (nats per document): the biases of labels that are never a document's best label drift towards
/// −∞ at a slow linear rate, and chasing them changes no decision.
const CONVERGED: f64 = 1e-6;

/// Strength of the L2 penalty on label biases (per sample): keeps rare labels' biases finite and
/// fixes the otherwise free common shift of all biases.
const BIAS_PENALTY: f64 = 1e-3;

/// Fits a scale `u = 1/T` and per-label biases `b` so that `softmax(u·s + b)` maximises the held-out
/// likelihood of the gold labels: temperature scaling with label biases ("vector scaling" with one
/// shared scale). The biases correct the priors naive Bayes gets wrong on held-out text, which moves
/// decisions between confusable labels as well as probabilities. The problem is convex in `(u, b)`;
/// it is solved by damped Newton steps from `u = 1/temperature`, `b = 0`, with a small L2 penalty on
/// `b`. Returns `None` when no step improves on the start (keep the plain temperature then).
pub fn fit_temperature_and_bias(
    samples: &[(Vec<f64>, usize)],
    temperature: f64,
) -> Option<(f64, Vec<f64>)> {
    let n_labels = samples.first()?.0.len();
    let n = samples.len() as f64;
    let dim = 1 + n_labels;
    // Work on scores already divided by the starting temperature, so that the scale starts at 1
    // and all coordinates have comparable curvature.
    let scaled: Vec<(Vec<f64>, usize)> = samples
        .iter()
        .map(|(scores, gold)| (scores.iter().map(|s| s / temperature).collect(), *gold))
        .collect();
    let samples = &scaled;
    let mut params = vec![0.0; dim];
    params[0] = 1.0;
    let objective = |params: &[f64]| -> f64 {
        let mut z = vec![0.0; n_labels];
        let mut total = 0.0;
        for (scores, gold) in samples {
            for (c, zc) in z.iter_mut().enumerate() {
                *zc = params[0] * scores[c] + params[1 + c];
            }
            total += log_sum_exp(&z) - z[*gold];
        }
        let penalty: f64 = params[1..].iter().map(|b| b * b).sum::<f64>() * BIAS_PENALTY / 2.0;
        total / n + penalty
    };
    let initial = objective(&params);
    let mut current = initial;
    let mut p = vec![0.0; n_labels];
    let mut active: Vec<usize> = Vec::with_capacity(n_labels);
    for _ in 0..MAX_NEWTON_STEPS {
        // Gradient and Hessian of the objective; coordinate 0 is the scale, 1 + c the bias of c.
        let mut gradient = vec![0.0; dim];
        let mut hessian = vec![0.0; dim * dim];
        // Per label: Σ p_c (s_c − E[s]) and Σ p_c, written into the Hessian once per step.
        let mut cross = vec![0.0; n_labels];
        let mut diagonal = vec![0.0; n_labels];
        for (scores, gold) in samples {
            for (c, pc) in p.iter_mut().enumerate() {
                *pc = params[0] * scores[c] + params[1 + c];
            }
            let max = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for v in p.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            for v in p.iter_mut() {
                *v /= sum;
            }
            let mean: f64 = p.iter().zip(scores).map(|(pc, s)| pc * s).sum();
            let mean_square: f64 = p.iter().zip(scores).map(|(pc, s)| pc * s * s).sum();
            gradient[0] += mean - scores[*gold];
            hessian[0] += mean_square - mean * mean;
            for c in 0..n_labels {
                gradient[1 + c] += p[c];
                cross[c] += p[c] * (scores[c] - mean);
                diagonal[c] += p[c];
            }
            gradient[1 + *gold] -= 1.0;
            // − p pᵀ over the labels with a probability that matters (softmax is peaked: usually
            // a handful), which makes this step O(labels) rather than O(labels²) per sample.
            active.clear();
            active.extend((0..n_labels).filter(|&c| p[c] > NEGLIGIBLE_PROBABILITY));
            for &c in &active {
                let row = (1 + c) * dim + 1;
                for &d in &active {
                    hessian[row + d] -= p[c] * p[d];
                }
            }
        }
        for c in 0..n_labels {
            let row = 1 + c;
            hessian[row * dim] += cross[c];
            hessian[row] += cross[c];
            hessian[row * dim + row] += diagonal[c];
        }
        for v in gradient.iter_mut() {
            *v /= n;
        }
        for v in hessian.iter_mut() {
            *v /= n;
        }
        for row in 1..dim {
            gradient[row] += BIAS_PENALTY * params[row];
            hessian[row * dim + row] += BIAS_PENALTY;
        }
        hessian[0] += 1e-12;
        let Some(step) = solve_symmetric(&hessian, &gradient, dim) else {
            break;
        };
        // Backtracking line search along the Newton direction; the scale must stay positive.
        let mut scale = 1.0;
        let mut improved = false;
        for _ in 0..20 {
            let trial: Vec<f64> = params
                .iter()
                .zip(&step)
                .map(|(x, d)| x - scale * d)
                .collect();
            let value = objective(&trial);
            if value.is_finite() && value < current && trial[0] > 0.0 {
                improved = current - value > CONVERGED;
                params = trial;
                current = value;
                break;
            }
            scale /= 2.0;
        }
        if !improved {
            break;
        }
    }
    if current >= initial || params[0] <= 0.0 || !params.iter().all(|v| v.is_finite()) {
        return None;
    }
    Some((temperature / params[0], params.split_off(1)))
}

/// Solves `A x = b` for a symmetric positive definite `A` (row-major, `dim × dim`) by Cholesky
/// decomposition; `None` when `A` is not positive definite.
fn solve_symmetric(a: &[f64], b: &[f64], dim: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; dim * dim];
    for i in 0..dim {
        for j in 0..=i {
            let mut sum = a[i * dim + j];
            for k in 0..j {
                sum -= l[i * dim + k] * l[j * dim + k];
            }
            if i == j {
                if sum.is_nan() || sum <= 0.0 {
                    return None;
                }
                l[i * dim + i] = sum.sqrt();
            } else {
                l[i * dim + j] = sum / l[j * dim + j];
            }
        }
    }
    let mut y = vec![0.0; dim];
    for i in 0..dim {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * dim + k] * y[k];
        }
        y[i] = sum / l[i * dim + i];
    }
    let mut x = vec![0.0; dim];
    for i in (0..dim).rev() {
        let mut sum = y[i];
        for k in i + 1..dim {
            sum -= l[k * dim + i] * x[k];
        }
        x[i] = sum / l[i * dim + i];
    }
    Some(x)
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
    fn label_bias_corrects_a_misjudged_prior() {
        // Label 0 truly wins with probability σ(m − 1) where its score margin is m: the scores are
        // right about the slope but one nat too optimistic about label 0, which only a bias fixes.
        let mut samples = Vec::new();
        for step in 0..=8 {
            let margin = -2.0 + 0.5 * step as f64;
            let wins = (100.0 / (1.0 + (1.0 - margin).exp())).round() as usize;
            for i in 0..100 {
                samples.push((vec![margin, 0.0], if i < wins { 0 } else { 1 }));
            }
        }
        let (t, bias) = fit_temperature_and_bias(&samples, 1.0).expect("the fit improves");
        assert!((t - 1.0).abs() < 0.1, "t = {t}");
        assert!(((bias[0] - bias[1]) + 1.0).abs() < 0.1, "bias = {bias:?}");
        let p = softmax(&[bias[0], bias[1]], 1.0);
        assert!((p[0] - 0.269).abs() < 0.03, "p = {p:?}");
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let x = solve_symmetric(&a, &[2.0, 1.0], 2).expect("positive definite");
        assert!((4.0 * x[0] + 2.0 * x[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * x[0] + 3.0 * x[1] - 1.0).abs() < 1e-12);
        assert!(solve_symmetric(&[0.0, 1.0, 1.0, 0.0], &[1.0, 1.0], 2).is_none());
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
