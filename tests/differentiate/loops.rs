//! Loops, arrays and in-place writes, checked against finite differences and analytic
//! gradients.

use autodiff::prelude::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    autodiff::relative_error(a, b) < tol
}

// f(x) = sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
#[differentiate]
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let hundred = T::from(100.0).unwrap();
    let mut sum = T::zero();
    for i in 0..x.len() - 1 {
        let t = x[i + 1] - x[i] * x[i];
        let u = T::one() - x[i];
        sum = sum + hundred * t * t + u * u;
    }
    sum
}

/// df/dx[i] = -400 x[i] (x[i+1] - x[i]^2) - 2 (1 - x[i])  +  200 (x[i] - x[i-1]^2)
fn rosenbrock_gradient(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut g = vec![0.0; n];
    for i in 0..n - 1 {
        g[i] += -400.0 * x[i] * (x[i + 1] - x[i] * x[i]) - 2.0 * (1.0 - x[i]);
        g[i + 1] += 200.0 * (x[i + 1] - x[i] * x[i]);
    }
    g
}

#[test]
fn rosenbrock_matches_the_analytic_gradient() {
    for n in [2usize, 100, 10_000] {
        let x: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin() * 1.3).collect();
        let (value, grad) = rosenbrock_grad(&x);
        assert_eq!(value, rosenbrock(&x));
        let expected = rosenbrock_gradient(&x);
        assert_eq!(grad.len(), n);
        for (g, e) in grad.iter().zip(&expected) {
            assert!(close(*g, *e, 1e-10), "n={n}: {g} vs {e}");
        }
    }
}

#[test]
fn rosenbrock_saves_at_most_two_scalars_per_element() {
    // The pullback keeps x (n floats) and the loop index of each of the n - 1 iterations;
    // everything else is recomputed from them. `saved_bytes` reports the struct plus the
    // heap storage of its stacks and arrays.
    for n in [2usize, 100, 10_000] {
        let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let (_, pullback) = rosenbrock_pullback(&x);
        let bound =
            2 * n * std::mem::size_of::<f64>() + std::mem::size_of::<RosenbrockPullback<f64>>();
        assert!(
            pullback.saved_bytes() <= bound,
            "n={n}: {} > {bound}",
            pullback.saved_bytes()
        );
    }
}

#[differentiate]
fn running_sum(x: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    let mut acc = 0.0;
    for v in x.iter() {
        acc += v;
        out.push(acc);
    }
    out
}

#[test]
#[should_panic(
    expected = "backward of `running_sum`: the output cotangent has length 2, but the output has length 3"
)]
fn backward_rejects_a_cotangent_of_the_wrong_length() {
    let (y, pullback) = running_sum_pullback(&[1.0, 2.0, 3.0]);
    assert_eq!(y, running_sum(&[1.0, 2.0, 3.0]));
    pullback.backward(vec![1.0, 1.0]);
}
