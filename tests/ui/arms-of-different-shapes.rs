use autodiff::prelude::*;

#[differentiate]
fn g(x: f64) -> (f64, f64) {
    (x.sin(), x.cos())
}

#[differentiate]
fn f(x: f64) -> f64 {
    let (a, b) = if x > 0.0 { g(x) } else { (x, x) };
    a * b
}

fn main() {}
