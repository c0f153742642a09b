use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: DMatrix<f64>) -> f64 {
    let activated = m.map(|v| crate);
    activated.sum()
}

fn main() {}
