use autodiff::prelude::*;

pub struct Point {
    pub weight: f64,
}

fn make(x: f64) -> Point {
    Point { weight: x }
}

#[differentiate]
fn f(x: f64) -> f64 {
    let p = make(x);
    p.weight * x
}

fn main() {}
