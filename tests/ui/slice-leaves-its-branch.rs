use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64], c: f64) -> f64 {
    let squares: Vec<f64> = x.iter().map(|v| v * v).collect();
    let s = if c > 0.0 { &squares[0..2] } else { &squares[1..3] };
    s[0] * s[1]
}

fn main() {}
