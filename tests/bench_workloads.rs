//! The benchmark workloads' gradients (ours, hand-written, `num-dual`, the `reverse` tape)
//! against each other and against central finite differences, at small sizes.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use autodiff::finite_difference_gradient;
use workloads::*;

/// The largest difference relative to `1 + |expected|`.
fn max_error(got: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max)
}

#[test]
fn seed_gradients_agree() {
    let (x1, x2) = seed::POINT;
    let (v, (a, b)) = seed::seed_grad(x1, x2);
    let fd = finite_difference_gradient(|p| seed::seed(p[0], p[1]), &[x1, x2]);
    assert!(max_error(&[a, b], &fd) < 1e-8);
    let tape = reverse::Tape::new();
    for (value, (da, db)) in [
        seed::hand_grad(x1, x2),
        seed::dual_grad(x1, x2),
        seed::tape_grad(&tape, x1, x2),
    ] {
        assert!((value - v).abs() < 1e-12);
        assert!(max_error(&[da, db], &[a, b]) < 1e-12);
    }
}

#[test]
fn rosenbrock_gradients_agree() {
    for n in [2, 7, 100] {
        let x = rosenbrock::input(n);
        let (v, ours) = rosenbrock::rosenbrock_grad(&x);
        let fd = finite_difference_gradient(rosenbrock::rosenbrock, &x);
        assert!(max_error(&ours, &fd) < 1e-7, "n = {n}");
        let tape = reverse::Tape::new();
        for (value, g) in [
            rosenbrock::hand_grad(&x),
            rosenbrock::dual_grad(&x, n),
            rosenbrock::tape_grad(&tape, &x),
        ] {
            assert!((value - v).abs() < 1e-9 * (1.0 + v.abs()));
            assert!(max_error(&g, &ours) < 1e-12, "n = {n}");
        }
    }
}

#[test]
fn rosenbrock_array_gradients_agree() {
    let x: [f64; 2] = rosenbrock::input(2).try_into().expect("two inputs");
    let (v, ours) = rosenbrock::rosenbrock_array_grad(&x);
    assert_eq!(v, rosenbrock::rosenbrock(&x));
    let fd = finite_difference_gradient(rosenbrock::rosenbrock, &x);
    assert!(max_error(&ours, &fd) < 1e-7);
    let (value, hand) = rosenbrock::hand_grad_array(&x);
    assert!((value - v).abs() < 1e-12 * (1.0 + v.abs()));
    assert!(max_error(&hand, &ours) < 1e-12);
    let x: [f64; 7] = rosenbrock::input(7).try_into().expect("seven inputs");
    let fd = finite_difference_gradient(rosenbrock::rosenbrock, &x);
    assert!(max_error(&rosenbrock::rosenbrock_array_grad(&x).1, &fd) < 1e-7);
}

#[test]
fn gmm_gradients_agree() {
    for (d, k, n) in [(2, 3, 5), (4, 3, 7)] {
        let g = gmm::Gmm::new(d, k, n);
        let (v, ours) = g.grad_ours();
        assert!((v - g.objective()).abs() < 1e-12 * (1.0 + v.abs()));
        let fd = finite_difference_gradient(|p| g.objective_at(p), &g.flat());
        assert!(max_error(&ours, &fd) < 1e-7, "d = {d}, k = {k}");
        let tape = reverse::Tape::new();
        for (value, grad) in [
            gmm::hand_grad(&g),
            gmm::dual_grad(&g, g.params()),
            gmm::tape_grad(&tape, &g),
        ] {
            assert!((value - v).abs() < 1e-10 * (1.0 + v.abs()));
            assert!(max_error(&grad, &ours) < 1e-10, "d = {d}, k = {k}");
        }
    }
}

#[test]
fn gmm_constant_matches_the_multivariate_gamma_function() {
    // ln Γ_1(a) = ln Γ(a); Γ(5) = 24, Γ(1/2) = √π
    assert!((gmm::log_gamma_distrib(5.0, 1) - 24f64.ln()).abs() < 1e-13);
    let half = 0.5 * std::f64::consts::PI.ln();
    assert!((gmm::log_gamma_distrib(0.5, 1) - half).abs() < 1e-13);
    // ln Γ_2(a) = ln √π + ln Γ(a) + ln Γ(a - 1/2), Γ(7/2) = 15/8 √π
    let expected = half + 6f64.ln() + (1.875 * std::f64::consts::PI.sqrt()).ln();
    assert!((gmm::log_gamma_distrib(4.0, 2) - expected).abs() < 1e-12);
}

