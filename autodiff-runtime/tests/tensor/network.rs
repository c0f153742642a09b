//! End to end: losses of small networks built from the tensor operations, their gradients
//! assembled by hand from the rules, checked against finite differences.

use autodiff_runtime::rules::tensor::*;
use autodiff_runtime::{Cotangent, Tensor};

use crate::support::Rng;

type T64 = Tensor<f64>;

/// `∂loss/∂p[i]` by a fourth-order central difference in element `i` of parameter `k`.
fn partial(loss: &dyn Fn(&[T64]) -> f64, params: &[T64], k: usize, i: usize, h: f64) -> f64 {
    let at = |s: f64| {
        let mut p = params.to_vec();
        p[k].data_mut()[i] += s * h;
        loss(&p)
    };
    (8.0 * (at(1.0) - at(-1.0)) - (at(2.0) - at(-2.0))) / (12.0 * h)
}

/// Compares `grads` with finite differences at the elements `pick` selects.
fn check(
    loss: &dyn Fn(&[T64]) -> f64,
    params: &[T64],
    grads: &[T64],
    h: f64,
    tol: f64,
    pick: impl Fn(usize, usize) -> bool,
) -> usize {
    let mut checked = 0;
    for (k, (p, g)) in params.iter().zip(grads).enumerate() {
        assert_eq!(p.shape(), g.shape(), "gradient {k} has the wrong shape");
        for i in (0..p.numel()).filter(|&i| pick(k, i)) {
            let want = partial(loss, params, k, i, h);
            let got = g.data()[i];
            let err = (got - want).abs() / want.abs().max(1e-3);
            assert!(
                err < tol,
                "parameter {k}[{i}]: rule {got}, finite difference {want}"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn two_layer_perceptron_gradient_matches_finite_differences() {
    let mut rng = Rng::new(41);
    let x = rng.tensor(&[5, 4]);
    let labels = rng.labels(5, 3);
    let params = vec![
        rng.tensor(&[6, 4]),
        rng.tensor(&[6]),
        rng.tensor(&[3, 6]),
        rng.tensor(&[3]),
    ];
    // loss = cross_entropy(tanh(x W1ᵀ + b1) W2ᵀ + b2, labels) + 0.1 · mean(W1 ⊙ W1)
    let loss = |p: &[T64]| {
        let a1 = x.linear(&p[0], &p[1]).tanh();
        a1.linear(&p[2], &p[3]).cross_entropy(&labels) + 0.1 * (&p[0] * &p[0]).mean()
    };

    // Forward pass, keeping what the rules read.
    let a1 = x.linear(&params[0], &params[1]).tanh();
    let z = a1.linear(&params[2], &params[3]);
    let sq = &params[0] * &params[0];
    // Backward pass from loss̄ = 1.
    let dz = cross_entropy_d0(&z, &labels, 1.0);
    let dw2 = linear_d1(&a1, dz.clone());
    let db2 = linear_d2(dz.clone());
    let dh1 = tanh_d0(&a1, linear_d0(&params[2], dz));
    let mut dw1 = linear_d1(&x, dh1.clone());
    let db1 = linear_d2(dh1);
    let dsq = mean_d0(&sq, 0.1);
    dw1.accumulate(mul_d0(&params[0], &params[0], dsq.clone()));
    dw1.accumulate(mul_d1(&params[0], &params[0], dsq));

    let n = check(&loss, &params, &[dw1, db1, dw2, db2], 1e-3, 1e-7, |_, _| {
        true
    });
    assert_eq!(n, 24 + 6 + 18 + 3);
}

#[test]
fn small_convolutional_network_gradient_matches_finite_differences() {
    let mut rng = Rng::new(42);
    let x = rng.tensor(&[2, 1, 8, 8]);
    let labels = rng.labels(2, 4);
    let params = vec![
        rng.tensor(&[3, 1, 3, 3]).map(|v| 0.5 * v),
        rng.tensor(&[3]),
        rng.tensor(&[4, 3, 3, 3]).map(|v| 0.3 * v),
        rng.tensor(&[4, 1, 1]),
        rng.tensor(&[4, 8]).map(|v| 0.3 * v),
        rng.tensor(&[4]),
    ];
    // conv (stride 1, padding 1) → relu → max_pool(2) → conv (stride 2, padding 1, no bias)
    // → + a broadcast bias [4, 1, 1] → sigmoid → sum over the width → reshape → linear →
    // cross-entropy.
    let forward = |p: &[T64]| {
        let r1 = x.conv2d(&p[0], &p[1], 1, 1).relu();
        let m1 = r1.max_pool2d(2);
        let c2 = m1.conv2d(&p[2], &Tensor::zeros(&[4]), 2, 1);
        let s2 = (&c2 + &p[3]).sigmoid();
        let g = s2.sum_axis(3);
        let f = g.reshape(&[2, 8]);
        let z = f.linear(&p[4], &p[5]);
        (r1, m1, c2, s2, g, f, z)
    };
    let loss = |p: &[T64]| forward(p).6.cross_entropy(&labels);

    let (r1, m1, c2, s2, g, f, z) = forward(&params);
    let dz = cross_entropy_d0(&z, &labels, 1.0);
    let dw4 = linear_d1(&f, dz.clone());
    let db4 = linear_d2(dz.clone());
    let dg = reshape_d0(&g, linear_d0(&params[4], dz));
    let dc2b = sigmoid_d0(&s2, sum_axis_d0(&s2, &3, dg));
    let db3 = add_d1(&params[3], dc2b.clone());
    let dc2 = add_d0(&c2, dc2b);
    let dw2 = conv2d_d1(&m1, &params[2], &2, &1, dc2.clone());
    let dr1 = max_pool2d_d0(&r1, &2, conv2d_d0(&m1, &params[2], &2, &1, dc2));
    let dc1 = relu_d0(&r1, dr1);
    let dw1 = conv2d_d1(&x, &params[0], &1, &1, dc1.clone());
    let db1 = conv2d_d2(dc1);

    let grads = [dw1, db1, dw2, db3, dw4, db4];
    // A small step keeps the differences clear of the relu and max-pool kinks.
    let n = check(&loss, &params, &grads, 1e-5, 1e-6, |k, i| {
        k != 2 || i % 5 == 0
    });
    assert_eq!(n, 27 + 3 + 22 + 4 + 32 + 4);
}
