//! Every scalar primitive, in `f64`, `f32` and generic `T: Float` form, against central finite
//! differences; the forward pass keeps every value bit for bit; the documented conventions at
//! non-differentiable points; and the path call forms `f64::sin(x)`, `Float::sin(x)`,
//! `T::sin(x)`.

use autodiff::prelude::*;
use autodiff::relative_error;

/// Tolerance of an `f64` gradient against finite differences (see `check_gradient`).
const TOL_F64: f64 = 1e-8;
/// Tolerance of an `f32` gradient: the finite differences of an `f32` function carry a
/// rounding error of about `1e-4`.
const TOL_F32: f64 = 2e-3;

/// A gradient (one float or a tuple of floats) as a list of `f64` components.
trait Components {
    fn components(self) -> Vec<f64>;
}

impl Components for f64 {
    fn components(self) -> Vec<f64> {
        vec![self]
    }
}

impl Components for f32 {
    fn components(self) -> Vec<f64> {
        vec![f64::from(self)]
    }
}

impl Components for Vec<f64> {
    fn components(self) -> Vec<f64> {
        self
    }
}

impl<A: Components, B: Components> Components for (A, B) {
    fn components(self) -> Vec<f64> {
        let mut v = self.0.components();
        v.extend(self.1.components());
        v
    }
}

impl<A: Components, B: Components, C: Components> Components for (A, B, C) {
    fn components(self) -> Vec<f64> {
        let mut v = self.0.components();
        v.extend(self.1.components());
        v.extend(self.2.components());
        v
    }
}

/// A gradient of `Dual<f64>` components, split into the values and the tangents.
trait DualComponents {
    fn split(self) -> (Vec<f64>, Vec<f64>);
}

impl DualComponents for Dual<f64> {
    fn split(self) -> (Vec<f64>, Vec<f64>) {
        (vec![self.re], vec![self.eps])
    }
}

impl<A: DualComponents, B: DualComponents> DualComponents for (A, B) {
    fn split(self) -> (Vec<f64>, Vec<f64>) {
        let (mut re, mut eps) = self.0.split();
        let (re1, eps1) = self.1.split();
        re.extend(re1);
        eps.extend(eps1);
        (re, eps)
    }
}

impl<A: DualComponents, B: DualComponents, C: DualComponents> DualComponents for (A, B, C) {
    fn split(self) -> (Vec<f64>, Vec<f64>) {
        let (mut re, mut eps) = (self.0, self.1).split();
        let (re2, eps2) = self.2.split();
        re.extend(re2);
        eps.extend(eps2);
        (re, eps)
    }
}

/// Asserts that `gradient` agrees with the finite-difference gradient of `f` at `x`.
fn assert_gradient(
    what: &str,
    f: impl Fn(&[f64]) -> f64,
    x: &[f64],
    gradient: impl Components,
    tolerance: f64,
) {
    let gradient = gradient.components();
    let error = check_gradient(&f, x, &gradient);
    assert!(
        error < tolerance,
        "{what} at {x:?}: gradient {gradient:?}, finite differences {:?} (error {error:e})",
        finite_difference_gradient(&f, x),
    );
}

/// Asserts that `gradient` is `expected`, component by component, to rounding.
fn assert_close(what: &str, gradient: impl Components, expected: &[f64]) {
    let gradient = gradient.components();
    assert_eq!(gradient.len(), expected.len(), "{what}");
    for (g, e) in gradient.iter().zip(expected) {
        assert!(
            relative_error(*g, *e) < 1e-12,
            "{what}: gradient {gradient:?}, expected {expected:?}"
        );
    }
}

