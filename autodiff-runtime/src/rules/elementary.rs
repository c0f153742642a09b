//! Rules for the elementary float methods (`sin`, `exp`, `powf`, `max`, ...).
//!
//! The receiver of a method is argument 0: `x.powf(p)` has `powf_d0` for `x` and
//! `powf_d1` for `p`.
//!
//! `floor`, `ceil`, `round`, `trunc` and `signum` have no rules: their derivative is zero
//! wherever it exists, so their results are treated as constants.

use core::f64::consts::{LN_10, LN_2, PI};
use num_traits::Float;

/// An `f64` constant in `T`; the conversion folds away for `f32` and `f64`.
#[inline]
fn constant<T: Float>(value: f64) -> T {
    T::from(value).unwrap()
}

/// `sign(x)` with `sign(±0) = 0`: the zero subgradient at the kink of `|x|`, as PyTorch
/// uses. NaN stays NaN so that a NaN input is not silently given a gradient.
#[inline]
fn sign<T: Float>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else if x == T::zero() {
        T::zero()
    } else {
        x
    }
}

/// The share of `d` that `this` receives from `max(this, other)`.
///
/// `f64::max` returns the non-NaN argument when exactly one is NaN, so that argument takes
/// all of `d`; a tie (or two NaNs) splits it evenly, which keeps the sum of the shares
/// equal to `d` and makes `max(x, x)` have derivative 1.
#[inline]
fn larger_share<T: Float>(this: T, other: T, d: T) -> T {
    if this > other || (other.is_nan() && !this.is_nan()) {
        d
    } else if this < other || (this.is_nan() && !other.is_nan()) {
        T::zero()
    } else {
        d / constant(2.0)
    }
}

