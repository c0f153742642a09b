use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let y: Vec<&f64> = x.iter().collect();
    *y[0]
}

fn main() {}
