use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let f = |a: f64| a * 2.0;
    f(x)
}

fn main() {}