/// `primitive!(name(args) { body } at [point], [point], ...)` defines, in `mod name`, the
/// function `args -> body` as `of_f64`, `of_f32` and `generic<T: Float>`, all
/// `#[differentiate]`d, and two tests: the gradients of all three (the generic one at
/// `T = f64` and `T = f32`) against finite differences at every point; the forward values
/// of `_pullback` and `_grad` against the original function, bit for bit; and, through the
/// generic form at `T = Dual<f64>` (forward over reverse), the Hessian times `(1, ..., 1)`
/// against finite differences of the `f64` gradient.
///
/// Every argument is a float parameter, so the gradient covers every argument of the
/// primitive. The body must not contain float literals (they would not type in the generic
/// form).
macro_rules! primitive {
    ($name:ident($($arg:ident),+) { $($body:tt)* } at $([$($p:expr),+ $(,)?]),+ $(,)?) => {
        mod $name {
            use super::*;

            #[differentiate]
            pub fn of_f64($($arg: f64),+) -> f64 {
                $($body)*
            }

            #[differentiate]
            pub fn of_f32($($arg: f32),+) -> f32 {
                $($body)*
            }

            #[differentiate]
            pub fn generic<T: Float>($($arg: T),+) -> T {
                $($body)*
            }

            const SOURCE: &str = stringify!(|$($arg),+| $($body)*);
            const POINTS: &[&[f64]] = &[$(&[$($p),+]),+];

            #[test]
            fn gradient_matches_finite_differences() {
                for &point in POINTS {
                    let &[$($arg),+] = point else { unreachable!() };

                    let (_, g) = of_f64_grad($($arg),+);
                    let f = |v: &[f64]| {
                        let &[$($arg),+] = v else { unreachable!() };
                        of_f64($($arg),+)
                    };
                    assert_gradient(&format!("f64 {SOURCE}"), f, point, g, TOL_F64);

                    let (_, g) = of_f32_grad($($arg as f32),+);
                    let f = |v: &[f64]| {
                        let &[$($arg),+] = v else { unreachable!() };
                        f64::from(of_f32($($arg as f32),+))
                    };
                    assert_gradient(&format!("f32 {SOURCE}"), f, point, g, TOL_F32);

                    let (_, g) = generic_grad::<f64>($($arg),+);
                    let f = |v: &[f64]| {
                        let &[$($arg),+] = v else { unreachable!() };
                        generic::<f64>($($arg),+)
                    };
                    assert_gradient(&format!("generic::<f64> {SOURCE}"), f, point, g, TOL_F64);

                    let (_, g) = generic_grad::<f32>($($arg as f32),+);
                    let f = |v: &[f64]| {
                        let &[$($arg),+] = v else { unreachable!() };
                        f64::from(generic::<f32>($($arg as f32),+))
                    };
                    assert_gradient(&format!("generic::<f32> {SOURCE}"), f, point, g, TOL_F32);

                    // `backward` is linear in the cotangent and `_grad` is `backward(1)`.
                    let (_, pullback) = of_f64_pullback($($arg),+);
                    let (_, g) = of_f64_grad($($arg),+);
                    let scaled: Vec<f64> =
                        g.components().iter().map(|g| -2.5 * g).collect();
                    assert_close(
                        &format!("f64 {SOURCE} at {point:?}: backward(-2.5)"),
                        pullback.backward(-2.5),
                        &scaled,
                    );
                }
            }

            #[test]
            fn forward_over_reverse_through_dual() {
                for &point in POINTS {
                    let &[$($arg),+] = point else { unreachable!() };
                    let what = format!("generic::<Dual<f64>> {SOURCE} at {point:?}");
                    let (y, g) = generic_grad::<Dual<f64>>($(Dual::variable($arg)),+);
                    let (re, eps) = g.split();
                    let expected = of_f64_grad($($arg),+).1.components();
                    assert_eq!(y.re.to_bits(), of_f64($($arg),+).to_bits(), "{what}: value");
                    assert_close(&format!("{what}: gradient"), re, &expected);
                    // d/dt ∇f(x + t(1, ..., 1)) at t = 0, one gradient component at a time.
                    let hessian_row_sums: Vec<f64> = (0..point.len())
                        .map(|i| {
                            let component = |t: &[f64]| {
                                of_f64_grad($($arg + t[0]),+).1.components()[i]
                            };
                            finite_difference_gradient(component, &[0.0])[0]
                        })
                        .collect();
                    for (e, fd) in eps.iter().zip(&hessian_row_sums) {
                        assert!(
                            relative_error(*e, *fd) < 1e-6,
                            "{what}: tangent of the gradient {eps:?}, finite differences {hessian_row_sums:?}",
                        );
                    }
                }
            }

            #[test]
            fn forward_pass_keeps_the_value_bit_for_bit() {
                for &point in POINTS {
                    let &[$($arg),+] = point else { unreachable!() };
                    let what = format!("{SOURCE} at {point:?}");

                    let y = of_f64($($arg),+);
                    assert_eq!(of_f64_pullback($($arg),+).0.to_bits(), y.to_bits(), "f64 {what}");
                    assert_eq!(of_f64_grad($($arg),+).0.to_bits(), y.to_bits(), "f64 {what}");

                    let y = of_f32($($arg as f32),+);
                    let (y_pb, _) = of_f32_pullback($($arg as f32),+);
                    let (y_grad, _) = of_f32_grad($($arg as f32),+);
                    assert_eq!(y_pb.to_bits(), y.to_bits(), "f32 {what}");
                    assert_eq!(y_grad.to_bits(), y.to_bits(), "f32 {what}");

                    let y = generic::<f64>($($arg),+);
                    let (y_pb, _) = generic_pullback::<f64>($($arg),+);
                    let (y_grad, _) = generic_grad::<f64>($($arg),+);
                    assert_eq!(y_pb.to_bits(), y.to_bits(), "generic::<f64> {what}");
                    assert_eq!(y_grad.to_bits(), y.to_bits(), "generic::<f64> {what}");

                    let y = generic::<f32>($($arg as f32),+);
                    let (y_pb, _) = generic_pullback::<f32>($($arg as f32),+);
                    let (y_grad, _) = generic_grad::<f32>($($arg as f32),+);
                    assert_eq!(y_pb.to_bits(), y.to_bits(), "generic::<f32> {what}");
                    assert_eq!(y_grad.to_bits(), y.to_bits(), "generic::<f32> {what}");
                }
            }
        }
    };
}

// ---- operators ----

primitive!(op_add(a, b) { a + b } at [1.5, -2.0], [0.0, 3.0], [-4.25, -0.5]);
primitive!(op_sub(a, b) { a - b } at [1.5, -2.0], [0.0, 3.0], [-4.25, -0.5]);
primitive!(op_mul(a, b) { a * b } at [1.5, -2.0], [0.0, 3.0], [-4.25, -0.5], [7.0, 0.0]);
primitive!(op_div(a, b) { a / b } at [1.5, -2.0], [0.0, 3.0], [-4.25, -0.5], [7.0, 1.25]);
// Away from the jumps of a % b, where a / b is an integer.
primitive!(op_rem(a, b) { a % b } at
    [5.5, 2.0], [-7.3, 3.0], [2.5, -1.5], [0.7, 2.0], [10.0, 0.75], [-3.1, -1.2]);
primitive!(op_neg(x) { -x } at [1.5], [0.0], [-4.25]);

// ---- trigonometric ----

primitive!(sin(x) { x.sin() } at [-2.5], [-0.4], [0.0], [0.7], [1.2], [4.0]);
primitive!(cos(x) { x.cos() } at [-2.5], [-0.4], [0.0], [0.7], [1.2], [4.0]);
primitive!(tan(x) { x.tan() } at [-1.2], [-0.4], [0.0], [0.7], [1.2], [2.5]);
// `sin x` and `cos x` in one block: each one's derivative reads the other's saved value
// (`sin_d0_with_cos`, `cos_d0_with_sin`), as in a rotation by an angle
primitive!(sin_and_cos(x, y) { x.cos() * y + x.sin() * x.cos() - x.sin() * y * y } at
    [-2.5, 0.5], [-0.4, 1.5], [0.0, -1.0], [0.7, 2.0], [4.0, -0.25]);
