use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut a: &[f64] = x;
    let mut b: &[f64] = x;
    if x.len() > 1 {
        (a, b) = x.split_at(1);
    }
    a[0] * b[0]
}

fn main() {}
