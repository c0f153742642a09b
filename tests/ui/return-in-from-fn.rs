use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let m = DMatrix::from_fn(2, 2, |i, j| {
        if i == j {
            return 1.0;
        }
        x[i] * x[j]
    });
    m.sum()
}

fn main() {}
