use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    x.get(1).copied().unwrap_or(0.0) * x[0]
}

fn main() {}
