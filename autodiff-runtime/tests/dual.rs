//! `Dual`: every `Float` method's tangent against finite differences, arithmetic,
//! comparisons and the `num_traits` plumbing.

mod common;

use autodiff_runtime::num_traits::{Float, FloatConst, Num, NumCast, One, ToPrimitive, Zero};
use autodiff_runtime::Dual;
use common::{error, partial, TOLERANCE};

type D64 = Dual<f64>;

/// Checks a method of `n` arguments: on each point, `dual` with argument `k` seeded as the
/// variable (the others constant) must give `plain` in `re` and `∂plain/∂x_k` in `eps`.
fn check(
    name: &str,
    plain: impl Fn(&[f64]) -> f64,
    dual: impl Fn(&[D64]) -> D64,
    points: &[&[f64]],
) {
    for x in points {
        for k in 0..x.len() {
            let args: Vec<D64> = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if i == k {
                        D64::variable(v)
                    } else {
                        D64::constant(v)
                    }
                })
                .collect();
            let y = dual(&args);
            let (want_re, want_eps) = (plain(x), partial(&plain, x, k));
            assert!(
                y.re == want_re || (y.re.is_nan() && want_re.is_nan()),
                "{name} at {x:?}: value {} instead of {want_re}",
                y.re
            );
            let e = error(y.eps, want_eps);
            assert!(
                e < TOLERANCE,
                "{name} at {x:?}, argument {k}: eps {}, finite difference {want_eps} (error {e:e})",
                y.eps
            );
        }
    }
}

/// One `check` per row: `name: |v| body, points;`, where the same body is evaluated on
/// `&[f64]` and on `&[Dual<f64>]`.
macro_rules! methods {
    ($($name:ident: |$v:ident| $body:expr, $points:expr;)*) => {$(
        check(stringify!($name), |$v: &[f64]| $body, |$v: &[D64]| $body, $points);
    )*};
}

const ANY: &[&[f64]] = &[&[0.3], &[-1.2], &[2.5], &[-0.05]];
const UNIT: &[&[f64]] = &[&[0.3], &[-0.6], &[0.75], &[-0.1]];
const POSITIVE: &[&[f64]] = &[&[0.4], &[1.0], &[2.7], &[13.0]];
const ABOVE_ONE: &[&[f64]] = &[&[1.5], &[2.0], &[9.0]];
const NONZERO: &[&[f64]] = &[&[0.3], &[-1.2], &[2.5], &[-4.0]];
/// Away from integers and half-integers, where the rounding methods jump.
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
const CLAMPS: &[&[f64]] = &[&[0.5, -1.0, 2.0], &[-3.0, -1.0, 2.0], &[4.5, -1.0, 2.0]];

#[test]
fn unary_methods_match_finite_differences() {
    methods! {
        abs: |v| v[0].abs(), NONZERO;
        fract: |v| v[0].fract(), OFF_GRID;
        floor: |v| v[0].floor(), OFF_GRID;
        ceil: |v| v[0].ceil(), OFF_GRID;
        round: |v| v[0].round(), OFF_GRID;
        trunc: |v| v[0].trunc(), OFF_GRID;
        signum: |v| v[0].signum(), NONZERO;
        recip: |v| v[0].recip(), NONZERO;
        sqrt: |v| v[0].sqrt(), POSITIVE;
        cbrt: |v| v[0].cbrt(), NONZERO;
        exp: |v| v[0].exp(), ANY;
        exp2: |v| v[0].exp2(), ANY;
        exp_m1: |v| v[0].exp_m1(), ANY;
        ln: |v| v[0].ln(), POSITIVE;
        log2: |v| v[0].log2(), POSITIVE;
        log10: |v| v[0].log10(), POSITIVE;
        ln_1p: |v| v[0].ln_1p(), UNIT;
        to_degrees: |v| v[0].to_degrees(), ANY;
        to_radians: |v| v[0].to_radians(), ANY;
        sin: |v| v[0].sin(), ANY;
        cos: |v| v[0].cos(), ANY;
        tan: |v| v[0].tan(), UNIT;
        asin: |v| v[0].asin(), UNIT;
        acos: |v| v[0].acos(), UNIT;
        atan: |v| v[0].atan(), ANY;
        sinh: |v| v[0].sinh(), ANY;
        cosh: |v| v[0].cosh(), ANY;
        tanh: |v| v[0].tanh(), ANY;
        asinh: |v| v[0].asinh(), ANY;
        acosh: |v| v[0].acosh(), ABOVE_ONE;
        atanh: |v| v[0].atanh(), UNIT;
        sin_cos_sin: |v| v[0].sin_cos().0, ANY;
        sin_cos_cos: |v| v[0].sin_cos().1, ANY;
        powi_neg_3: |v| v[0].powi(-3), NONZERO;
        powi_neg_1: |v| v[0].powi(-1), NONZERO;
        powi_0: |v| v[0].powi(0), NONZERO;
        powi_1: |v| v[0].powi(1), NONZERO;
        powi_2: |v| v[0].powi(2), NONZERO;
        powi_5: |v| v[0].powi(5), NONZERO;
    }
}

