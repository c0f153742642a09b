// A parameter returned as a struct: it is rebuilt from its fields.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
fn f(s: &State) -> State {
    s.clone()
}

fn main() {}
