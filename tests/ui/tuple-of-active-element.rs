use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64], k: usize) -> f64 {
    let (a, b) = x[k];
    a * b
}

fn main() {}
