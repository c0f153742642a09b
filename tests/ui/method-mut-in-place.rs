use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: &DMatrix<f64>) -> f64 {
    let mut a = m.clone();
    a.transpose_mut();
    a[(0, 1)] * 2.0
}

fn main() {}