// only the branch computes `cos x`: `sin x` outside it has no sibling in its block
primitive!(sin_and_cos_in_a_branch(x, y) {
    {
        let s = x.sin();
        let c = if y > x { x.cos() * s } else { s * y };
        s * y + c
    }
} at [-2.5, 0.5], [-0.4, 1.5], [0.7, -2.0], [4.0, -0.25]);
primitive!(asin(x) { x.asin() } at [-0.8], [-0.3], [0.0], [0.5], [0.8]);
primitive!(acos(x) { x.acos() } at [-0.8], [-0.3], [0.0], [0.5], [0.8]);
primitive!(atan(x) { x.atan() } at [-3.0], [-0.5], [0.0], [0.7], [10.0]);
// All four quadrants and both axes, away from the branch cut (a = 0, b < 0).
primitive!(atan2(a, b) { a.atan2(b) } at
    [1.0, 2.0], [-1.0, 0.5], [0.3, -2.0], [-2.0, -1.0], [2.0, 0.0], [0.0, 1.0], [-1.5, 0.0]);

// ---- hyperbolic ----

primitive!(sinh(x) { x.sinh() } at [-2.0], [-0.5], [0.0], [0.8], [3.0]);
primitive!(cosh(x) { x.cosh() } at [-2.0], [-0.5], [0.0], [0.8], [3.0]);
primitive!(tanh(x) { x.tanh() } at [-2.0], [-0.5], [0.0], [0.8], [3.0]);
primitive!(asinh(x) { x.asinh() } at [-3.0], [-0.2], [0.0], [1.0], [5.0]);
primitive!(acosh(x) { x.acosh() } at [1.25], [1.5], [3.0], [10.0]);
primitive!(atanh(x) { x.atanh() } at [-0.8], [-0.3], [0.0], [0.5], [0.8]);

// ---- exponentials and logarithms ----

primitive!(exp(x) { x.exp() } at [-3.0], [-0.5], [0.0], [1.0], [4.0]);
primitive!(exp2(x) { x.exp2() } at [-3.0], [-0.5], [0.0], [1.0], [4.0]);
primitive!(exp_m1(x) { x.exp_m1() } at [-2.0], [-0.01], [0.0], [0.3], [3.0]);
primitive!(ln(x) { x.ln() } at [0.3], [0.5], [1.0], [2.5], [100.0]);
primitive!(log(x, b) { x.log(b) } at
    [2.0, 3.0], [0.5, 10.0], [7.0, 0.3], [1.0, 2.0], [100.0, 2.718281828459045]);
primitive!(log2(x) { x.log2() } at [0.3], [0.5], [1.0], [2.5], [100.0]);
primitive!(log10(x) { x.log10() } at [0.3], [0.5], [1.0], [2.5], [100.0]);
primitive!(ln_1p(x) { x.ln_1p() } at [-0.5], [-0.01], [0.0], [0.3], [4.0]);

// ---- powers and roots ----

primitive!(sqrt(x) { x.sqrt() } at [0.25], [1.0], [2.0], [9.0], [100.0]);
primitive!(cbrt(x) { x.cbrt() } at [-8.0], [-0.5], [0.3], [1.0], [27.0]);
primitive!(powi_literal_3(x) { x.powi(3) } at [-2.0], [-0.5], [0.0], [0.7], [3.0]);
primitive!(powi_literal_neg2(x) { x.powi(-2) } at [-2.0], [-0.5], [0.7], [3.0]);
primitive!(powi_literal_0(x) { x.powi(0) } at [-2.0], [0.0], [3.0]);
primitive!(powi_literal_1(x) { x.powi(1) } at [-2.0], [0.0], [3.0]);
primitive!(powf(x, p) { x.powf(p) } at
    [2.0, 3.0], [0.5, -1.5], [3.0, 0.5], [1.5, 2.2], [4.0, 0.0], [0.7, 1.0]);
primitive!(recip(x) { x.recip() } at [-3.0], [-0.5], [0.4], [2.0]);
// `1.0 / b` takes the rule of `recip` (`b̄ = -ȳ y²`, no division in the backward pass); the
// body has a literal, so these are written out rather than through `primitive!`
#[differentiate]
fn one_over(x: f64) -> f64 {
    1.0 / x
}

#[differentiate]
fn one_over_f32(x: f32) -> f32 {
    1f32 / x
}

// a sigmoid: d/dx = s (1 - s); and a dividend of 2.0, which keeps the rule of `/`
#[differentiate]
fn sigmoid_and_two_over(x: f64, y: f64) -> f64 {
    1.0 / (1.0 + (-x).exp()) + 2.0 / y
}

#[test]
fn division_of_one_takes_the_reciprocal_rule() {
    for x in [-3.0, -0.5, 0.4, 2.0, 1e5] {
        let (value, g) = one_over_grad(x);
        assert_eq!(value.to_bits(), one_over(x).to_bits());
        // d/dx (1 / x) = -1 / x^2
        assert_close("1.0 / x", g, &[-1.0 / (x * x)]);
        assert_gradient("1.0 / x", |v| one_over(v[0]), &[x], g, TOL_F64);
        let (_, g32) = one_over_f32_grad(x as f32);
        assert_gradient(
            "1f32 / x",
            |v| f64::from(one_over_f32(v[0] as f32)),
            &[x],
            g32,
            TOL_F32,
        );
        let (_, (gx, gy)) = sigmoid_and_two_over_grad(x, x + 4.0);
        let s = 1.0 / (1.0 + (-x).exp());
        assert_close(
            "sigmoid + 2.0 / y",
            (gx, gy),
            &[s * (1.0 - s), -2.0 / ((x + 4.0) * (x + 4.0))],
        );
    }
    // IEEE at the pole and at infinity, as `-(ȳ / b) y` gives
    assert_eq!(one_over_grad(0.0).1, f64::NEG_INFINITY);
    assert_eq!(one_over_grad(f64::INFINITY).1, 0.0);
    assert!(one_over_grad(f64::NAN).1.is_nan());
}

primitive!(hypot(a, b) { a.hypot(b) } at
    [3.0, 4.0], [-1.0, 2.0], [0.5, -0.2], [0.0, 1.0], [-2.0, -2.0], [1e3, 1.0]);
// At (0.1, 10, -1) the fused result differs from `x * a + b`, so the bit-for-bit test
// catches a forward pass that splits the multiply-add.
primitive!(mul_add(x, a, b) { x.mul_add(a, b) } at
    [2.0, 3.0, 4.0], [-1.0, 0.5, 2.0], [0.3, -2.0, -1.0], [0.0, 0.0, 0.0], [0.1, 10.0, -1.0]);

