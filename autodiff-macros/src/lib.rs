//! The `#[differentiate]` attribute: a small compiler from a Rust function to its adjoint.
//!
//! Stages: `args` (attribute and signature) → `lower` (syn → SSA IR in `ir`) → `remat`
//! (elements of filled arrays read as the expression that filled them) → `last_pick` (a
//! kept element read again where the loop took it) → `hoist`
//! (loop-invariant reads in front of their loops) → `analysis` (activity, to-be-recorded,
//! types) → `codegen` (IR → Rust; `lanes` interleaves the rows of `jacobian`). The primitive
//! table is `primitives`; generated names come from `names`; `methods` turns the marked
//! methods of an `impl` block into free functions for this pipeline.

mod analysis;
mod args;
mod codegen;
mod derive;
mod errors;
mod expand;
mod hoist;
mod ir;
mod lanes;
mod last_pick;
mod lower;
mod methods;
mod names;
mod partials;
mod primitives;
mod remat;

#[cfg(test)]
mod never_panics;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Generates the reverse-mode derivative of a function next to it.
///
/// For `fn f(x1: f64, x2: f64) -> f64` it emits `struct FPullback` (the saved forward
/// values), `fn f_pullback(x1, x2) -> (f64, FPullback)`, `FPullback::backward(&self, d_out)`
/// returning one cotangent per active argument, and `fn f_grad(x1, x2) -> (f64, (f64, f64))`.
/// A function returning `[T; N]` (a literal `N` up to 8), a tuple of floats or a `Vec` of
/// floats also gets `FPullback::jacobian()`, every row of its Jacobian.
///
/// On an inherent `impl` block, together with `#[differentiate]` on some of its methods, it
/// generates `name_pullback` and `name_grad` methods for each of those (the receiver is the
/// first argument) and their pullback structs next to the block.
///
/// Options: `wrt(a, b)` restricts the active arguments; `partials(x = expr, ..)` gives the
/// partial derivative with respect to each float argument instead of deriving them from the
/// body, which is then not read (for code the macro cannot see); `dump` prints the generated
/// code at compile time (as does the environment variable `AUTODIFF_DUMP=f` or
/// `AUTODIFF_DUMP=1`).
#[proc_macro_attribute]
pub fn differentiate(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::differentiate(attr.into(), item.into()).into()
}

/// Implements `Differentiable` for a struct of parameters by delegating to every field, so
/// gradients of functions taking the struct come back as the same struct, and optimizers
/// (`Sgd`, `Adam`) can update it in place.
///
/// A field of a type without `Differentiable` (a mesh, a solver's settings) is marked
/// `#[differentiable(skip)]`: it carries no derivative and is copied into the gradient, so its
/// type must be `Clone`. Integers, `bool`, `String` and the std maps need no mark.
#[proc_macro_derive(Differentiable, attributes(differentiable))]
pub fn derive_differentiable(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input) {
        Ok(input) => derive::differentiable(input).into(),
        Err(error) => error.to_compile_error().into(),
    }
}
