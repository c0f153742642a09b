use autodiff::prelude::*;

fn apply(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    f(x)
}

// a closure written as an argument: only closures bound by `let` (and those of iterator
// chains and `map`) are supported
#[differentiate]
fn f(x: f64) -> f64 {
    apply(|a: f64| a * 2.0, x)
}

fn main() {}
