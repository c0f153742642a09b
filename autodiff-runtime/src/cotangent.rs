//! Zero cotangents and their accumulation, so generated code never has to name a type.

use num_traits::{Float, One};

/// A value that can be the cotangent (adjoint) of a differentiated quantity.
///
/// Reverse-mode code starts every adjoint at [`Cotangent::zero`] and sums the
/// contributions of each use into it with [`Cotangent::accumulate`]. Generated code calls
/// the free functions [`zero`] and [`accumulate`], leaving the type to inference.
///
/// Every [`Float`] is a cotangent, through a blanket impl. That blanket impl is why this
/// trait has no impls for `()`, tuples or standard containers: Rust's coherence rules
/// reject them next to it, because `num_traits` could implement `Float` for those types.
/// Containers defined in this workspace can implement it; for them an empty value is
/// expected to mean zero, so that [`Cotangent::zero`] allocates nothing.
///
/// ```
/// use autodiff_runtime::Cotangent;
///
/// let mut x_bar = f64::zero();
/// x_bar.accumulate(0.5);
/// x_bar.accumulate(2.0);
/// assert_eq!(x_bar, 2.5);
/// ```
pub trait Cotangent: Sized {
    /// The additive identity: the cotangent of a value that does not affect the output.
    fn zero() -> Self;

    /// Adds `other` into `self`, as when a value is used more than once.
    fn accumulate(&mut self, other: Self);
}

impl<T: Float> Cotangent for T {
    #[inline]
    fn zero() -> Self {
        T::zero()
    }

    #[inline]
    fn accumulate(&mut self, other: Self) {
        *self = *self + other;
    }
}

/// The zero cotangent of whatever type the context asks for.
///
/// ```
/// let x_bar: f32 = autodiff_runtime::zero();
/// assert_eq!(x_bar, 0.0);
/// ```
#[inline]
pub fn zero<C: Cotangent>() -> C {
    C::zero()
}

/// Adds the contribution `c` into the accumulated cotangent `acc`.
///
/// ```
/// use autodiff_runtime::{accumulate, zero};
///
/// let mut x_bar: f64 = zero();
/// accumulate(&mut x_bar, 1.5);
/// accumulate(&mut x_bar, -0.5);
/// assert_eq!(x_bar, 1.0);
/// ```
#[inline]
pub fn accumulate<C: Cotangent>(acc: &mut C, c: C) {
    acc.accumulate(c);
}

/// One, the cotangent that seeds the pullback of a scalar output.
///
/// ```
/// let seed: f64 = autodiff_runtime::one();
/// assert_eq!(seed, 1.0);
/// ```
#[inline]
pub fn one<T: One>() -> T {
    T::one()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_zero_and_accumulate() {
        let mut acc: f32 = zero();
        accumulate(&mut acc, 1.25);
        accumulate(&mut acc, 0.5);
        assert_eq!(acc, 1.75);
        assert_eq!(one::<f64>(), 1.0);
    }
}
