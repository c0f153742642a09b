use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let squares: Vec<f64> = x.iter().map(|v| v * v).collect();
    let mut window = &squares[0..2];
    let mut s = 0.0;
    for k in 1..x.len() - 1 {
        s += window[0] * window[1];
        window = &squares[k..k + 2];
    }
    s
}

fn main() {}
