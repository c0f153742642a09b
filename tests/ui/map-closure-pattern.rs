use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: &DMatrix<f64>) -> f64 {
    let y = m.map(|&v| v * v);
    y.sum()
}

fn main() {}