#[test]
fn lstm_gradients_agree() {
    for (l, c, b) in [(1, 3, 2), (2, 4, 3)] {
        let s = lstm::Lstm::new(l, c, b);
        let (v, ours) = s.grad_ours();
        assert!((v - s.objective()).abs() < 1e-12 * (1.0 + v.abs()));
        let fd = finite_difference_gradient(|p| s.objective_at(p), &s.flat());
        assert!(max_error(&ours, &fd) < 1e-8, "l = {l}, b = {b}");
        let tape = reverse::Tape::new();
        for (value, grad) in [
            lstm::hand_grad(&s),
            lstm::dual_grad(&s, s.params()),
            lstm::tape_grad(&tape, &s),
        ] {
            assert!((value - v).abs() < 1e-12 * (1.0 + v.abs()));
            assert!(max_error(&grad, &ours) < 1e-12, "l = {l}, b = {b}");
        }
    }
}

#[test]
fn ba_jacobians_agree() {
    let mut ba = ba::Ba::new(3, 5, 12);
    // one camera without rotation takes the other branch of the Rodrigues formula
    ba.cams[1][..3].copy_from_slice(&[0.0; 3]);
    let ours = ba.jacobian_ours();
    assert!(max_error(&ours, &ba.jacobian_fd()) < 1e-7);
    let tape = reverse::Tape::new();
    assert_eq!(ba.jacobian_ours_per_row(), ours);
    for jac in [
        ba::jacobian_hand(&ba),
        ba::jacobian_hand_rows(&ba),
        ba::jacobian_dual(&ba),
        ba::jacobian_tape(&tape, &ba),
    ] {
        assert!(max_error(&jac, &ours) < 1e-12);
    }
    let errors = ba.objective();
    assert_eq!(errors.len(), 3 * 12);
}

#[test]
fn lenet_gradients_agree() {
    use autodiff::prelude::*;
    let batch = lenet::Batch::new(3);
    let (v, ours) = lenet::loss_grad(&batch.params, &batch.x, &batch.labels);
    let (h, hand) = lenet::hand_grad(&batch.params, &batch.x, &batch.labels);
    assert_eq!(v, h);
    let mut norm2 = 0.0f64;
    for (a, b) in lenet::leaves(&ours).into_iter().zip(lenet::leaves(&hand)) {
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
            norm2 += (*x as f64).powi(2);
        }
    }
    // f32 is too coarse for element-wise differences; along the gradient itself, the central
    // difference of the loss is |g|^2
    let step = 1e-2 / norm2.sqrt();
    let moved = |sign: f64| {
        let mut p = batch.params.clone();
        Sgd::new(-sign * step).step(&mut p, &ours);
        lenet::loss(&p, &batch.x, &batch.labels) as f64
    };
    let directional = (moved(1.0) - moved(-1.0)) / (2.0 * step);
    assert!(
        (directional - norm2).abs() < 2e-2 * norm2,
        "{directional} vs {norm2}"
    );

    // a step with either gradient lowers the loss the same way
    let (mut a, mut b) = (lenet::Batch::new(3), lenet::Batch::new(3));
    let (mut sa, mut sb) = (Sgd::new(0.05), Sgd::new(0.05));
    a.step_ours(&mut sa);
    b.step_hand(&mut sb);
    assert!(a.loss() < v && (a.loss() - b.loss()).abs() < 1e-5);
}

#[test]
fn mlp_gradients_agree() {
    let d = mlp::Data::new(3, 5, 7);
    let (v, ours) = d.grad_ours();
    let (h, hand) = mlp::hand_grad(&d);
    assert!((v - d.loss()).abs() < 1e-12 && (v - h).abs() < 1e-12);
    let fd = finite_difference_gradient(
        |w| mlp::loss(&mlp::unflat(&d.params, w), &d.x, &d.y, &d.ones),
        &mlp::flat(&d.params),
    );
    assert!(max_error(&mlp::flat(&ours), &fd) < 1e-8);
    assert!(max_error(&mlp::flat(&hand), &mlp::flat(&ours)) < 1e-12);
}
