use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, y: f64) -> f64 {
    let (a, b, c) = (x, y);
    a * b * c
}

fn main() {}
