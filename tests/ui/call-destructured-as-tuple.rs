use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let (a, b) = f64::sin(x);
    a * b
}

fn main() {}
