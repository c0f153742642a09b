use autodiff::prelude::*;

#[differentiate(partials(x = 1.0))]
fn total(x: &[f64]) -> f64 {
    x.iter().sum()
}

#[differentiate(partials(x = 1.0))]
fn pair(x: f64) -> (f64, f64) {
    (x, x)
}

fn main() {}
