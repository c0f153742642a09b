//! The worked examples of the seed document.

use autodiff::prelude::*;

// f(x1, x2) = ln(x1) + x1*x2 - sin(x2)  =>  df/dx1 = 1/x1 + x2,  df/dx2 = x1 - cos(x2)
#[differentiate]
fn f(x1: f64, x2: f64) -> f64 {
    x1.ln() + x1 * x2 - x2.sin()
}

#[test]
fn seed_function_value_and_gradient() {
    let (y, (d1, d2)) = f_grad(2.0, 5.0);
    assert!((y - 11.652071455223084).abs() < 1e-14, "{y}");
    assert!((d1 - 5.5).abs() < 1e-14, "{d1}");
    assert!((d2 - 1.7163378145367738).abs() < 1e-14, "{d2}");
    assert!((d2 - (2.0 - 5.0f64.cos())).abs() < 1e-14);
}

#[test]
fn seed_pullback_saves_only_the_inputs() {
    assert!(std::mem::size_of::<FPullback>() <= 16);
    let (y, pullback) = f_pullback(2.0, 5.0);
    assert_eq!(y, f(2.0, 5.0));
    let (d1, d2) = pullback.backward(3.0);
    assert!((d1 - 3.0 * 5.5).abs() < 1e-13);
    assert!((d2 - 3.0 * (2.0 - 5.0f64.cos())).abs() < 1e-13);
}

// y1 = x + 1; y2 = 2x; loss = (y1 - y2)^2  =>  dloss/dx = 2(y1 - y2)(1 - 2) = -2(1 - x)
#[differentiate]
fn pytorch_loss(x: f64) -> f64 {
    let y1 = x + 1.0;
    let y2 = 2.0 * x;
    (y1 - y2).powi(2)
}

#[test]
fn pytorch_snippet() {
    let (loss, grad) = pytorch_loss_grad(3.0);
    assert_eq!(loss, 4.0);
    assert_eq!(grad, 4.0);
}

/// Defines the same function twice, with and without `#[differentiate]`.
macro_rules! twins {
    ($with:ident, $without:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        #[differentiate]
        fn $with($($arg: $ty),*) -> $ret $body
        fn $without($($arg: $ty),*) -> $ret $body
    };
}

twins!(seed_with, seed_without, (x1: f64, x2: f64) -> f64 {
    x1.ln() + x1 * x2 - x2.sin()
});

twins!(branchy_with, branchy_without, (x: f64, n: i32) -> f64 {
    let mut y = x.mul_add(1.5, -0.25);
    if n > 2 {
        y = y.powi(n) / (1.0 + x * x);
    } else if x < 0.0 {
        return y.exp() * x.hypot(2.0);
    }
    match n {
        0 => y.sqrt().abs(),
        _ => y.tanh() - x.atan2(y),
    }
});

#[test]
fn results_are_bit_identical_to_the_code_without_the_attribute() {
    for (x1, x2) in [(2.0, 5.0), (0.1, -3.0), (7.5, 1e-8)] {
        let plain = seed_without(x1, x2);
        assert_eq!(seed_with(x1, x2).to_bits(), plain.to_bits());
        assert_eq!(seed_with_pullback(x1, x2).0.to_bits(), plain.to_bits());
        assert_eq!(seed_with_grad(x1, x2).0.to_bits(), plain.to_bits());
    }
    for x in [-1.7, -0.2, 0.3, 1.1, 2.9] {
        for n in [0, 1, 2, 3, 5] {
            let plain = branchy_without(x, n);
            assert_eq!(branchy_with(x, n).to_bits(), plain.to_bits());
            assert_eq!(branchy_with_pullback(x, n).0.to_bits(), plain.to_bits());
        }
    }
}
