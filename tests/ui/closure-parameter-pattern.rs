use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, y: f64) -> f64 {
    let product = |(a, b): (f64, f64)| a * b;
    product((x, y))
}

fn main() {}
