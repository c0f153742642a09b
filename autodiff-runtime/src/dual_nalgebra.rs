//! nalgebra's scalar traits (`RealField` and what it builds on) for `Dual`, so that code
//! generic over `T: RealField` runs on dual numbers: forward mode through nalgebra, and
//! forward-over-reverse through the generated code of such functions.
//!
//! Every operation is the `Float` one of [`Dual`] (whose rules carry the tangent); the
//! comparisons of `approx` look at `re` only, as `==` and `<` do. A `Dual` is a real number
//! here: one SIMD lane, no imaginary part.

use core::fmt;

use approx::{AbsDiffEq, RelativeEq, UlpsEq};
use nalgebra::{ComplexField, Field, RealField, SimdValue};
use num_traits::{Float, FloatConst, FromPrimitive, NumCast, Signed, Zero};
use simba::scalar::SubsetOf;

use crate::Dual;

/// The bounds under which `Dual<T>` is a nalgebra scalar: `f32`, `f64` and `Dual`s of them.
pub trait DualBase:
    Float
    + FloatConst
    + RelativeEq<Epsilon = Self>
    + UlpsEq<Epsilon = Self>
    + Send
    + Sync
    + fmt::Debug
    + fmt::Display
    + 'static
{
}

impl<T> DualBase for T where
    T: Float
        + FloatConst
        + RelativeEq<Epsilon = T>
        + UlpsEq<Epsilon = T>
        + Send
        + Sync
        + fmt::Debug
        + fmt::Display
        + 'static
{
}

impl<T: DualBase> SimdValue for Dual<T> {
    const LANES: usize = 1;
    type Element = Self;
    type SimdBool = bool;

    #[inline]
    fn splat(val: Self) -> Self {
        val
    }
    #[inline]
    fn extract(&self, _: usize) -> Self {
        *self
    }
    #[inline]
    unsafe fn extract_unchecked(&self, _: usize) -> Self {
        *self
    }
    #[inline]
    fn replace(&mut self, _: usize, val: Self) {
        *self = val;
    }
    #[inline]
    unsafe fn replace_unchecked(&mut self, _: usize, val: Self) {
        *self = val;
    }
    #[inline]
    fn select(self, cond: bool, other: Self) -> Self {
        if cond {
            self
        } else {
            other
        }
    }
}

impl<T: DualBase> Field for Dual<T> {}

impl<T: DualBase> AbsDiffEq for Dual<T> {
    type Epsilon = Self;
    fn default_epsilon() -> Self {
        Dual::constant(T::default_epsilon())
    }
    fn abs_diff_eq(&self, other: &Self, epsilon: Self) -> bool {
        self.re.abs_diff_eq(&other.re, epsilon.re)
    }
}

impl<T: DualBase> RelativeEq for Dual<T> {
    fn default_max_relative() -> Self {
        Dual::constant(T::default_max_relative())
    }
    fn relative_eq(&self, other: &Self, epsilon: Self, max_relative: Self) -> bool {
        self.re.relative_eq(&other.re, epsilon.re, max_relative.re)
    }
}

impl<T: DualBase> UlpsEq for Dual<T> {
    fn default_max_ulps() -> u32 {
        T::default_max_ulps()
    }
    fn ulps_eq(&self, other: &Self, epsilon: Self, max_ulps: u32) -> bool {
        self.re.ulps_eq(&other.re, epsilon.re, max_ulps)
    }
}

impl<T: DualBase> Signed for Dual<T> {
    fn abs(&self) -> Self {
        Float::abs(*self)
    }
    fn abs_sub(&self, other: &Self) -> Self {
        if *self <= *other {
            Self::zero()
        } else {
            *self - *other
        }
    }
    fn signum(&self) -> Self {
        Float::signum(*self)
    }
    fn is_positive(&self) -> bool {
        self.re > T::zero()
    }
    fn is_negative(&self) -> bool {
        self.re < T::zero()
    }
}

impl<T: DualBase> FromPrimitive for Dual<T> {
    fn from_i64(n: i64) -> Option<Self> {
        <T as NumCast>::from(n).map(Dual::constant)
    }
    fn from_u64(n: u64) -> Option<Self> {
        <T as NumCast>::from(n).map(Dual::constant)
    }
    fn from_f64(n: f64) -> Option<Self> {
        <T as NumCast>::from(n).map(Dual::constant)
    }
}

