use autodiff::prelude::*;

#[differentiate]
fn g(x: f64, n: &i32) -> f64 {
    x.powi(*n)
}

#[differentiate]
fn f(x: f64, n: &i32) -> f64 {
    g(x, n)
}

fn main() {}
