// A field of a struct built in the function holds one value.
use autodiff::prelude::*;

pub struct Pair {
    pub a: f64,
    pub b: f64,
}

#[differentiate]
fn f(x: f64) -> f64 {
    let mut p = Pair { a: x, b: x };
    p.a = (x, x);
    p.b
}

fn main() {}
