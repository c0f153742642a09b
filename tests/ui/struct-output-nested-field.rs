// Each field of a returned struct is one value.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct Inner {
    pub a: f64,
}

#[derive(Differentiable, Clone)]
pub struct Outer {
    pub inner: Inner,
    pub b: f64,
}

#[differentiate]
fn f(x: f64) -> Outer {
    Outer {
        inner: Inner { a: x },
        b: x * x,
    }
}

fn main() {}
