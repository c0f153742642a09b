use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let _it = x.iter();
    x[0]
}

fn main() {}
