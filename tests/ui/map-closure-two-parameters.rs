use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: &DMatrix<f64>) -> f64 {
    let y = m.map(|a, b| a * b);
    y.sum()
}

fn main() {}
