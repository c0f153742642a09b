// A struct passed to a function holds one value per field.
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
fn total(o: &Outer) -> f64 {
    o.inner.a + o.b
}

#[differentiate]
fn f(x: f64) -> f64 {
    let o = Outer {
        inner: Inner { a: x },
        b: x * x,
    };
    total(&o)
}

fn main() {}
