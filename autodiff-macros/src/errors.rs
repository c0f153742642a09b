//! Collects every error found while expanding one function, each at its narrowest span.

use proc_macro2::{Span, TokenStream};
use std::fmt::Display;

/// An accumulator of spanned errors, turned into `compile_error!`s at the end.
#[derive(Default)]
pub struct Errors {
    errors: Vec<syn::Error>,
    /// Failures that rustc reports itself on the user's own function (an assignment to a
    /// constant, a use before initialisation): no message of ours, only no generated code.
    silent: usize,
}

impl Errors {
    /// Records an error at `span`.
    pub fn push(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an error spanning the tokens of `tokens`.
    pub fn push_spanned(&mut self, tokens: impl quote::ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an already built error.
    pub fn push_error(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Whether nothing went wrong.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.silent == 0
    }

    /// Records a failure that rustc already reports on the user's code.
    pub fn fail_silently(&mut self) {
        self.silent += 1;
    }

    /// Number of errors so far.
    pub fn len(&self) -> usize {
        self.errors.len() + self.silent
    }

    /// Takes over the errors of `other`, each message followed by `note`.
    pub fn append_with_note(&mut self, other: Errors, note: &str) {
        for error in other.errors {
            self.errors
                .push(syn::Error::new(error.span(), format!("{error}{note}")));
        }
        self.silent += other.silent;
    }

    /// The errors as `compile_error!` invocations.
    pub fn to_compile_errors(&self) -> TokenStream {
        self.errors
            .iter()
            .map(syn::Error::to_compile_error)
            .collect()
    }

    /// The messages, for tests.
    #[cfg(test)]
    pub fn messages(&self) -> Vec<String> {
        self.errors.iter().map(|e| e.to_string()).collect()
    }
}
