//! Vector-Jacobian-product rules for the scalar primitives, one function per argument.
//!
//! # Calling convention
//!
//! For a primitive `p` whose arguments are numbered from 0 (the receiver of a method is
//! argument 0), the rule `p_dk` returns the cotangent of argument `k`. Its parameters are
//! the forward values the rule needs, each by reference and in the order the rule lists
//! them, followed by the output cotangent `d` by value:
//!
//! ```text
//! pub fn p_dk<T: Float>(reads: &T, ..., d: T) -> T
//! ```
//!
//! In the docs, `x`, `a` and `b` name arguments, `y` names the primitive's output, `ȳ` the
//! output cotangent `d`, and `x̄` the returned cotangent. Rules that can be written in terms
//! of `y` read `y` rather than recompute it.
//!
//! All scalar and array rules are re-exported here, so generated code can name them as
//! `autodiff_runtime::rules::sin_d0` whatever submodule they live in. The [`Tensor`] rules
//! stay in [`tensor`] (`rules::tensor::matmul_d0`), the nalgebra rules in [`linalg`]
//! (`rules::linalg::mul_d0`) and those of the Cholesky factorisation in [`cholesky`]
//! (`rules::cholesky::solve_d0`), since their names repeat the scalar ones.
//!
//! [`Tensor`]: crate::Tensor
//!
//! ```
//! use autodiff_runtime::rules::{mul_d0, mul_d1, sin_d0};
//!
//! // y = a * b at a = 3, b = 4, pulled back from ȳ = 1.
//! assert_eq!(mul_d0(&4.0, 1.0), 4.0);
//! assert_eq!(mul_d1(&3.0, 1.0), 3.0);
//! // y = sin x at x = 0.
//! assert_eq!(sin_d0(&0.0_f64, 2.0), 2.0);
//! ```

/// Defines one `#[inline]` rule per line: `name(reads) = body;`.
///
/// The header `cotangent d;` names the output-cotangent parameter, which every rule takes
/// last and by value. Each read is taken by reference and rebound by value, so bodies are
/// plain arithmetic on `T`.
macro_rules! scalar_rules {
    (
        cotangent $d:ident;
        $( $(#[$doc:meta])* $name:ident( $($read:ident),* ) = $body:expr; )*
    ) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name<T: Float>($($read: &T,)* $d: T) -> T {
                $(let $read = *$read;)*
                $body
            }
        )*
    };
}

mod arith;
mod array;
mod cast;
pub mod cholesky;
mod elementary;
pub mod linalg;
pub mod tensor;

pub use arith::*;
pub use array::*;
pub use cast::*;
pub use elementary::*;
