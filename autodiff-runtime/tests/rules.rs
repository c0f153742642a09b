//! Every rule against finite differences of its primitive, and the conventions at kinks.

mod common;

use autodiff_runtime::rules::*;
use common::{error, partial, TOLERANCE};

/// The output cotangent used throughout; not 1, so that a rule dropping `d` is caught.
const D: f64 = 0.7;

/// Checks that `rule(x, y, D)` is `D · ∂f/∂x_k` at each point, where `y = f(x)`.
fn check(
    name: &str,
    f: impl Fn(&[f64]) -> f64,
    k: usize,
    rule: impl Fn(&[f64], f64, f64) -> f64,
    points: &[&[f64]],
) {
    for x in points {
        let got = rule(x, f(x), D);
        let want = D * partial(&f, x, k);
        let e = error(got, want);
        assert!(
            e < TOLERANCE,
            "{name} at {x:?}: rule {got}, finite difference {want} (error {e:e})"
        );
    }
}

/// One `check` per row: `rule: primitive, k, rule applied to (x, y, d), points;`.
macro_rules! rules {
    ($($name:ident: $f:expr, $k:literal, $rule:expr, $points:expr;)*) => {$(
        check(stringify!($name), $f, $k, $rule, $points);
    )*};
}

const ANY: &[&[f64]] = &[&[0.3], &[-1.2], &[2.5], &[-0.05]];
const UNIT: &[&[f64]] = &[&[0.3], &[-0.6], &[0.75], &[-0.1]];
const POSITIVE: &[&[f64]] = &[&[0.4], &[1.0], &[2.7], &[13.0]];
const ABOVE_ONE: &[&[f64]] = &[&[1.5], &[2.0], &[9.0]];
const NONZERO: &[&[f64]] = &[&[0.3], &[-1.2], &[2.5], &[-4.0]];
/// Away from integers, where `fract` jumps.
const OFF_GRID: &[&[f64]] = &[&[0.3], &[-1.2], &[2.7], &[-4.1]];
/// Pairs with no ties and no quotient `a / b` near an integer (where `%` jumps).
const PAIRS: &[&[f64]] = &[
    &[1.3, 0.4],
    &[-2.1, 3.7],
    &[0.25, -5.5],
    &[7.0, 1.9],
    &[-0.8, -0.6],
];
const POSITIVE_PAIRS: &[&[f64]] = &[&[1.3, 0.4], &[2.1, 3.7], &[0.25, 5.5], &[7.0, 1.9]];
/// `log` bases, away from 1.
const LOG_PAIRS: &[&[f64]] = &[&[1.3, 0.4], &[2.1, 3.7], &[0.25, 5.5], &[7.0, 10.0]];
const TRIPLES: &[&[f64]] = &[&[1.3, 0.4, -2.0], &[-2.1, 3.7, 0.5], &[0.25, -5.5, 9.0]];
/// `(x, lo, hi)` inside, below and above the interval, each away from the edges.
const CLAMPS: &[&[f64]] = &[
    &[0.5, -1.0, 2.0],
    &[-3.0, -1.0, 2.0],
    &[4.5, -1.0, 2.0],
    &[1.9, 1.0, 3.0],
];

#[test]
fn arithmetic_rules_match_finite_differences() {
    rules! {
        add_d0: |v| v[0] + v[1], 0, |_, _, d| add_d0(d), PAIRS;
        add_d1: |v| v[0] + v[1], 1, |_, _, d| add_d1(d), PAIRS;
        sub_d0: |v| v[0] - v[1], 0, |_, _, d| sub_d0(d), PAIRS;
        sub_d1: |v| v[0] - v[1], 1, |_, _, d| sub_d1(d), PAIRS;
        mul_d0: |v| v[0] * v[1], 0, |v, _, d| mul_d0(&v[1], d), PAIRS;
        mul_d1: |v| v[0] * v[1], 1, |v, _, d| mul_d1(&v[0], d), PAIRS;
        div_d0: |v| v[0] / v[1], 0, |v, _, d| div_d0(&v[1], d), PAIRS;
        div_d1: |v| v[0] / v[1], 1, |v, y, d| div_d1(&v[1], &y, d), PAIRS;
        rem_d0: |v| v[0] % v[1], 0, |_, _, d| rem_d0(d), PAIRS;
        rem_d1: |v| v[0] % v[1], 1, |v, _, d| rem_d1(&v[0], &v[1], d), PAIRS;
        neg_d0: |v| -v[0], 0, |_, _, d| neg_d0(d), PAIRS;
    }
}