impl<T: DualBase> SubsetOf<Dual<T>> for Dual<T> {
    fn to_superset(&self) -> Self {
        *self
    }
    fn from_superset_unchecked(element: &Self) -> Self {
        *element
    }
    fn is_in_subset(_: &Self) -> bool {
        true
    }
}

/// `f32` and `f64` constants (`nalgebra::convert(0.5)`) as duals with a zero tangent; back to
/// floats, the value (a dual is in the subset when its tangent is zero).
macro_rules! float_subset_of_dual {
    ($($float:ty),*) => {$(
        impl<T: DualBase> SubsetOf<Dual<T>> for $float {
            fn to_superset(&self) -> Dual<T> {
                Dual::constant(<T as NumCast>::from(*self).unwrap_or_else(T::nan))
            }
            fn from_superset_unchecked(element: &Dual<T>) -> $float {
                <$float as NumCast>::from(element.re).unwrap_or(<$float>::NAN)
            }
            fn is_in_subset(element: &Dual<T>) -> bool {
                element.eps == T::zero()
            }
        }
    )*};
}

float_subset_of_dual!(f32, f64);

/// `fn name(self) -> Self` of `ComplexField`, each the `Float` method of the same name.
macro_rules! unary_float_methods {
    ($($name:ident),* $(,)?) => {$(
        #[inline]
        fn $name(self) -> Self {
            Float::$name(self)
        }
    )*};
}

impl<T: DualBase> ComplexField for Dual<T> {
    type RealField = Self;

    unary_float_methods!(
        floor, ceil, round, trunc, fract, abs, recip, sin, cos, tan, asin, acos, atan, sinh, cosh,
        tanh, asinh, acosh, atanh, log2, log10, ln, ln_1p, sqrt, exp, exp2, exp_m1, cbrt
    );

    #[inline]
    fn from_real(re: Self) -> Self {
        re
    }
    #[inline]
    fn real(self) -> Self {
        self
    }
    #[inline]
    fn imaginary(self) -> Self {
        Self::zero()
    }
    #[inline]
    fn modulus(self) -> Self {
        Float::abs(self)
    }
    #[inline]
    fn modulus_squared(self) -> Self {
        self * self
    }
    #[inline]
    fn argument(self) -> Self {
        if self >= Self::zero() {
            Self::zero()
        } else {
            Self::PI()
        }
    }
    #[inline]
    fn norm1(self) -> Self {
        Float::abs(self)
    }
    #[inline]
    fn scale(self, factor: Self) -> Self {
        self * factor
    }
    #[inline]
    fn unscale(self, factor: Self) -> Self {
        self / factor
    }
    #[inline]
    fn mul_add(self, a: Self, b: Self) -> Self {
        Float::mul_add(self, a, b)
    }
    #[inline]
    fn hypot(self, other: Self) -> Self {
        Float::hypot(self, other)
    }
    #[inline]
    fn conjugate(self) -> Self {
        self
    }
    #[inline]
    fn sin_cos(self) -> (Self, Self) {
        Float::sin_cos(self)
    }
    #[inline]
    fn log(self, base: Self) -> Self {
        Float::log(self, base)
    }
    #[inline]
    fn powi(self, n: i32) -> Self {
        Float::powi(self, n)
    }
    #[inline]
    fn powf(self, n: Self) -> Self {
        Float::powf(self, n)
    }
    #[inline]
    fn powc(self, n: Self) -> Self {
        Float::powf(self, n)
    }
    #[inline]
    fn is_finite(&self) -> bool {
        Float::is_finite(*self)
    }
    #[inline]
    fn try_sqrt(self) -> Option<Self> {
        (self >= Self::zero()).then(|| Float::sqrt(self))
    }
}

