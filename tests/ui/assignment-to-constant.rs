use autodiff::prelude::*;

const SCALE: f64 = 2.0;

#[differentiate]
fn f(x: f64) -> f64 {
    SCALE = x;
    x * SCALE
}

fn main() {}
