// The returned struct must be one the function built, not a call's result.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

fn at_rest(x: f64) -> State {
    State { x, v: 0.0 }
}

#[differentiate]
fn f(x: f64) -> State {
    if x > 1.0 {
        return State { x, v: x * x };
    }
    at_rest(x)
}

fn main() {}
