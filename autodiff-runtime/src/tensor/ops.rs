//! The operators: broadcasting `+ - *` between tensors, with a scalar on either side, and
//! unary `-`. An owned operand's storage is reused when it already has the result's shape.

use core::ops::{Add, Mul, Neg, Sub};

use super::broadcast::{zip_into_lhs, zip_into_rhs, zip_with};
use super::{Tensor, TensorElement};

macro_rules! binary_op {
    ($Op:ident, $method:ident, $name:literal, $op:tt) => {
        impl<T: TensorElement> $Op<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                zip_with($name, self, rhs, |a, b| a $op b)
            }
        }

        impl<T: TensorElement> $Op<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                zip_into_lhs($name, self, rhs, |a, b| a $op b)
            }
        }

        impl<T: TensorElement> $Op<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                zip_into_rhs($name, self, rhs, |a, b| a $op b)
            }
        }

        impl<T: TensorElement> $Op<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                zip_into_lhs($name, self, &rhs, |a, b| a $op b)
            }
        }

        impl<T: TensorElement> $Op<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                self.map(|a| a $op rhs)
            }
        }

        impl<T: TensorElement> $Op<T> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                self.map_in_place(|a| a $op rhs)
            }
        }

        scalar_lhs!($Op, $method, $op, f32);
        scalar_lhs!($Op, $method, $op, f64);
    };
}

/// `scalar op tensor`, which the orphan rule only allows for concrete scalar types.
macro_rules! scalar_lhs {
    ($Op:ident, $method:ident, $op:tt, $t:ty) => {
        impl $Op<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                rhs.map(|b| self $op b)
            }
        }

        impl $Op<Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn $method(self, rhs: Tensor<$t>) -> Tensor<$t> {
                rhs.map_in_place(|b| self $op b)
            }
        }
    };
}

binary_op!(Add, add, "add", +);
binary_op!(Sub, sub, "sub", -);
binary_op!(Mul, mul, "mul", *);

impl<T: TensorElement> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        self.map(|a| -a)
    }
}

impl<T: TensorElement> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        self.map_in_place(|a| -a)
    }
}
