use autodiff::prelude::*;

#[allow(dead_code)]
struct Pair {
    a: f64,
    b: f64,
}

#[differentiate]
fn f(x: f64) -> f64 {
    let _p = Pair { a: x, b: 2.0 };
    x * 3.0
}

fn main() {}
