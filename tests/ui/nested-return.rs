use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, c: bool) -> f64 {
    return if c { return x } else { 2.0 * x };
}

fn main() {}
