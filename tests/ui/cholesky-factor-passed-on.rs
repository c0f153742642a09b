use autodiff::nalgebra::{Cholesky, DMatrix, DVector, Dyn};
use autodiff::prelude::*;

fn quadratic(c: &Cholesky<f64, Dyn>, b: &DVector<f64>) -> f64 {
    b.dot(&c.solve(b))
}

#[differentiate]
fn f(a: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
    let c = a.clone().cholesky().unwrap();
    quadratic(&c, b)
}

fn main() {}
