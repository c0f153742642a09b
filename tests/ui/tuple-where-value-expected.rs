use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let p = (x, 2.0);
    let q = p * 2.0;
    q
}

fn main() {}
