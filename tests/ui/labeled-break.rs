use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    'outer: for i in 0..x.len() {
        for j in 0..x.len() {
            s += x[i] * x[j];
            if s > 10.0 {
                break 'outer;
            }
        }
    }
    s
}

fn main() {}