#[test]
fn unary_rules_match_finite_differences() {
    rules! {
        sin_d0: |v| v[0].sin(), 0, |v, _, d| sin_d0(&v[0], d), ANY;
        cos_d0: |v| v[0].cos(), 0, |v, _, d| cos_d0(&v[0], d), ANY;
        tan_d0: |v| v[0].tan(), 0, |_, y, d| tan_d0(&y, d), UNIT;
        asin_d0: |v| v[0].asin(), 0, |v, _, d| asin_d0(&v[0], d), UNIT;
        acos_d0: |v| v[0].acos(), 0, |v, _, d| acos_d0(&v[0], d), UNIT;
        atan_d0: |v| v[0].atan(), 0, |v, _, d| atan_d0(&v[0], d), ANY;
        sinh_d0: |v| v[0].sinh(), 0, |v, _, d| sinh_d0(&v[0], d), ANY;
        cosh_d0: |v| v[0].cosh(), 0, |v, _, d| cosh_d0(&v[0], d), NONZERO;
        tanh_d0: |v| v[0].tanh(), 0, |_, y, d| tanh_d0(&y, d), ANY;
        asinh_d0: |v| v[0].asinh(), 0, |v, _, d| asinh_d0(&v[0], d), ANY;
        acosh_d0: |v| v[0].acosh(), 0, |v, _, d| acosh_d0(&v[0], d), ABOVE_ONE;
        atanh_d0: |v| v[0].atanh(), 0, |v, _, d| atanh_d0(&v[0], d), UNIT;
        exp_d0: |v| v[0].exp(), 0, |_, y, d| exp_d0(&y, d), ANY;
        exp2_d0: |v| v[0].exp2(), 0, |_, y, d| exp2_d0(&y, d), ANY;
        exp_m1_d0: |v| v[0].exp_m1(), 0, |_, y, d| exp_m1_d0(&y, d), ANY;
        ln_d0: |v| v[0].ln(), 0, |v, _, d| ln_d0(&v[0], d), POSITIVE;
        log2_d0: |v| v[0].log2(), 0, |v, _, d| log2_d0(&v[0], d), POSITIVE;
        log10_d0: |v| v[0].log10(), 0, |v, _, d| log10_d0(&v[0], d), POSITIVE;
        ln_1p_d0: |v| v[0].ln_1p(), 0, |v, _, d| ln_1p_d0(&v[0], d), UNIT;
        sqrt_d0: |v| v[0].sqrt(), 0, |_, y, d| sqrt_d0(&y, d), POSITIVE;
        cbrt_d0: |v| v[0].cbrt(), 0, |_, y, d| cbrt_d0(&y, d), NONZERO;
        recip_d0: |v| v[0].recip(), 0, |_, y, d| recip_d0(&y, d), NONZERO;
        abs_d0: |v| v[0].abs(), 0, |v, _, d| abs_d0(&v[0], d), NONZERO;
        fract_d0: |v| v[0].fract(), 0, |_, _, d| fract_d0(d), OFF_GRID;
        to_degrees_d0: |v| v[0].to_degrees(), 0, |_, _, d| to_degrees_d0(d), ANY;
        to_radians_d0: |v| v[0].to_radians(), 0, |_, _, d| to_radians_d0(d), ANY;
    }
}

#[test]
fn powi_matches_finite_differences() {
    for n in [-3, -1, 0, 1, 2, 5] {
        let name = format!("powi_d0 with n = {n}");
        check(
            &name,
            |v| v[0].powi(n),
            0,
            |v, _, d| powi_d0(&v[0], &n, d),
            NONZERO,
        );
    }
}

#[test]
fn binary_rules_match_finite_differences() {
    rules! {
        atan2_d0: |v| v[0].atan2(v[1]), 0, |v, _, d| atan2_d0(&v[0], &v[1], d), PAIRS;
        atan2_d1: |v| v[0].atan2(v[1]), 1, |v, _, d| atan2_d1(&v[0], &v[1], d), PAIRS;
        log_d0: |v| v[0].log(v[1]), 0, |v, _, d| log_d0(&v[0], &v[1], d), LOG_PAIRS;
        log_d1: |v| v[0].log(v[1]), 1, |v, _, d| log_d1(&v[0], &v[1], d), LOG_PAIRS;
        powf_d0: |v| v[0].powf(v[1]), 0, |v, _, d| powf_d0(&v[0], &v[1], d), POSITIVE_PAIRS;
        powf_d1: |v| v[0].powf(v[1]), 1, |v, y, d| powf_d1(&v[0], &y, d), POSITIVE_PAIRS;
        hypot_d0: |v| v[0].hypot(v[1]), 0, |v, y, d| hypot_d0(&v[0], &y, d), PAIRS;
        hypot_d1: |v| v[0].hypot(v[1]), 1, |v, y, d| hypot_d1(&v[1], &y, d), PAIRS;
        max_d0: |v| v[0].max(v[1]), 0, |v, _, d| max_d0(&v[0], &v[1], d), PAIRS;
        max_d1: |v| v[0].max(v[1]), 1, |v, _, d| max_d1(&v[0], &v[1], d), PAIRS;
        min_d0: |v| v[0].min(v[1]), 0, |v, _, d| min_d0(&v[0], &v[1], d), PAIRS;
        min_d1: |v| v[0].min(v[1]), 1, |v, _, d| min_d1(&v[0], &v[1], d), PAIRS;
    }
}

