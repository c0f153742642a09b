// A struct built in the function is read by fields or returned, not passed on.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
fn energy(s: &State) -> f64 {
    s.x * s.x + s.v * s.v
}

#[differentiate]
fn f(x: f64) -> f64 {
    let s = State { x, v: 2.0 * x };
    energy(&s)
}

fn main() {}
