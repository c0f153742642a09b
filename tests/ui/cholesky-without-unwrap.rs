use autodiff::nalgebra::{DMatrix, DVector};
use autodiff::prelude::*;

#[differentiate]
fn f(a: &DMatrix<f64>, b: &DVector<f64>) -> f64 {
    let factorisation = a.clone().cholesky();
    let c = factorisation.unwrap();
    c.solve(b).sum()
}

fn main() {}