#[test]
fn ternary_rules_match_finite_differences() {
    rules! {
        mul_add_d0: |v| v[0].mul_add(v[1], v[2]), 0, |v, _, d| mul_add_d0(&v[1], d), TRIPLES;
        mul_add_d1: |v| v[0].mul_add(v[1], v[2]), 1, |v, _, d| mul_add_d1(&v[0], d), TRIPLES;
        mul_add_d2: |v| v[0].mul_add(v[1], v[2]), 2, |_, _, d| mul_add_d2(d), TRIPLES;
        clamp_d0: |v| v[0].clamp(v[1], v[2]), 0, |v, _, d| clamp_d0(&v[0], &v[1], &v[2], d), CLAMPS;
        clamp_d1: |v| v[0].clamp(v[1], v[2]), 1, |v, _, d| clamp_d1(&v[0], &v[1], d), CLAMPS;
        clamp_d2: |v| v[0].clamp(v[1], v[2]), 2, |v, _, d| clamp_d2(&v[0], &v[2], d), CLAMPS;
    }
}

#[test]
fn cast_converts_the_cotangent_back() {
    let x_bar: f64 = cast_d0(0.7_f32);
    assert_eq!(x_bar, f64::from(0.7_f32));
    let x_bar: f32 = cast_d0(0.1_f64);
    assert_eq!(x_bar, 0.1_f32);
    let x_bar: f32 = cast_d0(1e300_f64);
    assert_eq!(x_bar, f32::INFINITY);
}

#[test]
fn rules_work_in_f32() {
    assert_eq!(sin_d0(&0.0_f32, 2.0), 2.0);
    assert!((exp2_d0(&4.0_f32, 1.0) - 4.0 * core::f32::consts::LN_2).abs() < 1e-6);
    assert!((to_degrees_d0(1.0_f32) - 1.0_f32.to_degrees()).abs() < 1e-5);
    assert_eq!(powi_d0(&2.0_f32, &3, 1.0), 12.0);
}

#[test]
fn abs_at_zero_gives_the_zero_subgradient() {
    assert_eq!(abs_d0(&0.0, D), 0.0);
    assert_eq!(abs_d0(&-0.0, D), 0.0);
    assert_eq!(abs_d0(&2.0, D), D);
    assert_eq!(abs_d0(&-2.0, D), -D);
    assert!(abs_d0(&f64::NAN, D).is_nan());
}

#[test]
fn max_and_min_split_ties_and_skip_nans() {
    assert_eq!(
        (max_d0(&1.5, &1.5, D), max_d1(&1.5, &1.5, D)),
        (D / 2.0, D / 2.0)
    );
    assert_eq!(
        (min_d0(&1.5, &1.5, D), min_d1(&1.5, &1.5, D)),
        (D / 2.0, D / 2.0)
    );
    assert_eq!(
        (max_d0(&0.0, &-0.0, D), max_d1(&0.0, &-0.0, D)),
        (D / 2.0, D / 2.0)
    );
    // f64::max and f64::min return the non-NaN argument, which takes all of d.
    let nan = f64::NAN;
    assert_eq!((max_d0(&nan, &2.0, D), max_d1(&nan, &2.0, D)), (0.0, D));
    assert_eq!((max_d0(&2.0, &nan, D), max_d1(&2.0, &nan, D)), (D, 0.0));
    assert_eq!((min_d0(&nan, &2.0, D), min_d1(&nan, &2.0, D)), (0.0, D));
    assert_eq!((min_d0(&2.0, &nan, D), min_d1(&2.0, &nan, D)), (D, 0.0));
    assert_eq!(
        (max_d0(&nan, &nan, D), max_d1(&nan, &nan, D)),
        (D / 2.0, D / 2.0)
    );
    // Away from ties the winner takes everything.
    assert_eq!((max_d0(&3.0, &2.0, D), max_d1(&3.0, &2.0, D)), (D, 0.0));
    assert_eq!((min_d0(&3.0, &2.0, D), min_d1(&3.0, &2.0, D)), (0.0, D));
}