#[test]
fn mul_add_point_tells_fused_from_split() {
    let (x, a, b) = (std::hint::black_box(0.1f64), 10.0, -1.0);
    assert_ne!(x.mul_add(a, b), x * a + b);
    let (x, a, b) = (std::hint::black_box(0.1f32), 10.0, -1.0);
    assert_ne!(x.mul_add(a, b), x * a + b);
}

// ---- piecewise ----

primitive!(abs(x) { x.abs() } at [-2.0], [-0.3], [0.5], [3.0]);
// Away from ties.
primitive!(max(a, b) { a.max(b) } at [1.0, 2.0], [3.0, -1.0], [-0.5, -0.7], [2.0, 2.5]);
primitive!(min(a, b) { a.min(b) } at [1.0, 2.0], [3.0, -1.0], [-0.5, -0.7], [2.0, 2.5]);
// Inside, below and above the interval, away from its edges.
primitive!(clamp(x, lo, hi) { x.clamp(lo, hi) } at
    [0.5, 0.0, 1.0], [-2.0, -1.0, 1.0], [3.0, -1.0, 1.0], [0.3, -1.0, 2.0], [-0.4, -0.5, 0.5]);
primitive!(fract(x) { x.fract() } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
// `rem_euclid` is a method of `f64` and `f32` only (not of `Float`), so it is tested apart
// from the `primitive!` cases, which instantiate a generic version too.
#[differentiate]
fn rem_euclid_f64(a: f64, b: f64) -> f64 {
    a.rem_euclid(b)
}

#[differentiate]
fn rem_euclid_f32(a: f32, b: f32) -> f32 {
    a.rem_euclid(b)
}

#[test]
fn rem_euclid_matches_finite_differences_for_both_signs() {
    // away from the jumps, where `a / b` is an integer
    for [a, b] in [
        [7.3, 2.0],
        [-7.3, 2.0],
        [7.3, -2.0],
        [-7.3, -2.0],
        [0.4, 1.5],
    ] {
        let (value, (d_a, d_b)) = rem_euclid_f64_grad(a, b);
        assert_eq!(value, a.rem_euclid(b));
        let error = check_gradient(|v: &[f64]| rem_euclid_f64(v[0], v[1]), &[a, b], &[d_a, d_b]);
        assert!(error < TOL_F64, "at ({a}, {b}): error {error:e}");
        // y = a - b q with q = a.div_euclid(b): the rule's -q, computed independently
        assert_eq!(d_b, -a.div_euclid(b));
        let (_, (d_a32, d_b32)) = rem_euclid_f32_grad(a as f32, b as f32);
        assert_eq!((d_a32, d_b32), (1.0, -(a as f32).div_euclid(b as f32)));
    }
}

// Zero derivative away from the jumps: multiplied by `x`, so that the gradient is the
// (piecewise constant) value itself, and a wrong nonzero rule would add `x · rule`.
primitive!(floor(x) { x.floor() * x } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
primitive!(ceil(x) { x.ceil() * x } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
primitive!(round(x) { x.round() * x } at [-2.3], [-0.6], [0.2], [1.7], [3.4]);
primitive!(trunc(x) { x.trunc() * x } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
primitive!(signum(x) { x.signum() * x } at [-2.0], [-0.5], [0.5], [3.0]);
// The same, added rather than multiplied: gradient 2x.
primitive!(floor_plus(x) { x.floor() + x * x } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
primitive!(ceil_plus(x) { x.ceil() + x * x } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
primitive!(round_plus(x) { x.round() + x * x } at [-2.3], [-0.6], [0.2], [1.7], [3.4]);
primitive!(trunc_plus(x) { x.trunc() + x * x } at [-2.3], [-0.6], [0.4], [1.7], [3.5]);
primitive!(signum_plus(x) { x.signum() + x * x } at [-2.0], [-0.5], [0.5], [3.0]);

// ---- angle conversions ----

primitive!(to_degrees(x) { x.to_degrees() } at [-3.0], [0.0], [1.0], [100.0]);
primitive!(to_radians(x) { x.to_radians() } at [-300.0], [0.0], [1.0], [100.0]);

// ---- the same variable in several arguments: the cotangents add up ----

primitive!(same_add(x) { x + x } at [-1.5], [0.5]);
primitive!(same_sub(x) { x - x } at [-1.5], [0.5]);
primitive!(same_mul(x) { x * x } at [-1.5], [0.5]);
primitive!(same_div(x) { x / x } at [-1.5], [0.5]);
primitive!(same_rem(x) { x % x } at [-1.5], [0.5]);
primitive!(same_atan2(x) { x.atan2(x) } at [-1.5], [0.5]);
primitive!(same_log(x) { x.log(x) } at [0.5], [3.0]);
primitive!(same_powf(x) { x.powf(x) } at [0.5], [3.0]);
primitive!(same_hypot(x) { x.hypot(x) } at [-1.5], [0.5]);
primitive!(same_mul_add(x) { x.mul_add(x, x) } at [-1.5], [0.5]);
primitive!(same_max(x) { x.max(x) } at [-1.5], [0.5]);
primitive!(same_min(x) { x.min(x) } at [-1.5], [0.5]);
primitive!(same_clamp(x) { x.clamp(x, x) } at [-1.5], [0.5]);

// ---- powi with the exponent as a parameter ----

mod powi_parameter {
    use super::*;

    #[differentiate]
    fn of_f64(x: f64, n: i32) -> f64 {
        x.powi(n)
    }

    #[differentiate]
    fn of_f32(x: f32, n: i32) -> f32 {
        x.powi(n)
    }

    #[differentiate]
    fn generic<T: Float>(x: T, n: i32) -> T {
        x.powi(n)
    }

    const POINTS: &[(f64, i32)] = &[
        (-2.0, 3),
        (0.7, 3),
        (1.3, -2),
        (-0.6, -3),
        (2.0, 0),
        (0.0, 0),
        (-1.5, 1),
        (0.0, 1),
        (0.0, 2),
        (1.1, 7),
    ];

    #[test]
    fn gradient_matches_finite_differences() {
        for &(x, n) in POINTS {
            let what = format!("x.powi(n) with n = {n}");
            let (_, g) = of_f64_grad(x, n);
            assert_gradient(
                &format!("f64 {what}"),
                |v| of_f64(v[0], n),
                &[x],
                g,
                TOL_F64,
            );
            let (_, g) = of_f32_grad(x as f32, n);
            let f = |v: &[f64]| f64::from(of_f32(v[0] as f32, n));
            assert_gradient(&format!("f32 {what}"), f, &[x], g, TOL_F32);
            let (_, g) = generic_grad::<f64>(x, n);
            let f = |v: &[f64]| generic::<f64>(v[0], n);
            assert_gradient(&format!("generic::<f64> {what}"), f, &[x], g, TOL_F64);
            let (_, g) = generic_grad::<f32>(x as f32, n);
            let f = |v: &[f64]| f64::from(generic::<f32>(v[0] as f32, n));
            assert_gradient(&format!("generic::<f32> {what}"), f, &[x], g, TOL_F32);
        }
    }

    #[test]
    fn exact_derivative_including_zero() {
        // d/dx x^n = n x^(n-1); x^0 is the constant 1, even at x = 0.
        assert_eq!(of_f64_grad(0.0, 0), (1.0, 0.0));
        assert_eq!(of_f64_grad(0.0, 1), (0.0, 1.0));
        assert_eq!(of_f64_grad(2.0, 3), (8.0, 12.0));
        assert_eq!(of_f32_grad(2.0, 3), (8.0, 12.0));
        assert_eq!(generic_grad::<f64>(0.0, 0), (1.0, 0.0));
    }

    #[test]
    fn forward_pass_keeps_the_value_bit_for_bit() {
        for &(x, n) in POINTS {
            let y = of_f64(x, n);
            assert_eq!(
                of_f64_pullback(x, n).0.to_bits(),
                y.to_bits(),
                "f64 {x}.powi({n})"
            );
            let y = of_f32(x as f32, n);
            assert_eq!(
                of_f32_pullback(x as f32, n).0.to_bits(),
                y.to_bits(),
                "f32 {x}.powi({n})"
            );
            let y = generic::<f64>(x, n);
            let (y_pb, _) = generic_pullback::<f64>(x, n);
            assert_eq!(y_pb.to_bits(), y.to_bits(), "generic {x}.powi({n})");
        }
    }
}

// ---- constant (literal) arguments: no cotangent for them, the right one for the others ----

mod constant_arguments {
    use super::*;

    #[differentiate]
    fn of_f64(x: f64, y: f64) -> f64 {
        x.powf(2.5)
            + 2.0_f64.powf(y)
            + x.atan2(2.0)
            + 3.0_f64.atan2(y)
            + x.max(0.5)
            + f64::min(1.0, y)
            + x.hypot(1.5)
            + 0.5_f64.hypot(y)
            + x.mul_add(2.0, y)
            + 1.5_f64.mul_add(x, 0.25)
            + x.clamp(-1.0, 1.0)
            + 0.25_f64.clamp(x, 4.0)
            + y.log(10.0)
            + 10.0_f64.log(x)
            + x % 2.0
            + 7.0 % x
            + 1.0 / x
            - (2.0 - y) * 3.0
            + x.powi(2)
    }

    #[differentiate]
    fn of_f32(x: f32, y: f32) -> f32 {
        x.powf(2.5)
            + 2.0_f32.powf(y)
            + x.atan2(2.0)
            + 3.0_f32.atan2(y)
            + x.max(0.5)
            + f32::min(1.0, y)
            + x.hypot(1.5)
            + 0.5_f32.hypot(y)
            + x.mul_add(2.0, y)
            + 1.5_f32.mul_add(x, 0.25)
            + x.clamp(-1.0, 1.0)
            + 0.25_f32.clamp(x, 4.0)
            + y.log(10.0)
            + 10.0_f32.log(x)
            + x % 2.0
            + 7.0 % x
            + 1.0 / x
            - (2.0 - y) * 3.0
            + x.powi(2)
    }

    #[differentiate]
    fn generic<T: Float>(x: T, y: T) -> T {
        x.powf(T::from(2.5).unwrap())
            + T::from(2.0).unwrap().powf(y)
            + x.atan2(T::from(2.0).unwrap())
            + T::from(3.0).unwrap().atan2(y)
            + x.max(T::from(0.5).unwrap())
            + T::min(T::one(), y)
            + x.hypot(T::from(1.5).unwrap())
            + T::from(0.5).unwrap().hypot(y)
            + x.mul_add(T::from(2.0).unwrap(), y)
            + T::from(1.5).unwrap().mul_add(x, T::from(0.25).unwrap())
            + x.clamp(-T::one(), T::one())
            + T::from(0.25).unwrap().clamp(x, T::from(4.0).unwrap())
            + y.log(T::from(10.0).unwrap())
            + T::from(10.0).unwrap().log(x)
            + x % T::from(2.0).unwrap()
            + T::from(7.0).unwrap() % x
            + T::one() / x
            - (T::from(2.0).unwrap() - y) * T::from(3.0).unwrap()
            + x.powi(2)
    }

    // Away from every kink and jump: x ≠ 0.5, 1, 2, 7 / k; y ≠ 1.
    const POINTS: &[[f64; 2]] = &[[0.3, 0.7], [2.2, 1.6], [3.3, 2.5], [0.8, 0.4]];

    #[test]
    fn gradient_matches_finite_differences() {
        for &[x, y] in POINTS {
            let p = [x, y];
            let (v, g) = of_f64_grad(x, y);
            assert_eq!(v.to_bits(), of_f64(x, y).to_bits());
            assert_gradient("f64 constants", |v| of_f64(v[0], v[1]), &p, g, TOL_F64);

            let (v, g) = of_f32_grad(x as f32, y as f32);
            assert_eq!(v.to_bits(), of_f32(x as f32, y as f32).to_bits());
            let f = |v: &[f64]| f64::from(of_f32(v[0] as f32, v[1] as f32));
            assert_gradient("f32 constants", f, &p, g, TOL_F32);

            let (v, g) = generic_grad::<f64>(x, y);
            assert_eq!(v.to_bits(), generic::<f64>(x, y).to_bits());
            let f = |v: &[f64]| generic::<f64>(v[0], v[1]);
            assert_gradient("generic::<f64> constants", f, &p, g, TOL_F64);
            // Same function, written with literals.
            assert_gradient(
                "generic::<f64> vs f64",
                |v| of_f64(v[0], v[1]),
                &p,
                g,
                TOL_F64,
            );

            let (_, g) = generic_grad::<f32>(x as f32, y as f32);
            let f = |v: &[f64]| f64::from(generic::<f32>(v[0] as f32, v[1] as f32));
            assert_gradient("generic::<f32> constants", f, &p, g, TOL_F32);
        }
    }
}

// ---- the path call forms ----

mod call_forms {
    use super::*;

    #[differentiate]
    fn inherent_f64(x: f64, y: f64, z: f64) -> f64 {
        f64::sin(x) + f64::atan2(x, y) + f64::powf(y, z) + f64::max(x, z) + f64::mul_add(x, y, z)
    }

    #[differentiate]
    fn inherent_f32(x: f32, y: f32, z: f32) -> f32 {
        f32::sin(x) + f32::atan2(x, y) + f32::powf(y, z) + f32::max(x, z) + f32::mul_add(x, y, z)
    }

    #[differentiate]
    fn trait_f64(x: f64, y: f64, z: f64) -> f64 {
        Float::sin(x)
            + Float::atan2(x, y)
            + Float::powf(y, z)
            + Float::max(x, z)
            + Float::mul_add(x, y, z)
    }

    #[differentiate]
    fn trait_generic<T: Float>(x: T, y: T, z: T) -> T {
        Float::sin(x)
            + Float::atan2(x, y)
            + Float::powf(y, z)
            + Float::max(x, z)
            + Float::mul_add(x, y, z)
    }

    #[differentiate]
    fn type_param<T: Float>(x: T, y: T, z: T) -> T {
        T::sin(x) + T::atan2(x, y) + T::powf(y, z) + T::max(x, z) + T::mul_add(x, y, z)
    }

    #[differentiate]
    fn more_f64(x: f64, y: f64) -> f64 {
        f64::exp(x) * f64::hypot(x, y) - f64::abs(y) + f64::powi(x, 3) + f64::clamp(y, x, 4.0)
    }

    #[differentiate]
    fn more_generic<T: Float>(x: T, y: T) -> T {
        T::exp(x) * T::hypot(x, y) - Float::abs(y) + T::powi(x, 3) + Float::ln(T::sqrt(y))
    }

    /// The same function in method syntax, as the reference value.
    fn methods(x: f64, y: f64, z: f64) -> f64 {
        x.sin() + x.atan2(y) + y.powf(z) + x.max(z) + x.mul_add(y, z)
    }

    const POINTS: &[[f64; 3]] = &[[0.5, 2.0, 1.5], [-1.0, 0.7, 0.3], [2.0, 1.5, -0.5]];

    #[test]
    fn path_calls_differentiate_like_methods() {
        for &[x, y, z] in POINTS {
            let p = [x, y, z];
            let reference = |v: &[f64]| methods(v[0], v[1], v[2]);
            let (v, g) = inherent_f64_grad(x, y, z);
            assert_eq!(v.to_bits(), methods(x, y, z).to_bits());
            assert_eq!(v.to_bits(), inherent_f64(x, y, z).to_bits());
            assert_gradient("f64::name(..)", reference, &p, g, TOL_F64);
            let (v, g) = trait_f64_grad(x, y, z);
            assert_eq!(v.to_bits(), trait_f64(x, y, z).to_bits());
            assert_gradient("Float::name(..) on f64", reference, &p, g, TOL_F64);
            let (v, g) = trait_generic_grad::<f64>(x, y, z);
            assert_eq!(v.to_bits(), trait_generic(x, y, z).to_bits());
            assert_gradient("Float::name(..) on T", reference, &p, g, TOL_F64);
            let (v, g) = type_param_grad::<f64>(x, y, z);
            assert_eq!(v.to_bits(), type_param(x, y, z).to_bits());
            assert_gradient("T::name(..)", reference, &p, g, TOL_F64);

            let (x32, y32, z32) = (x as f32, y as f32, z as f32);
            let reference =
                |v: &[f64]| f64::from(inherent_f32(v[0] as f32, v[1] as f32, v[2] as f32));
            let (_, g) = inherent_f32_grad(x32, y32, z32);
            assert_gradient("f32::name(..)", reference, &p, g, TOL_F32);
            let (v, g) = type_param_grad::<f32>(x32, y32, z32);
            assert_eq!(v.to_bits(), type_param(x32, y32, z32).to_bits());
            assert_gradient("T::name(..) at f32", reference, &p, g, TOL_F32);
        }
    }

    #[test]
    fn more_path_calls() {
        for (x, y) in [(0.5, 2.0), (-1.0, 0.7), (1.5, -3.0), (0.3, 5.0)] {
            let (v, g) = more_f64_grad(x, y);
            assert_eq!(v.to_bits(), more_f64(x, y).to_bits());
            assert_gradient("more_f64", |v| more_f64(v[0], v[1]), &[x, y], g, TOL_F64);
        }
        for (x, y) in [(0.5, 2.0), (-1.0, 0.7), (0.3, 5.0)] {
            let (v, g) = more_generic_grad::<f64>(x, y);
            assert_eq!(v.to_bits(), more_generic(x, y).to_bits());
            let f = |v: &[f64]| more_generic(v[0], v[1]);
            assert_gradient("more_generic", f, &[x, y], g, TOL_F64);
        }
    }
}

// ---- conventions at non-differentiable points ----

mod conventions {
    use super::*;

    #[differentiate]
    fn abs_f64(x: f64) -> f64 {
        x.abs()
    }

    #[differentiate]
    fn abs_f32(x: f32) -> f32 {
        x.abs()
    }

    #[differentiate]
    fn abs_generic<T: Float>(x: T) -> T {
        x.abs()
    }

    #[test]
    fn abs_has_zero_derivative_at_zero() {
        assert_eq!(abs_f64_grad(0.0), (0.0, 0.0));
        assert_eq!(abs_f64_grad(-0.0).1, 0.0);
        assert_eq!(abs_f32_grad(0.0), (0.0, 0.0));
        assert_eq!(abs_f32_grad(-0.0).1, 0.0);
        assert_eq!(abs_generic_grad(0.0f64), (0.0, 0.0));
        assert_eq!(abs_generic_grad(0.0f32), (0.0, 0.0));
        assert_eq!(abs_f64_grad(-3.0), (3.0, -1.0));
        assert_eq!(abs_f64_grad(3.0), (3.0, 1.0));
        assert_eq!(abs_f64(-0.0).to_bits(), abs_f64_grad(-0.0).0.to_bits());
        assert_eq!(abs_f32(-0.0).to_bits(), abs_f32_grad(-0.0).0.to_bits());
        assert_eq!(
            abs_generic(-0.0f64).to_bits(),
            abs_generic_grad(-0.0f64).0.to_bits()
        );
    }

    #[differentiate]
    fn max_f64(a: f64, b: f64) -> f64 {
        a.max(b)
    }

    #[differentiate]
    fn min_f64(a: f64, b: f64) -> f64 {
        a.min(b)
    }

    #[differentiate]
    fn max_f32(a: f32, b: f32) -> f32 {
        a.max(b)
    }

    #[differentiate]
    fn min_generic<T: Float>(a: T, b: T) -> T {
        a.min(b)
    }

    #[differentiate]
    fn max_of_self(x: f64) -> f64 {
        x.max(x)
    }

    #[test]
    fn max_and_min_split_a_tie_evenly() {
        assert_eq!(max_f64_grad(1.5, 1.5), (1.5, (0.5, 0.5)));
        assert_eq!(min_f64_grad(-2.0, -2.0), (-2.0, (0.5, 0.5)));
        assert_eq!(max_f32_grad(0.0, 0.0), (0.0, (0.5, 0.5)));
        assert_eq!(min_generic_grad(3.0f64, 3.0), (3.0, (0.5, 0.5)));
        assert_eq!(min_generic_grad(3.0f32, 3.0), (3.0, (0.5, 0.5)));
        let (_, pullback) = max_f64_pullback(1.0, 1.0);
        assert_eq!(pullback.backward(4.0), (2.0, 2.0));
        // The shares add up: max(x, x) = x has derivative 1.
        assert_eq!(max_of_self_grad(0.7), (0.7, 1.0));
        // Away from a tie, all of the cotangent goes to the selected argument.
        assert_eq!(max_f64_grad(1.0, 2.0).1, (0.0, 1.0));
        assert_eq!(min_f64_grad(1.0, 2.0).1, (1.0, 0.0));
        // The values are those of the original functions.
        assert_eq!(max_f64(1.5, 1.5), 1.5);
        assert_eq!(min_f64(-2.0, -2.0), -2.0);
        assert_eq!(max_f32(0.0, 0.0), 0.0);
        assert_eq!(min_generic(3.0f64, 3.0), 3.0);
        assert_eq!(max_of_self(0.7), 0.7);
        // A NaN argument is ignored by max and min, and gets no cotangent.
        assert_eq!(max_f64_grad(f64::NAN, 2.0), (2.0, (0.0, 1.0)));
        assert_eq!(min_f64_grad(2.0, f64::NAN), (2.0, (1.0, 0.0)));
    }

    #[differentiate]
    fn clamp_f64(x: f64, lo: f64, hi: f64) -> f64 {
        x.clamp(lo, hi)
    }

    #[differentiate]
    fn clamp_f32(x: f32, lo: f32, hi: f32) -> f32 {
        x.clamp(lo, hi)
    }

    #[differentiate]
    fn clamp_generic<T: Float>(x: T, lo: T, hi: T) -> T {
        x.clamp(lo, hi)
    }

    #[test]
    fn clamp_passes_the_gradient_to_x_on_the_closed_interval() {
        // At the edges and inside: all to x.
        assert_eq!(clamp_f64_grad(0.0, 0.0, 1.0), (0.0, (1.0, 0.0, 0.0)));
        assert_eq!(clamp_f64_grad(1.0, 0.0, 1.0), (1.0, (1.0, 0.0, 0.0)));
        assert_eq!(clamp_f64_grad(0.5, 0.0, 1.0), (0.5, (1.0, 0.0, 0.0)));
        assert_eq!(clamp_f64_grad(2.0, 2.0, 2.0), (2.0, (1.0, 0.0, 0.0)));
        assert_eq!(clamp_f32_grad(0.0, 0.0, 1.0), (0.0, (1.0, 0.0, 0.0)));
        assert_eq!(clamp_f32_grad(1.0, 0.0, 1.0), (1.0, (1.0, 0.0, 0.0)));
        assert_eq!(
            clamp_generic_grad(-1.0f64, -1.0, 1.0),
            (-1.0, (1.0, 0.0, 0.0))
        );
        assert_eq!(
            clamp_generic_grad(1.0f32, -1.0, 1.0),
            (1.0, (1.0, 0.0, 0.0))
        );
        // Outside: all to the bound that is returned.
        assert_eq!(clamp_f64_grad(-3.0, 0.0, 1.0), (0.0, (0.0, 1.0, 0.0)));
        assert_eq!(clamp_f64_grad(3.0, 0.0, 1.0), (1.0, (0.0, 0.0, 1.0)));
        assert_eq!(clamp_f64(1.0, 0.0, 1.0), 1.0);
        assert_eq!(clamp_f32(0.0, 0.0, 1.0), 0.0);
        assert_eq!(clamp_generic(1.0f64, 0.0, 1.0), 1.0);
    }

    #[differentiate]
    fn hypot_f64(a: f64, b: f64) -> f64 {
        a.hypot(b)
    }

    #[differentiate]
    fn hypot_f32(a: f32, b: f32) -> f32 {
        a.hypot(b)
    }

    #[differentiate]
    fn hypot_generic<T: Float>(a: T, b: T) -> T {
        a.hypot(b)
    }

    #[test]
    fn hypot_has_zero_gradient_at_the_origin() {
        assert_eq!(hypot_f64_grad(0.0, 0.0), (0.0, (0.0, 0.0)));
        assert_eq!(hypot_f32_grad(0.0, 0.0), (0.0, (0.0, 0.0)));
        assert_eq!(hypot_generic_grad(0.0f64, 0.0), (0.0, (0.0, 0.0)));
        assert_eq!(hypot_generic_grad(0.0f32, 0.0), (0.0, (0.0, 0.0)));
        assert_eq!(hypot_f64_grad(-0.0, 0.0).1, (0.0, 0.0));
        assert_eq!(hypot_f64(0.0, 0.0), 0.0);
        assert_eq!(hypot_f32(0.0, 0.0), 0.0);
        assert_eq!(hypot_generic(0.0f64, 0.0), 0.0);
        // Close to the origin it is still the unit vector a / |a|.
        assert_close(
            "hypot near 0",
            hypot_f64_grad(3e-200, -4e-200).1,
            &[0.6, -0.8],
        );
    }
}

// ---- a body passed as an `expr` fragment (an invisible group in the token stream) ----

macro_rules! expr_fragment {
    ($name:ident($x:ident, $y:ident) = $body:expr) => {
        #[differentiate]
        fn $name($x: f64, $y: f64) -> f64 {
            $body
        }
    };
}

expr_fragment!(fragment(x, y) = x.sin() * y + (x - y).exp());

#[test]
fn expr_fragment_body() {
    for (x, y) in [(0.3, 1.2), (-1.0, 0.5)] {
        let (v, g) = fragment_grad(x, y);
        assert_eq!(v.to_bits(), fragment(x, y).to_bits());
        assert_gradient(
            "expr fragment",
            |v| fragment(v[0], v[1]),
            &[x, y],
            g,
            TOL_F64,
        );
    }
}

// ---- primitives in other syntactic positions ----

mod syntactic_positions {
    use super::*;

    #[differentiate]
    fn of_f64(x: f64, y: f64, n: i32) -> f64 {
        let a = (-x).exp() + (x * y).sin() + x.sin().cos().exp() - x.abs().max(y);
        let b = x.powi(n + 1) + y.powi(2 * n) + x.powf(n as f64) + -y.abs();
        let c = 0.0_f64.max(x) + std::f64::consts::PI * y + (x / y).atan2(y - x).tanh();
        let d = -1.0 / x + 3.0 * y.sqrt() + f64::EPSILON;
        a * b - c / d
    }

    #[differentiate]
    fn generic<T: Float>(x: T, y: T, n: i32) -> T {
        let a = (-x).exp() + (x * y).sin() + x.sin().cos().exp() - x.abs().max(y);
        let b = x.powi(n + 1) + y.powi(2 * n) + x.powf(T::from(n).unwrap()) + -y.abs();
        let c = T::zero().max(x)
            + T::from(std::f64::consts::PI).unwrap() * y
            + (x / y).atan2(y - x).tanh();
        let d = -T::one() / x + T::from(3).unwrap() * y.sqrt() + T::epsilon();
        a * b - c / d
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for (x, y, n) in [(0.7, 1.3, 2), (-0.4, 2.0, 1), (1.6, 0.5, 3)] {
            let p = [x, y];
            let (v, g) = of_f64_grad(x, y, n);
            assert_eq!(v.to_bits(), of_f64(x, y, n).to_bits());
            assert_gradient("f64", |v| of_f64(v[0], v[1], n), &p, g, TOL_F64);
            let (v, g) = generic_grad::<f64>(x, y, n);
            assert_eq!(v.to_bits(), generic(x, y, n).to_bits());
            assert_gradient("generic", |v| generic(v[0], v[1], n), &p, g, TOL_F64);
        }
    }
}

// ---- forward over reverse at a special case of a rule ----

#[differentiate]
fn powf_generic<T: Float>(x: T, p: T) -> T {
    x.powf(p)
}

/// `∂/∂x x^p = p x^(p-1)` is 0 at `p = 0`, but its derivative along `p` is `1/x`, not 0:
/// a rule that returns a constant 0 there loses that tangent under `T = Dual<f64>`.
#[test]
fn powf_mixed_second_derivative_at_zero_exponent() {
    let (_, (dx, dp)) = powf_generic_grad(Dual::constant(4.0), Dual::variable(0.0));
    // ∂²(x^p)/∂p∂x = x^(p-1) (1 + p ln x) = 1/4 at (4, 0)
    assert_eq!(dx.re, 0.0);
    assert!(
        (dx.eps - 0.25).abs() < 1e-15,
        "∂²/∂p∂x = {}, expected 0.25",
        dx.eps
    );
    // ∂²(x^p)/∂p² = x^p (ln x)² = (ln 4)² at (4, 0)
    assert!((dp.eps - 4f64.ln().powi(2)).abs() < 1e-14, "{}", dp.eps);
}

// `sin_cos` as a method and by path, generic: f = sin x cos x + sin(y sin x) cos(y sin x)
#[differentiate]
fn pair_of_sin_cos<T: Float>(x: T, y: T) -> T {
    let (s, c) = x.sin_cos();
    let (s2, c2) = T::sin_cos(y * s);
    s * c + s2 * c2
}

#[test]
fn sin_cos_gives_both_derivatives() {
    for (x, y) in [(0.7f64, 1.3f64), (-2.1, 0.4)] {
        let (value, (dx, dy)) = pair_of_sin_cos_grad(x, y);
        assert_eq!(value.to_bits(), pair_of_sin_cos(x, y).to_bits());
        // with u = y sin x: f = sin(2x)/2 + sin(2u)/2, df/dx = cos 2x + cos 2u · y cos x,
        // df/dy = cos 2u · sin x
        let u = y * f64::sin(x);
        let ex = f64::cos(2.0 * x) + f64::cos(2.0 * u) * y * f64::cos(x);
        let ey = f64::cos(2.0 * u) * f64::sin(x);
        assert!(relative_error(dx, ex) < 1e-12, "{dx} vs {ex}");
        assert!(relative_error(dy, ey) < 1e-12, "{dy} vs {ey}");
    }
    let (_, (dx32, _)) = pair_of_sin_cos_grad(0.7f32, 1.3f32);
    let (_, (dx64, _)) = pair_of_sin_cos_grad(0.7f64, 1.3f64);
    assert!((dx32 as f64 - dx64).abs() < 1e-5);
}
