use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    (x.to_vec())[0] = 2.0;
    x[0]
}

fn main() {}
