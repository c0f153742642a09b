use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    x.to_vec().push(1.0);
    x[0]
}

fn main() {}
