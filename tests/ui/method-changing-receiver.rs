use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v.reverse();
    v[0] * 2.0 + v[1]
}

fn main() {}
