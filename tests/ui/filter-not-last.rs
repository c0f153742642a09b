use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for (i, v) in x.iter().filter(|v| **v > 0.0).enumerate() {
        s += v.ln() * i as f64;
    }
    s
}

fn main() {}
