use autodiff::prelude::*;

type Real = f64;

#[differentiate]
fn squared(x: f64) -> f64 {
    let y = x as Real;
    y * y
}

#[differentiate]
fn aliased(x: Real) -> Real {
    x * x
}

fn main() {}
