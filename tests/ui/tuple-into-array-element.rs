use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut v = vec![0.0; 2];
    v[0] = (x, x);
    v[1]
}

fn main() {}
