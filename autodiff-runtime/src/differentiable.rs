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
/// Implemented for `f32`, `f64`, integers, `bool` and `char` (constants), `String`, `&str` and
/// the std maps and sets (constants, copied into the cotangent), `Vec`s, arrays and `Option`s
/// of differentiable values, and by `#[derive(Differentiable)]` for structs of those (a field
/// of any other `Clone` type marked `#[differentiable(skip)]` is copied as a constant).
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

/// Parts that carry no derivative and are not `Copy`: names, lookup tables. The cotangent
/// holds a copy (`zero_like` clones), which accumulation and the optimizers leave alone.
macro_rules! cloned_constant {
    ($([$($generics:tt)*] $t:ty),* $(,)?) => {$(
        impl<$($generics)*> Differentiable for $t {
            fn zero_like(&self) -> Self {
                ::core::clone::Clone::clone(self)
            }
            #[inline]
            fn accumulate_from(&mut self, _: &Self) {}
            #[inline]
            fn visit<Visitor: ParamVisitor>(&mut self, _: &Self, _: &mut Visitor) {}
        }
    )*};
}
cloned_constant!(
    [] String,
    [] &'static str,
    [K: Clone, V: Clone, S: Clone] std::collections::HashMap<K, V, S>,
    [K: Clone, V: Clone] std::collections::BTreeMap<K, V>,
    [K: Clone, S: Clone] std::collections::HashSet<K, S>,
    [K: Clone] std::collections::BTreeSet<K>,
);

/// `None` stays `None`; `Some` holds the cotangent of its value. Accumulating `Some` into
/// `None` (or the reverse) is a mismatch of shapes, like vectors of different lengths.
impl<D: Differentiable> Differentiable for Option<D> {
    fn zero_like(&self) -> Self {
        self.as_ref().map(D::zero_like)
    }

    fn accumulate_from(&mut self, other: &Self) {
        match (self, other) {
            (Some(a), Some(b)) => a.accumulate_from(b),
            (None, None) => {}
            (a, b) => panic!(
                "accumulate: one gradient is `Some` and the other `None` ({} and {})",
                if a.is_some() { "Some" } else { "None" },
                if b.is_some() { "Some" } else { "None" }
            ),
        }
    }

    fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
        if let (Some(p), Some(g)) = (self, grad) {
            p.visit(g, visitor);
        }
    }
}

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

/// A tuple parameter (`p: (f64, f64)`, `(r, theta)`): its cotangent is a tuple of its
/// elements' cotangents, element by element.
macro_rules! tuple_differentiable {
    ($(($($name:ident $index:tt),+))*) => {$(
        impl<$($name: Differentiable),+> Differentiable for ($($name,)+) {
            fn zero_like(&self) -> Self {
                ($(self.$index.zero_like(),)+)
            }

            fn accumulate_from(&mut self, other: &Self) {
                $(self.$index.accumulate_from(&other.$index);)+
            }

            fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
                $(self.$index.visit(&grad.$index, visitor);)+
            }
        }

        impl<$($name: Differentiable),+> crate::cotangent::ParameterSetCotangent for ($($name,)+) {}

        impl<$($name: crate::cotangent::ZeroCotangent),+> crate::cotangent::ZeroCotangent
            for ($($name,)+)
        {
            #[inline]
            fn zero_cotangent() -> Self {
                ($($name::zero_cotangent(),)+)
            }
        }
    )*};
}
tuple_differentiable! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn tuples_hold_the_cotangents_of_their_elements() {
        let mut grad = (2.0f64, 3usize, [1.0f64, 2.0]).zero_like();
        assert_eq!(grad, (0.0, 3, [0.0, 0.0]));
        grad.accumulate_from(&(0.5, 7, [1.0, -1.0]));
        assert_eq!(grad, (0.5, 3, [1.0, -1.0]));
    }

    #[test]
    fn names_and_maps_are_copied_constants() {
        let name = String::from("rod");
        let mut zero = name.zero_like();
        zero.accumulate_from(&String::from("other"));
        assert_eq!(zero, "rod");
        let table = HashMap::from([(1usize, 2.5f64)]);
        let mut zero = table.zero_like();
        zero.accumulate_from(&HashMap::new());
        assert_eq!(zero, table);
    }

    #[test]
    fn options_hold_the_cotangent_of_their_value() {
        let mut grad = Some(3.0f64).zero_like();
        assert_eq!(grad, Some(0.0));
        grad.accumulate_from(&Some(1.5));
        assert_eq!(grad, Some(1.5));
        let mut none: Option<f64> = None;
        none.accumulate_from(&None);
        assert_eq!(none.zero_like(), None);
    }

    #[test]
    #[should_panic(expected = "one gradient is `Some` and the other `None`")]
    fn options_of_different_shapes_do_not_accumulate() {
        let mut grad = Some(0.0f64);
        grad.accumulate_from(&None);
    }
}
