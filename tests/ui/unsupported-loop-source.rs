use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in (0..x.len()).map(|i| i * 2) {
        s += x[i];
    }
    s
}

fn main() {}