scalar_rules! {
    cotangent d;

    /// `y = sin x`: `x̄ = ȳ cos x`.
    sin_d0(x) = d * x.cos();
    /// `y = cos x`: `x̄ = -ȳ sin x`.
    cos_d0(x) = -d * x.sin();
    /// `y = sin x` where the function also computes `c = cos x`: `x̄ = ȳ c`, read rather than
    /// computed again.
    sin_d0_with_cos(c) = d * c;
    /// `y = cos x` where the function also computes `s = sin x`: `x̄ = -ȳ s`.
    cos_d0_with_sin(s) = -d * s;
    /// `y = tan x`: `x̄ = ȳ (1 + y²)`.
    tan_d0(y) = d * (T::one() + y * y);
    /// `y = asin x`: `x̄ = ȳ / √(1 - x²)`.
    asin_d0(x) = d / ((T::one() - x) * (T::one() + x)).sqrt();
    /// `y = acos x`: `x̄ = -ȳ / √(1 - x²)`.
    acos_d0(x) = -d / ((T::one() - x) * (T::one() + x)).sqrt();
    /// `y = atan x`: `x̄ = ȳ / (1 + x²)`.
    atan_d0(x) = d / (T::one() + x * x);
    /// `y = a.atan2(b)`: `ā = ȳ b / (a² + b²)`, and `0` at the origin.
    ///
    /// `atan2` has no derivative at `a = b = 0`; returning 0 there (rather than NaN) keeps a
    /// point sitting exactly at the origin from poisoning the whole gradient.
    atan2_d0(a, b) = {
        // (b / r) / r rather than b / r² so that a² + b² cannot overflow or underflow.
        let r = a.hypot(b);
        if r == T::zero() { T::zero() } else { d * (b / r) / r }
    };
    /// `y = a.atan2(b)`: `b̄ = -ȳ a / (a² + b²)`, and `0` at the origin (see [`atan2_d0`]).
    atan2_d1(a, b) = {
        let r = a.hypot(b);
        if r == T::zero() { T::zero() } else { -d * (a / r) / r }
    };
    /// `y = sinh x`: `x̄ = ȳ cosh x`.
    sinh_d0(x) = d * x.cosh();
    /// `y = cosh x`: `x̄ = ȳ sinh x`.
    cosh_d0(x) = d * x.sinh();
    /// `y = tanh x`: `x̄ = ȳ (1 - y²)`.
    tanh_d0(y) = d * ((T::one() - y) * (T::one() + y));
    /// `y = asinh x`: `x̄ = ȳ / √(x² + 1)`.
    asinh_d0(x) = d / x.hypot(T::one());
    /// `y = acosh x`: `x̄ = ȳ / √(x² - 1)`.
    acosh_d0(x) = d / ((x - T::one()) * (x + T::one())).sqrt();
    /// `y = atanh x`: `x̄ = ȳ / (1 - x²)`.
    atanh_d0(x) = d / ((T::one() - x) * (T::one() + x));
    /// `y = exp x`: `x̄ = ȳ y`.
    exp_d0(y) = d * y;
    /// `y = 2^x`: `x̄ = ȳ y ln 2`.
    exp2_d0(y) = d * y * constant(LN_2);
    /// `y = eˣ - 1`: `x̄ = ȳ (y + 1)`.
    exp_m1_d0(y) = d * (y + T::one());
    /// `y = ln x`: `x̄ = ȳ / x`.
    ln_d0(x) = d / x;
    /// `y = x.log(b) = ln x / ln b`: `x̄ = ȳ / (x ln b)`.
    log_d0(x, b) = d / (x * b.ln());
    /// `y = x.log(b) = ln x / ln b`: `b̄ = -ȳ ln x / (b (ln b)²)`.
    log_d1(x, b) = {
        let ln_b = b.ln();
        -d * x.ln() / (b * ln_b * ln_b)
    };
    /// `y = log₂ x`: `x̄ = ȳ / (x ln 2)`.
    log2_d0(x) = d / (x * constant(LN_2));
    /// `y = log₁₀ x`: `x̄ = ȳ / (x ln 10)`.
    log10_d0(x) = d / (x * constant(LN_10));
    /// `y = ln(1 + x)`: `x̄ = ȳ / (1 + x)`.
    ln_1p_d0(x) = d / (T::one() + x);
    /// `y = √x`: `x̄ = ȳ / (2y)`; infinite at `x = 0`, as IEEE division gives.
    sqrt_d0(y) = d / (constant::<T>(2.0) * y);
    /// `y = ∛x`: `x̄ = ȳ / (3y²)`.
    cbrt_d0(y) = d / (constant::<T>(3.0) * y * y);
    /// `y = x.powf(p)`: `x̄ = ȳ p x^(p-1)`.
    ///
    /// Evaluating `x^(p-1)` directly (rather than `p y / x`) gives the right limits at
    /// `x = 0`: `ȳ` for `p = 1`, `0` for `p > 1` and `±∞` for `p < 1`. At `p = 0, x = 0`
    /// the function is the constant 1, so the result is `0` (not `0 · ∞ = NaN`); elsewhere
    /// the general formula already gives 0 for `p = 0` and keeps the derivative with respect
    /// to `p` when `T` is a dual number.
    powf_d0(x, p) = if p == T::zero() && x == T::zero() {
        T::zero()
    } else {
        d * p * x.powf(p - T::one())
    };
    /// `y = x.powf(p)`: `p̄ = ȳ y ln x`, and `0` where `y = 0`.
    ///
    /// At `x = 0` (`y = 0` for `p > 0`) the limit of `y ln x` is 0, which the product
    /// `0 · (-∞)` would turn into NaN.
    powf_d1(x, y) = if y == T::zero() { T::zero() } else { d * y * x.ln() };
    /// `y = 1 / x`: `x̄ = -ȳ y²`.
    recip_d0(y) = -(d * y * y);
    /// `y = |x|`: `x̄ = ȳ sign(x)`, with `sign(0) = 0` (the zero subgradient at the kink,
    /// as PyTorch does) and NaN for a NaN `x`.
    abs_d0(x) = d * sign(x);
    /// `y = a.hypot(b) = √(a² + b²)`: `ā = ȳ a / y`, and `0` at the origin, where the cone
    /// has no derivative and 0 is the minimum-norm subgradient.
    hypot_d0(a, y) = if y == T::zero() { T::zero() } else { d * a / y };
    /// `y = a.hypot(b) = √(a² + b²)`: `b̄ = ȳ b / y`, and `0` at the origin (see
    /// [`hypot_d0`]).
    hypot_d1(b, y) = if y == T::zero() { T::zero() } else { d * b / y };
    /// `y = x.mul_add(a, b) = x a + b`: `x̄ = ȳ a`.
    mul_add_d0(a) = d * a;
    /// `y = x.mul_add(a, b) = x a + b`: `ā = ȳ x`.
    mul_add_d1(x) = d * x;
    /// `y = x.mul_add(a, b) = x a + b`: `b̄ = ȳ`.
    mul_add_d2() = d;
    /// `y = a.max(b)`: `ā = ȳ` if `a > b`, `0` if `a < b`.
    ///
    /// At a tie the cotangent is split evenly (`ȳ / 2` to each argument). When one argument
    /// is NaN, `max` returns the other one, which then receives all of `ȳ`; two NaNs count
    /// as a tie.
    max_d0(a, b) = larger_share(a, b, d);
    /// `y = a.max(b)`: `b̄ = ȳ` if `b > a`, `0` if `b < a`; ties and NaNs as in [`max_d0`].
    max_d1(a, b) = larger_share(b, a, d);
    /// `y = a.min(b)`: `ā = ȳ` if `a < b`, `0` if `a > b`.
    ///
    /// At a tie the cotangent is split evenly (`ȳ / 2` each). When one argument is NaN,
    /// `min` returns the other one, which then receives all of `ȳ`; two NaNs count as a tie.
    // min(a, b) = -max(-a, -b), and negation keeps NaNs NaN and ties tied.
    min_d0(a, b) = larger_share(-a, -b, d);
    /// `y = a.min(b)`: `b̄ = ȳ` if `b < a`, `0` if `b > a`; ties and NaNs as in [`min_d0`].
    min_d1(a, b) = larger_share(-b, -a, d);
    /// `y = x.clamp(lo, hi)`: `x̄ = ȳ` if `lo ≤ x ≤ hi`, else `0`.
    ///
    /// At the edges `x = lo` and `x = hi` the cotangent goes to `x`, not to the bound.
    clamp_d0(x, lo, hi) = if lo <= x && x <= hi { d } else { T::zero() };
    /// `y = x.clamp(lo, hi)`: `lō = ȳ` if `x < lo`, else `0` (see [`clamp_d0`] for the edge).
    clamp_d1(x, lo) = if x < lo { d } else { T::zero() };
    /// `y = x.clamp(lo, hi)`: `hī = ȳ` if `x > hi`, else `0` (see [`clamp_d0`] for the edge).
    clamp_d2(x, hi) = if x > hi { d } else { T::zero() };
    /// `y = x.fract() = x - trunc(x)`: `x̄ = ȳ`, since `trunc` is locally constant.
    fract_d0() = d;
    /// `y = x.to_degrees() = x · 180/π`: `x̄ = ȳ · 180/π`.
    to_degrees_d0() = d * constant(180.0 / PI);
    /// `y = x.to_radians() = x · π/180`: `x̄ = ȳ · π/180`.
    to_radians_d0() = d * constant(PI / 180.0);
}

/// `y = x.powi(n)`: `x̄ = ȳ n x^(n-1)`, and exactly `0` for `n = 0` (where `y = 1` is
/// constant, even at `x = 0`).
///
/// ```
/// use autodiff_runtime::rules::powi_d0;
///
/// // y = x³ at x = 2: ∂y/∂x = 3 · 2² = 12.
/// assert_eq!(powi_d0(&2.0_f64, &3, 1.0), 12.0);
/// assert_eq!(powi_d0(&0.0_f64, &0, 1.0), 0.0);
/// ```
#[inline]
pub fn powi_d0<T: Float>(x: &T, n: &i32, d: T) -> T {
    let (x, n) = (*x, *n);
    if n == 0 {
        return T::zero();
    }
    // n - 1 overflows only for n = i32::MIN, where x^(n-1) = x^n / x still holds.
    let x_n_minus_1 = match n.checked_sub(1) {
        Some(m) => x.powi(m),
        None => x.powi(n) / x,
    };
    d * constant::<T>(f64::from(n)) * x_n_minus_1
}
