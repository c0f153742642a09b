//! Parameter sets: types whose float contents can be differentiated and updated by optimizers.

use num_traits::Float;

/// Visits the float leaves of a parameter set together with the matching leaves of its
/// gradient; implemented by optimizers.
pub trait ParamVisitor {
    /// Called once per leaf, in a fixed order: the parameters and their gradient.
    fn leaf<T: Float>(&mut self, params: &mut [T], grads: &[T]);
}

/// A value that carries derivatives: its cotangent has the same type, with the gradient in
/// its float parts and any other parts (sizes, flags) copied from the primal.
///
/// Implemented for `f32`, `f64`, integers and `bool` (constants), `Vec`s and arrays of
/// differentiable values, and by `#[derive(Differentiable)]` for structs of those.
///
/// ```
/// use autodiff_runtime::Differentiable;
///
/// let w = vec![1.0_f64, 2.0];
/// let mut d = w.zero_like();
/// d.accumulate_from(&vec![0.5, 0.25]);
/// assert_eq!(d, vec![0.5, 0.25]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a derivative",
    label = "not `Differentiable`",
    note = "add `#[derive(Differentiable)]` to the struct, or make this field a float, tensor, vector or integer"
)]
pub trait Differentiable: Sized {
    /// A zero cotangent shaped like `self`: float parts zero, other parts copied.
    fn zero_like(&self) -> Self;

    /// Adds the float parts of `other` into `self`.
    fn accumulate_from(&mut self, other: &Self);

    /// Calls `visitor.leaf` for every float leaf of `self`, with the matching leaf of `grad`.
    fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V);
}

macro_rules! float_leaf {
    ($($t:ty),*) => {$(
        impl Differentiable for $t {
            #[inline]
            fn zero_like(&self) -> Self {
                0.0
            }
            #[inline]
            fn accumulate_from(&mut self, other: &Self) {
                *self += *other;
            }
            #[inline]
            fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
                visitor.leaf(core::slice::from_mut(self), core::slice::from_ref(grad));
            }
        }
    )*};
}
float_leaf!(f32, f64);

macro_rules! constant_leaf {
    ($($t:ty),*) => {$(
        impl Differentiable for $t {
            #[inline]
            fn zero_like(&self) -> Self {
                *self
            }
            #[inline]
            fn accumulate_from(&mut self, _: &Self) {}
            #[inline]
            fn visit<V: ParamVisitor>(&mut self, _: &Self, _: &mut V) {}
        }
    )*};
}
constant_leaf!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, bool, char);

impl<D: Differentiable> Differentiable for Vec<D> {
    fn zero_like(&self) -> Self {
        self.iter().map(D::zero_like).collect()
    }

    fn accumulate_from(&mut self, other: &Self) {
        assert_eq!(
            self.len(),
            other.len(),
            "accumulate: gradient lengths {} and {} differ",
            self.len(),
            other.len()
        );
        for (a, b) in self.iter_mut().zip(other) {
            a.accumulate_from(b);
        }
    }

    fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
        assert_eq!(
            self.len(),
            grad.len(),
            "visit: parameter and gradient lengths {} and {} differ",
            self.len(),
            grad.len()
        );
        for (p, g) in self.iter_mut().zip(grad) {
            p.visit(g, visitor);
        }
    }
}

impl<D: Differentiable, const N: usize> Differentiable for [D; N] {
    fn zero_like(&self) -> Self {
        core::array::from_fn(|i| self[i].zero_like())
    }

    fn accumulate_from(&mut self, other: &Self) {
        for (a, b) in self.iter_mut().zip(other) {
            a.accumulate_from(b);
        }
    }

    fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
        for (p, g) in self.iter_mut().zip(grad) {
            p.visit(g, visitor);
        }
    }
}
