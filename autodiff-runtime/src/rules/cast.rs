//! The rule for float-to-float `as` casts.

use num_traits::{NumCast, ToPrimitive};

/// `y = x as D` for floats `x: S`: `x̄ = ȳ as S`.
///
/// A cast is the identity on the values both types share, so its pullback only converts
/// the cotangent back to the source type. Between `f32` and `f64` the conversion always
/// succeeds (narrowing rounds, and may overflow to ±∞ exactly like `as`), so the `unwrap`
/// cannot fail for float-to-float casts.
///
/// ```
/// use autodiff_runtime::rules::cast_d0;
///
/// // y = x as f32 with x: f64
/// let x_bar: f64 = cast_d0(0.5_f32);
/// assert_eq!(x_bar, 0.5);
/// ```
#[inline]
pub fn cast_d0<S: NumCast, D: ToPrimitive>(d: D) -> S {
    S::from(d).unwrap()
}
