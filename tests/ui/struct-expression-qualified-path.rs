// A struct expression with a qualified path.
use autodiff::prelude::*;

pub struct Pair {
    pub a: f64,
    pub b: f64,
}

pub trait Named {
    type Item;
}

impl Named for f64 {
    type Item = Pair;
}

#[differentiate]
fn f(x: f64) -> f64 {
    let p = <f64 as Named>::Item { a: x, b: x };
    p.a * p.b
}

fn main() {}
