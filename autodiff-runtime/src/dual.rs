//! Forward-mode dual numbers, for directional derivatives and for checking reverse mode.

use core::cmp::Ordering;
use core::fmt;
use core::iter::{Product, Sum};
use core::num::FpCategory;
use core::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};

use num_traits::{Float, FloatConst, Num, NumCast, One, ToPrimitive, Zero};

use crate::rules;

/// A dual number `re + eps·ε` with `ε² = 0`: a value and its tangent.
///
/// Evaluating `f` at `Dual::variable(x)` gives `f(x)` in `re` and `f'(x)` in `eps`; more
/// generally, seeding `eps` with a direction `v` gives the directional derivative `f'(x)·v`.
/// `Dual<T>` implements [`Float`], so any code generic over `Float` runs on it unchanged,
/// and since `Dual<T>` is itself a `Float`, nesting it gives higher derivatives.
///
/// It also implements nalgebra's `RealField` (for `T` = `f32`, `f64` or a `Dual` of them, see
/// [`DualBase`](crate::DualBase)), so nalgebra code generic over `T: RealField` runs on it:
/// vectors and matrices of duals carry tangents through products, norms, decompositions and
/// solves.
///
/// Comparisons (`==`, `<`, ...) and predicates (`is_nan`, `is_zero`, ...) look at `re`
/// only, so that code branches exactly as it would on plain floats. A zero tangent stays
/// exactly zero through every operation, even where the derivative is infinite or
/// undefined (`sqrt` at 0, `powf` with a negative base), so constants never turn into NaN.
///
/// ```
/// use autodiff_runtime::Dual;
/// use autodiff_runtime::num_traits::Float;
///
/// // d/dx (x sin x) = sin x + x cos x
/// let x = Dual::variable(2.0_f64);
/// let y = x * x.sin();
/// assert_eq!(y.re, 2.0 * 2.0_f64.sin());
/// assert!((y.eps - (2.0_f64.sin() + 2.0 * 2.0_f64.cos())).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Dual<T> {
    /// The value.
    pub re: T,
    /// The tangent: the derivative of `re` along the seeded direction.
    pub eps: T,
}

impl<T> Dual<T> {
    /// The dual number `re + eps·ε`.
    #[inline]
    pub const fn new(re: T, eps: T) -> Self {
        Dual { re, eps }
    }
}

impl<T: Float> Dual<T> {
    /// A constant: tangent 0.
    ///
    /// ```
    /// let c = autodiff_runtime::Dual::constant(3.0_f64);
    /// assert_eq!((c.re, c.eps), (3.0, 0.0));
    /// ```
    #[inline]
    pub fn constant(re: T) -> Self {
        Dual::new(re, T::zero())
    }

    /// The variable being differentiated against: tangent 1.
    ///
    /// ```
    /// let x = autodiff_runtime::Dual::variable(3.0_f64);
    /// assert_eq!((x.re, x.eps), (3.0, 1.0));
    /// ```
    #[inline]
    pub fn variable(re: T) -> Self {
        Dual::new(re, T::one())
    }
}

/// The tangent contribution `partial(t)` of an argument with tangent `t`, or exactly zero
/// when `t` is zero, so that constant arguments behave like symbolic zeros instead of
/// producing `0 · ∞ = NaN` where a partial derivative is infinite or undefined.
#[inline]
fn push<T: Float>(t: T, partial: impl FnOnce(T) -> T) -> T {
    if t == T::zero() {
        T::zero()
    } else {
        partial(t)
    }
}

impl<T: PartialEq> PartialEq for Dual<T> {
    /// Compares `re` only, consistently with [`PartialOrd`], so that `x == 0.0`-style
    /// branches take the same path as on plain floats.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.re == other.re
    }
}

impl<T: PartialOrd> PartialOrd for Dual<T> {
    /// Orders by `re` only.
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.re.partial_cmp(&other.re)
    }
}

impl<T: Float + fmt::Display> fmt::Display for Dual<T> {
    /// Writes `re + epsε` (or `re - |eps|ε`); a precision applies to both parts.
    ///
    /// ```
    /// use autodiff_runtime::Dual;
    ///
    /// assert_eq!(Dual::new(1.5, -2.0).to_string(), "1.5 - 2ε");
    /// assert_eq!(format!("{:.2}", Dual::new(1.0, 0.5)), "1.00 + 0.50ε");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.re, f)?;
        f.write_str(if self.eps.is_sign_negative() {
            " - "
        } else {
            " + "
        })?;
        fmt::Display::fmt(&self.eps.abs(), f)?;
        f.write_str("ε")
    }
}

