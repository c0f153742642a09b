// Fields of a struct expression are built by name.
use autodiff::prelude::*;

pub struct Pair(pub f64, pub f64);

#[differentiate]
fn f(x: f64) -> f64 {
    let _p = Pair { 0: x, 1: x * x };
    x
}

fn main() {}
