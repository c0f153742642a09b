use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let message = "x must be positive";
    assert!(x > 0.0, message);
    x.sqrt()
}

fn main() {}
