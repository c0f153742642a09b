use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for [a, b] in x.chunks(2) {
        s += a * b;
    }
    s
}

fn main() {}
