use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let _a = [x, 2.0 * x];
    x * 3.0
}

fn main() {}
