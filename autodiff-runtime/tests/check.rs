//! `check_gradient` on typical user functions.

use autodiff_runtime::{check_gradient, finite_difference_gradient, relative_error};

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn rosenbrock_gradient(x: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; x.len()];
    for i in 0..x.len() - 1 {
        let r = x[i + 1] - x[i] * x[i];
        g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * r;
    }
    g
}

#[test]
fn accepts_the_right_gradient() {
    let x = [-1.2, 1.0, 0.8, 1.5];
    assert!(check_gradient(rosenbrock, &x, &rosenbrock_gradient(&x)) < 1e-8);
}

#[test]
fn finds_a_wrong_gradient() {
    let x = [-1.2, 1.0, 0.8, 1.5];
    let mut g = rosenbrock_gradient(&x);
    // A typical mistake: the factor 2 from differentiating the square dropped.
    g[3] /= 2.0;
    assert!(check_gradient(rosenbrock, &x, &g) > 0.1);
    // Or a gradient for the wrong point.
    let g = rosenbrock_gradient(&[-1.2, 1.0, 0.8, 1.6]);
    assert!(check_gradient(rosenbrock, &x, &g) > 0.1);
}

#[test]
fn metric_is_relative_for_large_components_and_absolute_for_small() {
    // f = 1000 x: a 0.1% error in the gradient is an error of 1e-3.
    let e = check_gradient(|x| 1000.0 * x[0], &[2.0], &[1001.0]);
    assert!((e - 1e-3).abs() < 1e-9);
    // f = 1e-6 x: absolute error, so an off-by-100% tiny gradient still looks small.
    let e = check_gradient(|x| 1e-6 * x[0], &[2.0], &[2e-6]);
    assert!((e - 1e-6).abs() < 1e-12);
    assert_eq!(relative_error(1001.0, 1000.0), 1e-3);
}

#[test]
fn finite_differences_handle_many_coordinates() {
    let x: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.37 - 3.0).collect();
    let g = finite_difference_gradient(rosenbrock, &x);
    for (fd, exact) in g.iter().zip(rosenbrock_gradient(&x)) {
        assert!(relative_error(*fd, exact) < 1e-8, "{fd} vs {exact}");
    }
}
