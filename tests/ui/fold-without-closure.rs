use autodiff::prelude::*;

fn add(acc: f64, v: &f64) -> f64 {
    acc + v
}

#[differentiate]
fn f(x: &[f64]) -> f64 {
    x.iter().fold(0.0, add)
}

fn main() {}
