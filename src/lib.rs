//! Reverse-mode automatic differentiation of ordinary Rust functions by source transformation.
//!
//! Put `#[differentiate]` on a numeric function and, next to it, the compiler gets its adjoint:
//!
//! ```
//! use autodiff::prelude::*;
//!
//! #[differentiate]
//! fn f(x1: f64, x2: f64) -> f64 {
//!     x1.ln() + x1 * x2 - x2.sin()
//! }
//!
//! // value and gradient in one call
//! let (y, (d_x1, d_x2)) = f_grad(2.0, 5.0);
//! assert!((y - 11.652071455223084).abs() < 1e-14);
//! assert!((d_x1 - 5.5).abs() < 1e-14); // 1/x1 + x2
//! assert!((d_x2 - (2.0 - 5.0f64.cos())).abs() < 1e-14); // x1 - cos(x2)
//!
//! // or the forward pass now and the vector-Jacobian product later, as often as needed
//! let (_, pullback) = f_pullback(2.0, 5.0);
//! let (d_x1, _) = pullback.backward(2.0);
//! assert!((d_x1 - 11.0).abs() < 1e-14);
//! ```
//!
//! A function returning a fixed-length array or a tuple of floats has a Jacobian:
//! `jacobian()` on its pullback gives every row, `backward` of each unit cotangent, with the
//! rows' backward passes run together.
//!
//! ```
//! use autodiff::prelude::*;
//!
//! #[differentiate]
//! fn polar(r: f64, t: f64) -> [f64; 2] {
//!     [r * t.cos(), r * t.sin()]
//! }
//!
//! let (_, pullback) = polar_pullback(2.0, 0.5);
//! let [(dx_dr, dx_dt), (dy_dr, dy_dt)] = pullback.jacobian();
//! assert_eq!((dx_dr, dx_dt), pullback.backward([1.0, 0.0]));
//! assert!((dx_dr - 0.5f64.cos()).abs() < 1e-15); // cos t
//! assert!((dx_dt + 2.0 * 0.5f64.sin()).abs() < 1e-15); // -r sin t
//! assert!((dy_dr - 0.5f64.sin()).abs() < 1e-15); // sin t
//! assert!((dy_dt - 2.0 * 0.5f64.cos()).abs() < 1e-15); // r cos t
//! ```
//!
//! A function returning a `Vec` has one too, a row per element of the output:
//!
//! ```
//! use autodiff::prelude::*;
//!
//! #[differentiate]
//! fn scaled(x: &[f64], s: f64) -> Vec<f64> {
//!     x.iter().map(|v| v * s).collect()
//! }
//!
//! let (_, pullback) = scaled_pullback(&[1.0, 2.0], 3.0);
//! let rows = pullback.jacobian();
//! assert_eq!(rows[1], (vec![0.0, 3.0], 2.0)); // ∂(x₁ s)/∂x = (0, s), ∂/∂s = x₁
//! ```
//!
//! Helper closures bound by `let` are inlined where they are called, and assertions check the
//! forward pass without taking part in the derivative:
//!
//! ```
//! use autodiff::prelude::*;
//!
//! #[differentiate(wrt(w))]
//! fn logistic_loss(w: &[f64], x: &[f64], label: f64) -> f64 {
//!     assert_eq!(w.len(), x.len(), "one weight per feature");
//!     let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
//!     let p = sigmoid(w.iter().zip(x).map(|(a, b)| a * b).sum::<f64>());
//!     -(label * p.ln() + (1.0 - label) * (1.0 - p).ln())
//! }
//!
//! let (w, x) = ([0.5, -0.25], [1.0, 2.0]);
//! let (_, dw) = logistic_loss_grad(&w, &x, 1.0);
//! // ∂/∂w = (p - label) x, with p = sigmoid(w · x) = sigmoid(0) = 1/2
//! assert!((dw[0] + 0.5).abs() < 1e-15 && (dw[1] + 1.0).abs() < 1e-15);
//! ```
//!
//! Methods are differentiated with the attribute on their `impl` block as well; the
//! receiver is the first argument, so its cotangent (a struct of the same type) comes first:
//!
//! ```
//! use autodiff::prelude::*;
//!
//! #[derive(Differentiable, Clone, Debug)]
//! struct Line {
//!     slope: f64,
//!     intercept: f64,
//! }
//!
//! #[differentiate]
//! impl Line {
//!     #[differentiate]
//!     fn squared_error(&self, x: f64, y: f64) -> f64 {
//!         let r = self.slope * x + self.intercept - y;
//!         r * r
//!     }
//! }
//!
//! let line = Line { slope: 2.0, intercept: 1.0 };
//! let (e, (d_line, d_x, d_y)) = line.squared_error_grad(3.0, 6.0);
//! // r = 1: ∂/∂slope = 2 r x, ∂/∂intercept = 2 r, ∂/∂x = 2 r slope, ∂/∂y = -2 r
//! assert_eq!(e, 1.0);
//! assert_eq!((d_line.slope, d_line.intercept, d_x, d_y), (6.0, 2.0, 4.0, -2.0));
//! ```
//!
//! Code the macro cannot see (a C library, a solver) is wrapped in a function whose partial
//! derivatives are given; it composes like any differentiated function:
//!
//! ```
//! use autodiff::prelude::*;
//!
//! /// softplus from elsewhere, with its derivative, the logistic function
//! #[differentiate(partials(x = 1.0 / (1.0 + (-x).exp())))]
//! fn softplus(x: f64) -> f64 {
//!     x.exp().ln_1p() // stands for a call the macro does not read
//! }
//!
//! #[differentiate]
//! fn layer(w: f64, x: f64) -> f64 {
//!     softplus(w * x) * x
//! }
//!
//! let (_, (d_w, _)) = layer_grad(0.5, 2.0);
//! // ∂/∂w softplus(w x) x = logistic(w x) x²
//! assert!((d_w - 4.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
//! ```
//!
//! See `docs/supported.md` in the repository for the supported subset of Rust and the list of
//! primitives, and `docs/design.md` for how the macro works.

