use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut total = 0.0;
    let mut add = |v: f64| total += v * v;
    add(x);
    add(2.0 * x);
    total
}

fn main() {}
