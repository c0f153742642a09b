use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, c: bool) -> f64 {
    let a = if c { return 1.0 } else { 2.0 };
    a * x
}

fn main() {}
