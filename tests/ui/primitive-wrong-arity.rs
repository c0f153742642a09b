use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    x.powi()
}

fn main() {}
