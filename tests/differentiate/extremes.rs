//! Numerically delicate functions at extreme inputs: finite, correct gradients where the
//! math has them, IEEE infinities and NaN propagated (never a panic) where it does not.

use autodiff::prelude::*;

// softplus(x) = ln(1 + e^x), written stably  =>  d/dx = sigmoid(x) = 1 / (1 + e^-x)
#[differentiate]
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[test]
fn softplus_is_stable_at_extreme_inputs() {
    for x in [-1000.0, -40.0, -1.0, 0.0, 1e-300, 1.0, 40.0, 1000.0] {
        let (y, g) = softplus_grad(x);
        assert_eq!(y, softplus(x));
        assert!(y.is_finite() && g.is_finite(), "x={x}: {y} {g}");
        assert!(
            (g - sigmoid(x)).abs() <= 1e-15 * sigmoid(x).max(1e-300),
            "x={x}: {g} vs {}",
            sigmoid(x)
        );
    }
}

// stable log-sum-exp of two values  =>  gradient is the softmax (e^a, e^b) / (e^a + e^b)
#[differentiate]
fn log_sum_exp2(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

#[test]
fn log_sum_exp_is_stable_around_plus_minus_1000() {
    for (a, b) in [
        (1000.0, 999.0),
        (-1000.0, -1001.5),
        (1000.0, -1000.0),
        (3.0, 3.0),
    ] {
        let (y, (ga, gb)) = log_sum_exp2_grad(a, b);
        assert!(y.is_finite() && ga.is_finite() && gb.is_finite());
        let (sa, sb) = (1.0 / (1.0 + (b - a).exp()), 1.0 / (1.0 + (a - b).exp()));
        // at a tie the max splits its cotangent evenly; the total is still the softmax
        assert!(
            (ga - sa).abs() < 1e-12 && (gb - sb).abs() < 1e-12,
            "({a},{b}): {ga} {gb} vs {sa} {sb}"
        );
    }
}

#[differentiate]
fn root(x: f64) -> f64 {
    x.sqrt()
}

#[differentiate]
fn power(x: f64, p: f64) -> f64 {
    x.powf(p)
}

#[test]
fn sqrt_and_powf_at_zero_follow_ieee_and_the_documented_limits() {
    // d sqrt(x)/dx = 1 / (2 sqrt x): +inf at 0, large but finite just above
    assert_eq!(root_grad(0.0).1, f64::INFINITY);
    let tiny = 1e-300;
    assert!((root_grad(tiny).1 - 0.5 / tiny.sqrt()).abs() <= 1e-12 * 0.5 / tiny.sqrt());
    // x^p at x = 0: d/dp = 0 (limit of x^p ln x); d/dx = p 0^(p-1)
    let (y, (dx, dp)) = power_grad(0.0, 2.5);
    assert_eq!((y, dx, dp), (0.0, 0.0, 0.0));
    let (_, (dx, dp)) = power_grad(0.0, 1.0);
    assert_eq!((dx, dp), (1.0, 0.0));
    let (_, (dx, _)) = power_grad(0.0, 0.5);
    assert_eq!(dx, f64::INFINITY);
    // 0^0 = 1 jumps to 0 for p > 0: d/dp = 1 * ln 0 = -inf, the one-sided slope
    let (_, (dx, dp)) = power_grad(0.0, 0.0);
    assert_eq!((dx, dp), (0.0, f64::NEG_INFINITY));
}

#[differentiate]
fn mixed(x: f64, y: f64) -> f64 {
    (x * y).sin() + x.ln() * y
}

#[test]
fn nan_and_infinity_propagate_without_panicking() {
    let (v, (gx, gy)) = mixed_grad(f64::NAN, 1.0);
    assert!(v.is_nan() && gx.is_nan() && gy.is_nan());
    let (v, (gx, _)) = mixed_grad(f64::INFINITY, 0.5);
    assert!(v.is_nan() || v.is_infinite());
    assert!(gx.is_nan() || gx == 0.0 || gx.is_infinite());
    // ln(-1) is NaN, and so is d/dy = x cos(xy) + ln x; d/dx = y cos(xy) + y/x stays finite
    let (v, (gx, gy)) = mixed_grad(-1.0, 2.0);
    assert!(v.is_nan() && gy.is_nan());
    assert!((gx - (2.0 * (-2.0f64).cos() - 2.0)).abs() < 1e-15);
}

// A value `max` discards still reaches the gradient through its own derivative (docs/
// supported.md): with |y| > 1, `y.asin()` is NaN, `max` returns x, and the zero cotangent
// the NaN side receives meets asin's NaN derivative. Choosing with an `if` first keeps it out.
#[differentiate]
fn max_of_an_undefined_side(x: f64, y: f64) -> f64 {
    x.max(y.asin())
}

#[differentiate]
fn chosen_before_evaluating(x: f64, y: f64) -> f64 {
    if y.abs() <= 1.0 {
        x.max(y.asin())
    } else {
        x
    }
}

#[test]
fn a_discarded_nan_poisons_the_gradient_unless_an_if_avoids_it() {
    let (value, (dx, dy)) = max_of_an_undefined_side_grad(0.3, 1.5);
    assert_eq!(value, 0.3);
    assert_eq!(dx, 1.0);
    assert!(dy.is_nan(), "{dy}");
    let (value, (dx, dy)) = chosen_before_evaluating_grad(0.3, 1.5);
    assert_eq!((value, dx, dy), (0.3, 1.0, 0.0));
    // inside the domain both agree: d/dy asin(y) = 1 / sqrt(1 - y^2) where asin(y) > x
    let (_, (_, dy)) = max_of_an_undefined_side_grad(-2.0, 0.6);
    assert!((dy - 1.0 / (1.0f64 - 0.36).sqrt()).abs() < 1e-15, "{dy}");
    assert_eq!(chosen_before_evaluating_grad(-2.0, 0.6).1, (0.0, dy));
}
