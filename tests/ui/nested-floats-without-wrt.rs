use autodiff::prelude::*;

#[differentiate]
fn loss(w: f64, xs: &[Vec<f64>]) -> f64 {
    let mut s = 0.0;
    for x in xs {
        s += (w * x[0] - x[1]).powi(2);
    }
    s
}

fn main() {}
