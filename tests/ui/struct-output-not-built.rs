// A function returning a struct must build it with a struct expression.
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
