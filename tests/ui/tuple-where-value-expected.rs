use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let (a, b) = std::convert::identity((x, 2.0));
    a * b
}

fn main() {}
