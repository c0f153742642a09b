use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64], c: f64) -> f64 {
    let s = if c > 0.0 { &x[0..2] } else { &x[1..3] };
    s[0] * s[1]
}

fn main() {}
