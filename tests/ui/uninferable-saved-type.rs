use autodiff::prelude::*;

#[differentiate]
fn g(x: f64) -> f64 {
    x.sin()
}

#[differentiate]
fn f(x: f64, y: f32) -> f64 {
    g(x).exp() as f64 + y as f64
}

fn main() {}
