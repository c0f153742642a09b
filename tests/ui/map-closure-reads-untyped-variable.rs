use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: &DMatrix<f64>) -> f64 {
    let k = 3;
    let y = m.map(|v| v.powi(k));
    y.sum()
}

fn main() {}
