use autodiff::prelude::*;

#[differentiate]
fn f(x: [f64; 4]) -> f64 {
    let [first, rest @ ..] = x;
    first * rest[0]
}

fn main() {}
