use autodiff::prelude::*;

fn square(v: &f64) -> f64 {
    v * v
}

#[differentiate]
fn f(x: &[f64]) -> f64 {
    x.iter().map(square).sum::<f64>()
}

fn main() {}
