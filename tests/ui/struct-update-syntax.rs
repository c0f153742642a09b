// Struct update syntax takes the other fields from a value the macro cannot take apart.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct Pair {
    pub a: f64,
    pub b: f64,
}

#[differentiate]
fn f(x: f64, base: &Pair) -> Pair {
    Pair { a: x * base.a, ..base.clone() }
}

fn main() {}