pub use autodiff_macros::{differentiate, Differentiable};
pub use autodiff_runtime::nalgebra;
/// The `num-traits` the runtime is built with, for bounds beyond [`prelude::Float`] in
/// generic differentiated code (`FloatConst` for `T::PI()`, `NumCast`), so that they are the
/// traits [`Dual`] implements.
///
/// ```
/// use autodiff::num_traits::FloatConst;
/// use autodiff::prelude::*;
///
/// #[differentiate]
/// fn circle_area<T: Float + FloatConst>(r: T) -> T {
///     T::PI() * r * r
/// }
///
/// // d/dr π r² = 2 π r
/// let (_, d_r) = circle_area_grad(2.0);
/// assert!((d_r - 4.0 * std::f64::consts::PI).abs() < 1e-12);
/// ```
pub use autodiff_runtime::num_traits;
pub use autodiff_runtime::{
    check_gradient, finite_difference_gradient, relative_error, Adam, Differentiable, Dual,
    ParamVisitor, Sgd, Tensor,
};

/// Everything a user of the library needs, in one import.
pub mod prelude {
    pub use crate::{differentiate, Differentiable};
    pub use autodiff_runtime::num_traits::Float;
    pub use autodiff_runtime::Tensor;
    pub use autodiff_runtime::{check_gradient, finite_difference_gradient, Adam, Dual, Sgd};
}

/// Items the generated code refers to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use autodiff_runtime::num_traits;
    pub use autodiff_runtime::rules;
    pub use autodiff_runtime::{
        accumulate, accumulate_with, all_zero, check_cotangent_len, check_cotangent_shape,
        finish_gradient_buffer, gradient_buffer, one, one_like, reused_stack, scale_elements,
        sum_identity, zero, ArrayStorage, ConstantCotangent, Cotangent, DropGradient, GradientSink,
        ParameterSetCotangent, ReturnGradient, Save, ScalarCotangent, ShapeOf, ZeroCotangent,
    };
    pub use autodiff_runtime::{Differentiable, ParamVisitor};
    pub use core::marker::PhantomData;
}
