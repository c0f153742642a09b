// A copy of a parameter set, even with its type written, is not read by field: read the
// parameter's fields.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
fn f(p: &State, k: f64) -> f64 {
    let s: State = p.clone();
    s.x * s.v * k
}

fn main() {}
