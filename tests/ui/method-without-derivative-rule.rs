use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    x.to_bits() as f64
}

fn main() {}