#[test]
fn binary_methods_match_finite_differences() {
    methods! {
        powf: |v| v[0].powf(v[1]), POSITIVE_PAIRS;
        log: |v| v[0].log(v[1]), LOG_PAIRS;
        max: |v| v[0].max(v[1]), PAIRS;
        min: |v| v[0].min(v[1]), PAIRS;
        hypot: |v| v[0].hypot(v[1]), PAIRS;
        atan2: |v| v[0].atan2(v[1]), PAIRS;
        copysign: |v| v[0].copysign(v[1]), PAIRS;
        abs_sub: |v| Float::abs_sub(v[0], v[1]), PAIRS;
    }
}

#[test]
fn ternary_methods_match_finite_differences() {
    methods! {
        mul_add: |v| v[0].mul_add(v[1], v[2]), TRIPLES;
        clamp: |v| Float::clamp(v[0], v[1], v[2]), CLAMPS;
    }
}

#[test]
fn arithmetic_matches_finite_differences() {
    methods! {
        add: |v| v[0] + v[1], PAIRS;
        sub: |v| v[0] - v[1], PAIRS;
        mul: |v| v[0] * v[1], PAIRS;
        div: |v| v[0] / v[1], PAIRS;
        rem: |v| v[0] % v[1], PAIRS;
        neg: |v| -v[0], PAIRS;
        with_scalars: |v| 2.0 * v[0] - v[1] / 3.0 + 1.7 % v[0], PAIRS;
    }
}

#[test]
fn compound_assignment_and_scalar_operands() {
    let mut x = D64::variable(2.0);
    x += D64::new(1.0, 0.5);
    assert_eq!((x.re, x.eps), (3.0, 1.5));
    x -= 1.0;
    assert_eq!((x.re, x.eps), (2.0, 1.5));
    x *= 3.0;
    assert_eq!((x.re, x.eps), (6.0, 4.5));
    x /= D64::constant(2.0);
    assert_eq!((x.re, x.eps), (3.0, 2.25));
    x %= 2.0;
    assert_eq!((x.re, x.eps), (1.0, 2.25));
    let y = 1.0 - D64::variable(4.0) * 0.5 + 2.0;
    assert_eq!((y.re, y.eps), (1.0, -0.5));
    let z = 1.0_f32 / Dual::variable(2.0_f32);
    assert_eq!((z.re, z.eps), (0.5, -0.25));
    let s: D64 = [D64::variable(1.0), D64::constant(2.0), D64::variable(3.0)]
        .into_iter()
        .sum();
    assert_eq!((s.re, s.eps), (6.0, 2.0));
    let p: D64 = [D64::variable(2.0), D64::constant(5.0), D64::variable(3.0)]
        .into_iter()
        .product();
    assert_eq!((p.re, p.eps), (30.0, 25.0));
}

#[test]
fn comparisons_look_at_the_value_only() {
    let (a, b) = (D64::new(1.0, 5.0), D64::new(2.0, -5.0));
    assert!(a < b && a <= b && a != b);
    assert!(b > a && b >= a);
    assert_eq!(D64::new(1.0, 0.0), D64::new(1.0, 3.0));
    assert!(D64::variable(0.0).is_zero());
    assert!(D64::new(f64::NAN, 0.0).partial_cmp(&a).is_none());
    assert_eq!(a.max(b).re, 2.0);
}

#[test]
fn kinks_follow_the_rule_conventions() {
    assert_eq!(D64::variable(0.0).abs().eps, 0.0);
    let (a, b) = (D64::new(1.0, 1.0), D64::new(1.0, 3.0));
    assert_eq!(a.max(b).eps, 2.0);
    assert_eq!(a.min(b).eps, 2.0);
    let origin = D64::variable(0.0).hypot(D64::variable(0.0));
    assert_eq!((origin.re, origin.eps), (0.0, 0.0));
    assert_eq!(D64::variable(0.0).atan2(D64::constant(0.0)).eps, 0.0);
    assert_eq!(D64::variable(0.0).powf(D64::constant(1.0)).eps, 1.0);
    assert_eq!(D64::variable(0.0).powf(D64::constant(2.0)).eps, 0.0);
    assert_eq!(D64::variable(0.0).powi(0).eps, 0.0);
    assert_eq!(D64::variable(0.0).sqrt().eps, f64::INFINITY);
}

#[test]
fn zero_tangents_never_become_nan() {
    // Constants stay constants even where the derivative is infinite or undefined.
    assert_eq!(D64::constant(0.0).sqrt().eps, 0.0);
    assert_eq!(D64::constant(0.0).ln().eps, 0.0);
    assert_eq!(D64::constant(1.0).acosh().eps, 0.0);
    // (-2)^3 with a constant exponent: ln(-2) never enters.
    let y = D64::variable(-2.0).powf(D64::constant(3.0));
    assert_eq!((y.re, y.eps), (-8.0, 12.0));
    let y = D64::constant(f64::INFINITY) * D64::variable(2.0);
    assert_eq!((y.re, y.eps), (f64::INFINITY, f64::INFINITY));
}

