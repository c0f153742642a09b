use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    let s: f64 = v.iter_mut().map(|o| {
        *o *= 2.0;
        *o
    }).sum();
    s + v[0]
}

fn main() {}
