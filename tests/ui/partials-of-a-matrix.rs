use autodiff::nalgebra::DVector;
use autodiff::prelude::*;

#[differentiate(partials(x = x.clone()))]
fn total(x: &DVector<f64>) -> f64 {
    x.sum()
}

#[differentiate(partials(x = 1.0))]
fn pair(x: f64) -> (f64, f64) {
    (x, x)
}

fn main() {}