#[test]
fn nested_duals_give_second_derivatives() {
    // f(x) = x³ sin x; f'' = 6x sin x + 6x² cos x - x³ sin x
    let f = |x: Dual<D64>| x.powi(3) * x.sin();
    let x0 = 0.8_f64;
    let x = Dual::new(D64::variable(x0), D64::constant(1.0));
    let second = f(x).eps.eps;
    let want = 6.0 * x0 * x0.sin() + 6.0 * x0 * x0 * x0.cos() - x0.powi(3) * x0.sin();
    assert!(error(second, want) < 1e-14);
}

#[test]
fn predicates_and_constants_read_the_value() {
    let x = D64::new(-1.5, 2.0);
    assert!(!x.is_nan() && x.is_finite() && !x.is_infinite() && x.is_normal() && !x.is_subnormal());
    assert!(x.is_sign_negative() && !x.is_sign_positive());
    assert_eq!(x.classify(), (-1.5_f64).classify());
    assert_eq!(x.integer_decode(), (-1.5_f64).integer_decode());
    assert!(D64::new(f64::MIN_POSITIVE / 2.0, 1.0).is_subnormal());
    assert!(D64::nan().is_nan());
    let constants = [
        (D64::infinity(), f64::INFINITY),
        (D64::neg_infinity(), f64::NEG_INFINITY),
        (D64::neg_zero(), -0.0),
        (D64::min_value(), f64::MIN),
        (D64::min_positive_value(), f64::MIN_POSITIVE),
        (D64::epsilon(), f64::EPSILON),
        (D64::max_value(), f64::MAX),
        (D64::PI(), core::f64::consts::PI),
        (D64::TAU(), core::f64::consts::TAU),
        (D64::LN_2(), core::f64::consts::LN_2),
        (D64::LOG10_2(), core::f64::consts::LOG10_2),
        (D64::SQRT_2(), core::f64::consts::SQRT_2),
    ];
    for (c, want) in constants {
        assert_eq!(c.re.to_bits(), want.to_bits());
        assert_eq!(c.eps, 0.0);
    }
}

#[test]
fn conversions_and_parsing() {
    let x = D64::new(2.75, 1.0);
    assert_eq!(x.to_f64(), Some(2.75));
    assert_eq!(x.to_f32(), Some(2.75));
    assert_eq!(x.to_i32(), Some(2));
    assert_eq!(x.to_u8(), Some(2));
    assert_eq!(D64::new(-1.0, 0.0).to_u64(), None);
    let c = <D64 as NumCast>::from(7_u8).unwrap();
    assert_eq!((c.re, c.eps), (7.0, 0.0));
    let h = <Dual<f32> as NumCast>::from(0.5_f64).unwrap();
    assert_eq!((h.re, h.eps), (0.5, 0.0));
    let p = D64::from_str_radix("1.25", 10).unwrap();
    assert_eq!((p.re, p.eps), (1.25, 0.0));
    assert!(D64::from_str_radix("nope", 10).is_err());
    assert_eq!(
        (D64::zero().re, D64::one().re, D64::one().eps),
        (0.0, 1.0, 0.0)
    );
    let d = D64::default();
    assert_eq!((d.re, d.eps), (0.0, 0.0));
}

#[test]
fn display_shows_both_parts() {
    assert_eq!(D64::new(1.5, 2.0).to_string(), "1.5 + 2ε");
    assert_eq!(D64::new(1.5, -2.0).to_string(), "1.5 - 2ε");
    assert_eq!(format!("{:.1}", D64::new(-0.26, 0.04)), "-0.3 + 0.0ε");
}

#[test]
fn generic_code_runs_on_duals() {
    fn softplus<T: Float>(x: T) -> T {
        (T::one() + x.exp()).ln()
    }
    let y = softplus(D64::variable(0.3));
    let sigmoid = 1.0 / (1.0 + (-0.3_f64).exp());
    assert!(error(y.eps, sigmoid) < 1e-15);
}

#[test]
fn sums_keep_the_sign_of_zero_like_float_sums() {
    // found by the generated-function tests (seed 7): `(0..4).map(..).sum()` of negative
    // zeros gave +0.0 in `Dual` and -0.0 in `f64`, which flipped a later `atan`'s sign
    let zeros = [-0.0_f64, -0.0];
    let plain: f64 = zeros.iter().sum();
    let dual: D64 = zeros.iter().map(|&v| D64::constant(v)).sum();
    assert_eq!(dual.re.to_bits(), plain.to_bits());
    let empty: D64 = core::iter::empty().sum();
    assert_eq!(
        empty.re.to_bits(),
        core::iter::empty::<f64>().sum::<f64>().to_bits()
    );
    let product: D64 = [D64::variable(2.0), D64::constant(3.0)]
        .into_iter()
        .product();
    assert_eq!((product.re, product.eps), (6.0, 3.0));
}
