use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut m = vec![vec![0.0; 2]; 2];
    m[0][1] = x;
    x
}

fn main() {}
