use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: &DMatrix<f64>, w: &[f64]) -> f64 {
    let y = m.map(|v| (v * w[0]).tanh());
    y.sum()
}

fn main() {}
