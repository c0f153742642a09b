//! Gradient checking against finite differences, for testing derivatives.

/// The gradient of `f` at `x` by fourth-order central differences.
///
/// Each coordinate uses the stencil
/// `(f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)) / (12 h)` with the step
/// `h = 1e-3 · max(1, |xᵢ|)`, scaled so that it stays meaningful for large coordinates.
/// The truncation error is `O(h⁴)` and the rounding error about `ε |f| / h`
/// (`ε` = machine epsilon), so for smooth `f` of moderate size both are around `1e-12`
/// and the result has roughly ten correct digits. Near a kink or a singularity closer
/// than `2h`, the stencil straddles it and the result is meaningless.
///
/// `f` is called `4 · x.len()` times.
///
/// ```
/// use autodiff_runtime::finite_difference_gradient;
///
/// let g = finite_difference_gradient(|x| x[0] * x[1], &[2.0, 5.0]);
/// assert!((g[0] - 5.0).abs() < 1e-9 && (g[1] - 2.0).abs() < 1e-9);
/// ```
pub fn finite_difference_gradient<F: Fn(&[f64]) -> f64>(f: F, x: &[f64]) -> Vec<f64> {
    let mut point = x.to_vec();
    (0..x.len())
        .map(|i| {
            let h = 1e-3 * x[i].abs().max(1.0);
            let mut at = |offset: f64| {
                point[i] = x[i] + offset;
                let value = f(&point);
                point[i] = x[i];
                value
            };
            (at(-2.0 * h) - 8.0 * at(-h) + 8.0 * at(h) - at(2.0 * h)) / (12.0 * h)
        })
        .collect()
}

/// The error of `a` relative to the reference `b`: `|a - b| / max(1, |b|)`.
///
/// This is a relative error for `|b| ≥ 1` and an absolute one below, so that components
/// near zero are not held to an impossible relative accuracy. Equal values (including
/// equal infinities) give 0; a NaN on either side gives NaN, which fails any `error < tol`
/// test.
///
/// ```
/// use autodiff_runtime::relative_error;
///
/// assert_eq!(relative_error(101.0, 100.0), 0.01);
/// assert_eq!(relative_error(0.25, 0.0), 0.25);
/// ```
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / b.abs().max(1.0)
    }
}

/// The largest error of `gradient` against a finite-difference gradient of `f` at `x`.
///
/// Returns `maxᵢ |gᵢ - fdᵢ| / max(1, |fdᵢ|)` (see [`relative_error`]), where `fd` is
/// [`finite_difference_gradient`]`(f, x)`; NaN if any coordinate's error is NaN, and 0 for
/// an empty `x`. Values around `1e-8` or below indicate a correct gradient of a smooth
/// function; a wrong one typically gives `1e-1` or more.
///
/// # Panics
///
/// If `gradient.len() != x.len()`.
///
/// ```
/// use autodiff_runtime::check_gradient;
///
/// // f(x) = x0² + 3 x1, ∇f = (2 x0, 3)
/// let f = |x: &[f64]| x[0] * x[0] + 3.0 * x[1];
/// let x = [1.5, -2.0];
/// assert!(check_gradient(f, &x, &[2.0 * x[0], 3.0]) < 1e-8);
/// assert!(check_gradient(f, &x, &[x[0], 3.0]) > 0.1);
/// ```
pub fn check_gradient<F: Fn(&[f64]) -> f64>(f: F, x: &[f64], gradient: &[f64]) -> f64 {
    assert_eq!(
        gradient.len(),
        x.len(),
        "check_gradient: the gradient has {} components but the point x has {}",
        gradient.len(),
        x.len()
    );
    finite_difference_gradient(f, x)
        .into_iter()
        .zip(gradient)
        .map(|(fd, &g)| relative_error(g, fd))
        // f64::max would drop a NaN error, hiding a NaN gradient.
        .fold(0.0, |worst, e| {
            if e.is_nan() || worst.is_nan() {
                f64::NAN
            } else {
                worst.max(e)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_differences_are_exact_for_quartics() {
        // The fourth-order stencil is exact (up to rounding) for polynomials of degree ≤ 4.
        let f = |x: &[f64]| x[0].powi(4) - 2.0 * x[0] * x[1] + x[1].powi(3);
        let x = [1.3, -0.7];
        let g = finite_difference_gradient(f, &x);
        let exact = [
            4.0 * x[0].powi(3) - 2.0 * x[1],
            -2.0 * x[0] + 3.0 * x[1].powi(2),
        ];
        for (g, e) in g.iter().zip(exact) {
            assert!(relative_error(*g, e) < 1e-11, "{g} vs {e}");
        }
    }

    #[test]
    fn step_scales_with_large_coordinates() {
        let x = [1e6];
        let g = finite_difference_gradient(|x| x[0].ln(), &x);
        assert!((g[0] - 1e-6).abs() < 1e-15);
    }

    #[test]
    fn accepts_right_and_rejects_wrong_gradients() {
        let f = |x: &[f64]| x[0].sin() * x[1].exp() + x[2] * x[2] * x[2];
        let x: [f64; 3] = [0.4, -1.1, 2.5];
        let right = [
            x[0].cos() * x[1].exp(),
            x[0].sin() * x[1].exp(),
            3.0 * x[2] * x[2],
        ];
        assert!(check_gradient(f, &x, &right) < 1e-8);
        let mut wrong = right;
        wrong[1] = -wrong[1];
        assert!(check_gradient(f, &x, &wrong) > 0.1);
    }

    #[test]
    fn nan_gradient_is_reported() {
        let error = check_gradient(|x| x[0] + x[1], &[1.0, 2.0], &[1.0, f64::NAN]);
        assert!(error.is_nan());
        let error = check_gradient(|x| x[0] + x[1], &[1.0, 2.0], &[f64::NAN, 1.0]);
        assert!(error.is_nan());
    }

    #[test]
    fn relative_error_metric() {
        assert_eq!(relative_error(3.0, 3.0), 0.0);
        assert_eq!(relative_error(f64::INFINITY, f64::INFINITY), 0.0);
        assert_eq!(relative_error(2.5, 2.0), 0.25);
        assert_eq!(relative_error(-0.5, 0.0), 0.5);
        assert!(relative_error(f64::NAN, 1.0).is_nan());
        assert_eq!(check_gradient(|_| 0.0, &[], &[]), 0.0);
    }

    #[test]
    #[should_panic(expected = "the gradient has 1 components but the point x has 2")]
    fn length_mismatch_panics() {
        check_gradient(|x| x[0] + x[1], &[1.0, 2.0], &[1.0]);
    }
}
