use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut p = (x, 1.0);
    p.1 = 2.0 * x;
    let (a, b) = p;
    a * b
}

fn main() {}