impl<T: Float> Neg for Dual<T> {
    type Output = Self;
    #[inline]
    fn neg(self) -> Self {
        Dual::new(-self.re, -self.eps)
    }
}

impl<T: Float> Add for Dual<T> {
    type Output = Self;
    #[inline]
    fn add(self, rhs: Self) -> Self {
        Dual::new(self.re + rhs.re, self.eps + rhs.eps)
    }
}

impl<T: Float> Sub for Dual<T> {
    type Output = Self;
    #[inline]
    fn sub(self, rhs: Self) -> Self {
        Dual::new(self.re - rhs.re, self.eps - rhs.eps)
    }
}

impl<T: Float> Mul for Dual<T> {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: Self) -> Self {
        let (a, b) = (self.re, rhs.re);
        let eps =
            push(self.eps, |t| rules::mul_d0(&b, t)) + push(rhs.eps, |t| rules::mul_d1(&a, t));
        Dual::new(a * b, eps)
    }
}

impl<T: Float> Div for Dual<T> {
    type Output = Self;
    #[inline]
    fn div(self, rhs: Self) -> Self {
        let b = rhs.re;
        let y = self.re / b;
        let eps =
            push(self.eps, |t| rules::div_d0(&b, t)) + push(rhs.eps, |t| rules::div_d1(&b, &y, t));
        Dual::new(y, eps)
    }
}

impl<T: Float> Rem for Dual<T> {
    type Output = Self;
    #[inline]
    fn rem(self, rhs: Self) -> Self {
        let (a, b) = (self.re, rhs.re);
        let eps = self.eps + push(rhs.eps, |t| rules::rem_d1(&a, &b, t));
        Dual::new(a % b, eps)
    }
}

/// The compound assignments and the mixed `Dual<T> ∘ T` forms, all in terms of the binary
/// operators between duals (a plain `T` is a constant).
macro_rules! derived_ops {
    ($($Op:ident::$op:ident, $OpAssign:ident::$op_assign:ident;)*) => {$(
        impl<T: Float> $OpAssign for Dual<T> {
            #[inline]
            fn $op_assign(&mut self, rhs: Self) {
                *self = $Op::$op(*self, rhs);
            }
        }

        impl<T: Float> $Op<T> for Dual<T> {
            type Output = Self;
            #[inline]
            fn $op(self, rhs: T) -> Self {
                $Op::$op(self, Dual::constant(rhs))
            }
        }

        impl<T: Float> $OpAssign<T> for Dual<T> {
            #[inline]
            fn $op_assign(&mut self, rhs: T) {
                *self = $Op::$op(*self, Dual::constant(rhs));
            }
        }

        impl $Op<Dual<f32>> for f32 {
            type Output = Dual<f32>;
            #[inline]
            fn $op(self, rhs: Dual<f32>) -> Dual<f32> {
                $Op::$op(Dual::constant(self), rhs)
            }
        }

        impl $Op<Dual<f64>> for f64 {
            type Output = Dual<f64>;
            #[inline]
            fn $op(self, rhs: Dual<f64>) -> Dual<f64> {
                $Op::$op(Dual::constant(self), rhs)
            }
        }
    )*};
}

derived_ops! {
    Add::add, AddAssign::add_assign;
    Sub::sub, SubAssign::sub_assign;
    Mul::mul, MulAssign::mul_assign;
    Div::div, DivAssign::div_assign;
    Rem::rem, RemAssign::rem_assign;
}

/// Starts from `-0.0`, as `std`'s float sums do, so that a sum of negative zeros (and an
/// empty sum) has the same sign as the same sum of plain floats.
impl<T: Float> Sum for Dual<T> {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(-Dual::zero(), Add::add)
    }
}

impl<T: Float> Product for Dual<T> {
    fn product<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Dual::one(), Mul::mul)
    }
}

impl<T: Float> Zero for Dual<T> {
    #[inline]
    fn zero() -> Self {
        Dual::constant(T::zero())
    }

    /// Looks at `re` only, like `==`.
    #[inline]
    fn is_zero(&self) -> bool {
        self.re.is_zero()
    }
}

impl<T: Float> One for Dual<T> {
    #[inline]
    fn one() -> Self {
        Dual::constant(T::one())
    }
}

impl<T: Float> Num for Dual<T> {
    type FromStrRadixErr = T::FromStrRadixErr;

    /// Parses a constant.
    fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
        T::from_str_radix(s, radix).map(Dual::constant)
    }
}

/// Conversions read `re`: the tangent has no meaning in another type.
macro_rules! to_primitive {
    ($($method:ident -> $ty:ty;)*) => {$(
        #[inline]
        fn $method(&self) -> Option<$ty> {
            self.re.$method()
        }
    )*};
}