impl<T: DualBase> RealField for Dual<T> {
    #[inline]
    fn is_sign_positive(&self) -> bool {
        Float::is_sign_positive(*self)
    }
    #[inline]
    fn is_sign_negative(&self) -> bool {
        Float::is_sign_negative(*self)
    }
    #[inline]
    fn copysign(self, sign: Self) -> Self {
        Float::copysign(self, sign)
    }
    #[inline]
    fn max(self, other: Self) -> Self {
        Float::max(self, other)
    }
    #[inline]
    fn min(self, other: Self) -> Self {
        Float::min(self, other)
    }
    #[inline]
    fn clamp(self, min: Self, max: Self) -> Self {
        Float::clamp(self, min, max)
    }
    #[inline]
    fn atan2(self, other: Self) -> Self {
        Float::atan2(self, other)
    }
    fn min_value() -> Option<Self> {
        Some(Float::min_value())
    }
    fn max_value() -> Option<Self> {
        Some(Float::max_value())
    }
    fn pi() -> Self {
        Self::PI()
    }
    fn two_pi() -> Self {
        Self::TAU()
    }
    fn frac_pi_2() -> Self {
        Self::FRAC_PI_2()
    }
    fn frac_pi_3() -> Self {
        Self::FRAC_PI_3()
    }
    fn frac_pi_4() -> Self {
        Self::FRAC_PI_4()
    }
    fn frac_pi_6() -> Self {
        Self::FRAC_PI_6()
    }
    fn frac_pi_8() -> Self {
        Self::FRAC_PI_8()
    }
    fn frac_1_pi() -> Self {
        Self::FRAC_1_PI()
    }
    fn frac_2_pi() -> Self {
        Self::FRAC_2_PI()
    }
    fn frac_2_sqrt_pi() -> Self {
        Self::FRAC_2_SQRT_PI()
    }
    fn e() -> Self {
        Self::E()
    }
    fn log2_e() -> Self {
        Self::LOG2_E()
    }
    fn log10_e() -> Self {
        Self::LOG10_E()
    }
    fn ln_2() -> Self {
        Self::LN_2()
    }
    fn ln_10() -> Self {
        Self::LN_10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector, Matrix2, Vector2};

    // f(v) = |A v|² for A = [[1, 2], [3, 4]]: ∇f = 2 Aᵀ A v
    fn norm_of_product<T: RealField + Copy>(v: &Vector2<T>) -> T {
        let a = Matrix2::new(1.0, 2.0, 3.0, 4.0).cast::<T>();
        (a * v).norm_squared()
    }

    #[test]
    fn nalgebra_code_generic_over_real_field_runs_on_duals() {
        let v = Vector2::new(0.5, -1.5);
        let a = Matrix2::new(1.0, 2.0, 3.0, 4.0);
        let want: Vector2<f64> = 2.0 * a.transpose() * a * v;
        for i in 0..2 {
            let seeded = Vector2::from_fn(|k, _| Dual::new(v[k], if k == i { 1.0 } else { 0.0 }));
            let y = norm_of_product(&seeded);
            assert_eq!(y.re, norm_of_product(&v));
            assert!(
                (y.eps - want[i]).abs() < 1e-12,
                "{} against {}",
                y.eps,
                want[i]
            );
        }
    }

    // d/dt det(M + t I) at t = 0 is trace(M) (for 2 x 2: (a + t)(d + t) - bc)
    #[test]
    fn determinants_and_solves_carry_tangents() {
        let m = DMatrix::from_row_slice(2, 2, &[2.0, 1.0, 0.5, 3.0]);
        let shifted = DMatrix::from_fn(2, 2, |i, j| {
            Dual::new(m[(i, j)], if i == j { 1.0 } else { 0.0 })
        });
        let det: Dual<f64> = shifted.determinant();
        assert!((det.re - 5.5).abs() < 1e-12);
        assert!((det.eps - 5.0).abs() < 1e-12);
        // x(t) = (M + t I)⁻¹ b  =>  x' = -M⁻¹ x
        let b = DVector::from_vec(vec![1.0, 2.0]);
        let x: DVector<f64> = m.clone().lu().solve(&b).expect("invertible");
        let want: DVector<f64> = -(m.clone().lu().solve(&x).expect("invertible"));
        let bd = b.map(Dual::constant);
        let xd = shifted.lu().solve(&bd).expect("invertible");
        for i in 0..2 {
            assert!((xd[i].re - x[i]).abs() < 1e-12);
            assert!((xd[i].eps - want[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn constants_convert_with_a_zero_tangent() {
        let half: Dual<f64> = nalgebra::convert(0.5);
        assert_eq!((half.re, half.eps), (0.5, 0.0));
        let back: Option<f64> = nalgebra::try_convert(Dual::new(2.0, 0.0));
        assert_eq!(back, Some(2.0));
        assert_eq!(
            nalgebra::try_convert::<Dual<f64>, f64>(Dual::new(2.0, 1.0)),
            None
        );
        assert_eq!(<Dual<f64> as RealField>::pi().re, std::f64::consts::PI);
        assert!(<Dual<f64> as ComplexField>::try_sqrt(Dual::constant(-1.0)).is_none());
    }
}
