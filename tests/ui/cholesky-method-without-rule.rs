use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(a: &DMatrix<f64>) -> f64 {
    let c = a.clone().cholesky().unwrap();
    c.l_dirty().sum()
}

fn main() {}
