use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    x.iter().filter(|v| **v > 0.0).sum::<f64>()
}

fn main() {}
