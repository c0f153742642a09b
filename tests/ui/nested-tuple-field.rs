use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let t = (x, (x, x));
    t.1 .0
}

fn main() {}
