use autodiff::prelude::*;

fn apply(f: impl Fn(f64) -> f64, x: f64) -> f64 {
    f(x)
}

#[differentiate]
fn f(x: f64) -> f64 {
    let double = |a: f64| a * 2.0;
    apply(double, x)
}

fn main() {}
