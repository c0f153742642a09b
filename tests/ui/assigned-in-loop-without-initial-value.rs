use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s;
    for i in 0..x.len() {
        s = x[i] * x[i];
        if s > 1.0 {
            return s;
        }
    }
    x[0]
}

fn main() {}