#[test]
fn clamp_edges_send_the_cotangent_to_x() {
    for x in [-1.0, 2.0] {
        assert_eq!(clamp_d0(&x, &-1.0, &2.0, D), D, "x = {x}");
        assert_eq!(clamp_d1(&x, &-1.0, D), 0.0, "x = {x}");
        assert_eq!(clamp_d2(&x, &2.0, D), 0.0, "x = {x}");
    }
    assert_eq!(clamp_d0(&f64::NAN, &-1.0, &2.0, D), 0.0);
}

#[test]
fn hypot_and_atan2_are_zero_at_the_origin() {
    assert_eq!(
        (hypot_d0(&0.0, &0.0, D), hypot_d1(&0.0, &0.0, D)),
        (0.0, 0.0)
    );
    assert_eq!(
        (atan2_d0(&0.0, &0.0, D), atan2_d1(&0.0, &0.0, D)),
        (0.0, 0.0)
    );
    assert_eq!(
        (atan2_d0(&-0.0, &-0.0, D), atan2_d1(&-0.0, &-0.0, D)),
        (0.0, 0.0)
    );
}

#[test]
fn atan2_survives_extreme_magnitudes() {
    // a² + b² would overflow or underflow here; the exact values are d·b/r² and -d·a/r².
    for s in [1e200, 1e-200] {
        let (a, b) = (3.0 * s, 4.0 * s);
        let want = (D * 4.0 / 25.0 / s, -D * 3.0 / 25.0 / s);
        assert!(error(atan2_d0(&a, &b, D), want.0) < 1e-14, "scale {s}");
        assert!(error(atan2_d1(&a, &b, D), want.1) < 1e-14, "scale {s}");
    }
}

#[test]
fn powf_at_zero_takes_the_limits() {
    assert_eq!(powf_d0(&0.0, &1.0, D), D);
    assert_eq!(powf_d0(&0.0, &2.5, D), 0.0);
    assert_eq!(powf_d0(&0.0, &0.5, D), f64::INFINITY);
    assert_eq!(powf_d0(&0.0, &0.0, D), 0.0);
    // y = 0 for p > 0, and y ln x → 0.
    assert_eq!(powf_d1(&0.0, &0.0, D), 0.0);
}

#[test]
fn powi_with_zero_exponent_is_constant() {
    assert_eq!(powi_d0(&0.0, &0, D), 0.0);
    assert_eq!(powi_d0(&3.0, &0, D), 0.0);
    assert_eq!(powi_d0(&0.0, &1, D), D);
    // x^(i32::MIN - 1) is not an i32 power; the rule must neither overflow nor panic.
    let x = 1.0_f64 + 1e-9;
    let want = D * f64::from(i32::MIN) * x.powf(f64::from(i32::MIN) - 1.0);
    assert!(error(powi_d0(&x, &i32::MIN, D), want) < 1e-9);
}

#[test]
fn sqrt_at_zero_is_infinite() {
    assert_eq!(sqrt_d0(&0.0, D), f64::INFINITY);
}

/// `b = a` with `b[i] ±= v` is linear in `(a, v)`: the pullback must satisfy the dot-product
/// test `<b̄, J t> = <(ā, v̄), t>` for any tangent `t = (ta, tv)` and cotangent `b̄`, with
/// `ā = b̄` and `v̄ = ±b̄[i]` (the rules `index_add_d2`, `index_sub_d2`).
#[test]
fn compound_element_updates_pass_the_dot_product_test() {
    let (ta, tv) = ([0.3, -1.2, 2.5, 0.8], -0.6);
    let d_b = vec![1.1, -0.4, 0.9, 2.0];
    for i in 0..4 {
        for sign in [1.0, -1.0] {
            // the tangent of b: ta with tv added (or subtracted) at i
            let mut tb = ta;
            tb[i] += sign * tv;
            let lhs: f64 = d_b.iter().zip(tb).map(|(d, t)| d * t).sum();
            let d_v = if sign > 0.0 {
                index_add_d2(&d_b, &i)
            } else {
                index_sub_d2(&d_b, &i)
            };
            let d_a = &d_b;
            let rhs: f64 = d_a.iter().zip(ta).map(|(d, t)| d * t).sum::<f64>() + d_v * tv;
            assert!(
                error(lhs, rhs) < 1e-14,
                "i = {i}, sign {sign}: {lhs} against {rhs}"
            );
        }
    }
    // a cotangent that has not grown to `i` reads zero there
    assert_eq!(index_add_d2(&Vec::<f64>::new(), &3), 0.0);
}
