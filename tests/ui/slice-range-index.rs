use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let rest = &x[1..];
    rest[0] * x[0]
}

fn main() {}