impl<T: Float> ToPrimitive for Dual<T> {
    to_primitive! {
        to_isize -> isize;
        to_i8 -> i8;
        to_i16 -> i16;
        to_i32 -> i32;
        to_i64 -> i64;
        to_i128 -> i128;
        to_usize -> usize;
        to_u8 -> u8;
        to_u16 -> u16;
        to_u32 -> u32;
        to_u64 -> u64;
        to_u128 -> u128;
        to_f32 -> f32;
        to_f64 -> f64;
    }
}

impl<T: Float> NumCast for Dual<T> {
    /// Converts to a constant.
    #[inline]
    fn from<N: ToPrimitive>(n: N) -> Option<Self> {
        <T as NumCast>::from(n).map(Dual::constant)
    }
}

/// Methods whose value is a constant of `T`.
macro_rules! constants {
    ($($method:ident),* $(,)?) => {$(
        #[inline]
        fn $method() -> Self {
            Dual::constant(T::$method())
        }
    )*};
}

/// Predicates, which look at `re` only.
macro_rules! predicates {
    ($($method:ident),* $(,)?) => {$(
        #[inline]
        fn $method(self) -> bool {
            self.re.$method()
        }
    )*};
}

/// Piecewise-constant methods: their derivative is zero wherever it exists.
macro_rules! piecewise_constant {
    ($($method:ident),* $(,)?) => {$(
        #[inline]
        fn $method(self) -> Self {
            Dual::constant(self.re.$method())
        }
    )*};
}

/// Unary methods whose tangent is the rule applied to the tangent; the rule reads either
/// the input `x` or the output `y`.
macro_rules! unary {
    ($($method:ident => $rule:ident($read:tt);)*) => {$(
        unary!(@one $method $rule $read);
    )*};
    (@one $method:ident $rule:ident x) => {
        #[inline]
        fn $method(self) -> Self {
            let x = self.re;
            Dual::new(x.$method(), push(self.eps, |t| rules::$rule(&x, t)))
        }
    };
    (@one $method:ident $rule:ident y) => {
        #[inline]
        fn $method(self) -> Self {
            let y = self.re.$method();
            Dual::new(y, push(self.eps, |t| rules::$rule(&y, t)))
        }
    };
    (@one $method:ident $rule:ident ()) => {
        #[inline]
        fn $method(self) -> Self {
            Dual::new(self.re.$method(), push(self.eps, rules::$rule))
        }
    };
}

impl<T: Float> Float for Dual<T> {
    constants!(
        nan,
        infinity,
        neg_infinity,
        neg_zero,
        min_value,
        min_positive_value,
        epsilon,
        max_value
    );

    predicates!(
        is_nan,
        is_infinite,
        is_finite,
        is_normal,
        is_subnormal,
        is_sign_positive,
        is_sign_negative
    );

    piecewise_constant!(floor, ceil, round, trunc, signum);

    unary! {
        fract => fract_d0(());
        abs => abs_d0(x);
        recip => recip_d0(y);
        sqrt => sqrt_d0(y);
        cbrt => cbrt_d0(y);
        exp => exp_d0(y);
        exp2 => exp2_d0(y);
        exp_m1 => exp_m1_d0(y);
        ln => ln_d0(x);
        log2 => log2_d0(x);
        log10 => log10_d0(x);
        ln_1p => ln_1p_d0(x);
        to_degrees => to_degrees_d0(());
        to_radians => to_radians_d0(());
        sin => sin_d0(x);
        cos => cos_d0(x);
        tan => tan_d0(y);
        asin => asin_d0(x);
        acos => acos_d0(x);
        atan => atan_d0(x);
        sinh => sinh_d0(x);
        cosh => cosh_d0(x);
        tanh => tanh_d0(y);
        asinh => asinh_d0(x);
        acosh => acosh_d0(x);
        atanh => atanh_d0(x);
    }

    #[inline]
    fn classify(self) -> FpCategory {
        self.re.classify()
    }

    #[inline]
    fn mul_add(self, a: Self, b: Self) -> Self {
        let (x, a_re) = (self.re, a.re);
        let eps = push(self.eps, |t| rules::mul_add_d0(&a_re, t))
            + push(a.eps, |t| rules::mul_add_d1(&x, t))
            + push(b.eps, rules::mul_add_d2);
        Dual::new(x.mul_add(a_re, b.re), eps)
    }

    #[inline]
    fn powi(self, n: i32) -> Self {
        let x = self.re;
        Dual::new(x.powi(n), push(self.eps, |t| rules::powi_d0(&x, &n, t)))
    }

