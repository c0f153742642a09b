use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) {
    let _ = x * 2.0;
}

fn main() {}
