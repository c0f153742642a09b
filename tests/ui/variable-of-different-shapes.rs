use autodiff::prelude::*;

#[differentiate]
fn g(x: f64) -> (f64, f64) {
    (x.sin(), x.cos())
}

#[differentiate]
fn f(x: f64) -> f64 {
    let mut t = (x, x);
    if x > 0.0 {
        t = g(x);
    }
    let (a, b) = t;
    a * b
}

fn main() {}
