use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(m: &DMatrix<f64>) -> f64 {
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    let activated = m.map(|v| sigmoid(v));
    activated.norm_squared()
}

fn main() {}
