use autodiff::nalgebra::DVector;
use autodiff::prelude::*;

#[differentiate]
fn affine(x: &DVector<f64>) -> DVector<f64> {
    x * 2.0
}

// the callee's output type is not visible here: `h` needs its type written
#[differentiate]
fn f(xs: &[f64]) -> f64 {
    let x = DVector::from_column_slice(xs);
    let h = affine(&x).map(|v| v.tanh());
    h.sum()
}

fn main() {}
