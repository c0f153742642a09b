use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let v = vec![x; 2; 3];
    x
}

fn main() {}
