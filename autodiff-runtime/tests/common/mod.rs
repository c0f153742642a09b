//! Shared finite-difference helpers for the integration tests.

/// `∂f/∂x_k` at `x` by a fourth-order central difference.
///
/// The step is smaller than the library's (`1e-4` relative), which keeps the truncation
/// error far below the tests' `1e-7` tolerance even a few tenths from a singularity.
pub fn partial(f: &dyn Fn(&[f64]) -> f64, x: &[f64], k: usize) -> f64 {
    let h = 1e-4 * x[k].abs().max(1.0);
    let mut p = x.to_vec();
    let mut at = |offset: f64| {
        p[k] = x[k] + offset;
        f(&p)
    };
    (at(-2.0 * h) - 8.0 * at(-h) + 8.0 * at(h) - at(2.0 * h)) / (12.0 * h)
}

/// The error of `got` against `want`: relative, but measured against at least `1e-3` so
/// that a derivative that is exactly 0 is not compared with the rounding noise (around
/// `1e-13`) of its finite difference.
pub fn error(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        (got - want).abs() / want.abs().max(1e-3)
    }
}

/// The tolerance every derivative is held to.
pub const TOLERANCE: f64 = 1e-7;