    #[inline]
    fn powf(self, n: Self) -> Self {
        let (x, p) = (self.re, n.re);
        let y = x.powf(p);
        let eps = push(self.eps, |t| rules::powf_d0(&x, &p, t))
            + push(n.eps, |t| rules::powf_d1(&x, &y, t));
        Dual::new(y, eps)
    }

    #[inline]
    fn log(self, base: Self) -> Self {
        let (x, b) = (self.re, base.re);
        let eps = push(self.eps, |t| rules::log_d0(&x, &b, t))
            + push(base.eps, |t| rules::log_d1(&x, &b, t));
        Dual::new(x.log(b), eps)
    }

    #[inline]
    fn max(self, other: Self) -> Self {
        let (a, b) = (self.re, other.re);
        let eps = push(self.eps, |t| rules::max_d0(&a, &b, t))
            + push(other.eps, |t| rules::max_d1(&a, &b, t));
        Dual::new(a.max(b), eps)
    }

    #[inline]
    fn min(self, other: Self) -> Self {
        let (a, b) = (self.re, other.re);
        let eps = push(self.eps, |t| rules::min_d0(&a, &b, t))
            + push(other.eps, |t| rules::min_d1(&a, &b, t));
        Dual::new(a.min(b), eps)
    }

    #[inline]
    fn clamp(self, min: Self, max: Self) -> Self {
        let (x, lo, hi) = (self.re, min.re, max.re);
        let eps = push(self.eps, |t| rules::clamp_d0(&x, &lo, &hi, t))
            + push(min.eps, |t| rules::clamp_d1(&x, &lo, t))
            + push(max.eps, |t| rules::clamp_d2(&x, &hi, t));
        Dual::new(Float::clamp(x, lo, hi), eps)
    }

    /// `max(x - other, 0)`: the tangent of `x - other` where that is positive, else 0.
    #[inline]
    fn abs_sub(self, other: Self) -> Self {
        let re = self.re.abs_sub(other.re);
        let eps = if self.re > other.re {
            self.eps - other.eps
        } else {
            T::zero()
        };
        Dual::new(re, eps)
    }

    #[inline]
    fn hypot(self, other: Self) -> Self {
        let (a, b) = (self.re, other.re);
        let y = a.hypot(b);
        let eps = push(self.eps, |t| rules::hypot_d0(&a, &y, t))
            + push(other.eps, |t| rules::hypot_d1(&b, &y, t));
        Dual::new(y, eps)
    }

    #[inline]
    fn atan2(self, other: Self) -> Self {
        let (a, b) = (self.re, other.re);
        let eps = push(self.eps, |t| rules::atan2_d0(&a, &b, t))
            + push(other.eps, |t| rules::atan2_d1(&a, &b, t));
        Dual::new(a.atan2(b), eps)
    }

    #[inline]
    fn sin_cos(self) -> (Self, Self) {
        let x = self.re;
        let (s, c) = x.sin_cos();
        (
            Dual::new(s, push(self.eps, |t| t * c)),
            Dual::new(c, push(self.eps, |t| -t * s)),
        )
    }

    /// Decodes `re`.
    #[inline]
    fn integer_decode(self) -> (u64, i16, i8) {
        self.re.integer_decode()
    }

    /// `|x|` with the sign of `sign`: the tangent of `x`, negated when the signs differ;
    /// `sign` itself only contributes its sign, so its tangent is dropped.
    #[inline]
    fn copysign(self, sign: Self) -> Self {
        let flips = self.re.is_sign_negative() != sign.re.is_sign_negative();
        let eps = if flips { -self.eps } else { self.eps };
        Dual::new(self.re.copysign(sign.re), eps)
    }
}

/// Mathematical constants, with tangent 0.
macro_rules! float_consts {
    ($($constant:ident),* $(,)?) => {$(
        #[inline]
        fn $constant() -> Self {
            Dual::constant(T::$constant())
        }
    )*};
}

impl<T: Float + FloatConst> FloatConst for Dual<T> {
    float_consts!(
        E,
        FRAC_1_PI,
        FRAC_1_SQRT_2,
        FRAC_2_PI,
        FRAC_2_SQRT_PI,
        FRAC_PI_2,
        FRAC_PI_3,
        FRAC_PI_4,
        FRAC_PI_6,
        FRAC_PI_8,
        LN_10,
        LN_2,
        LOG10_E,
        LOG2_E,
        PI,
        SQRT_2,
        TAU,
        LOG10_2,
        LOG2_10,
    );
}
