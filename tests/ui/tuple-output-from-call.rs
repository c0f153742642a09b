use autodiff::prelude::*;

#[differentiate]
fn g(x: f64) -> (f64, f64) {
    (x.sin(), x.cos())
}

#[differentiate]
fn f(x: f64) -> (f64, f64) {
    g(x)
}

fn main() {}
