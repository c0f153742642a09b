//! Fitting a Gaussian process's hyperparameters by its marginal likelihood, through
//! nalgebra's Cholesky factorisation.
//!
//! The kernel matrix is built by `DMatrix::from_fn` from the inputs and the hyperparameters
//! (an RBF kernel plus observation noise, all three on a log scale; each entry a call of the
//! differentiated `kernel_entry`, which the prediction uses too), factorised with
//! `cholesky()`, and the negative log marginal likelihood `½ yᵀ K⁻¹ y + ½ ln det K + n/2 ln
//! 2π` is read from the factorisation (`solve`, `ln_determinant`). `#[differentiate]`
//! generates its gradient with respect to the `Hyper` struct; the gradient is checked
//! against central finite differences, then `Adam` fits the hyperparameters to noisy samples
//! of a sine, and the fitted process predicts the sine between them.
//!
//! ```text
//! cargo run --release --example gaussian_process
//! ```

use autodiff::nalgebra::{DMatrix, DVector};
use autodiff::prelude::*;

/// The hyperparameters, as logs so that every value is allowed.
#[derive(Differentiable, Clone, Debug)]
struct Hyper {
    /// The length scale over which the function varies.
    log_length: f64,
    /// The function's standard deviation.
    log_signal: f64,
    /// The standard deviation of the observation noise.
    log_noise: f64,
}

/// The RBF kernel between two inputs, plus the noise when they are the same observation.
#[differentiate]
fn kernel_entry(h: &Hyper, a: f64, b: f64, same: bool) -> f64 {
    let d = (a - b) / h.log_length.exp();
    let noise = if same { (2.0 * h.log_noise).exp() } else { 0.0 };
    (2.0 * h.log_signal).exp() * (-0.5 * d * d).exp() + noise
}

/// The negative log marginal likelihood of the observations `y` at the inputs `x`.
#[differentiate(wrt(h))]
fn neg_log_likelihood(h: &Hyper, x: &[f64], y: &DVector<f64>) -> f64 {
    let n = x.len();
    let k = DMatrix::from_fn(n, n, |i, j| kernel_entry(h, x[i], x[j], i == j));
    let chol = k
        .cholesky()
        .expect("the kernel matrix is positive definite");
    let alpha = chol.solve(y);
    0.5 * y.dot(&alpha)
        + 0.5 * chol.ln_determinant()
        + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln()
}

/// The posterior mean at `at`, from the training inputs and observations.
fn predict(h: &Hyper, x: &[f64], y: &DVector<f64>, at: f64) -> f64 {
    let n = x.len();
    let k = DMatrix::from_fn(n, n, |i, j| kernel_entry(h, x[i], x[j], i == j));
    let alpha = k
        .cholesky()
        .expect("the kernel matrix is positive definite")
        .solve(y);
    let k_star = DVector::from_fn(n, |i, _| kernel_entry(h, at, x[i], false));
    k_star.dot(&alpha)
}

fn main() {
    // noisy samples of sin x on [0, 6] (a fixed pseudo-random noise)
    let n = 30;
    let x: Vec<f64> = (0..n).map(|i| 6.0 * i as f64 / (n - 1) as f64).collect();
    let noise = |i: usize| 0.1 * ((i as f64 * 12.9898).sin() * 43758.5453).fract();
    let y = DVector::from_fn(n, |i, _| x[i].sin() + noise(i));

    let mut hyper = Hyper {
        log_length: 0.0,
        log_signal: -1.0,
        log_noise: -1.0,
    };
    let (_, grad) = neg_log_likelihood_grad(&hyper, &x, &y);
    let error = check_gradient(
        |p| {
            let h = Hyper {
                log_length: p[0],
                log_signal: p[1],
                log_noise: p[2],
            };
            neg_log_likelihood(&h, &x, &y)
        },
        &[hyper.log_length, hyper.log_signal, hyper.log_noise],
        &[grad.log_length, grad.log_signal, grad.log_noise],
    );
    println!("gradient check: max relative error {error:.1e}");
    assert!(
        error < 1e-6,
        "the gradient disagrees with finite differences"
    );

    let mut adam = Adam::new(0.05);
    let first = neg_log_likelihood(&hyper, &x, &y);
    for iteration in 0..=300 {
        let (value, grad) = neg_log_likelihood_grad(&hyper, &x, &y);
        if iteration % 50 == 0 {
            println!(
                "iteration {iteration:3}  -log p(y) {value:8.3}  length {:.3}  signal {:.3}  noise {:.3}",
                hyper.log_length.exp(),
                hyper.log_signal.exp(),
                hyper.log_noise.exp()
            );
        }
        adam.step(&mut hyper, &grad);
    }
    let last = neg_log_likelihood(&hyper, &x, &y);
    assert!(last < first, "the fit did not improve the likelihood");
    let worst = (0..50)
        .map(|k| 0.1 + 5.8 * k as f64 / 49.0)
        .map(|t| (predict(&hyper, &x, &y, t) - t.sin()).abs())
        .fold(0.0, f64::max);
    println!("largest error of the posterior mean against sin x on [0.1, 5.9]: {worst:.3}");
}
