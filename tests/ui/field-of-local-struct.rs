use autodiff::prelude::*;

pub struct Point {
    pub w: f64,
}

fn make(x: f64) -> Point {
    Point { w: x }
}

#[differentiate]
fn f(x: f64) -> f64 {
    let p = make(x);
    p.w * x
}

fn main() {}
