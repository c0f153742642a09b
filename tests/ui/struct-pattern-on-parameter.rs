// A struct pattern takes apart a struct built in the function, not a parameter.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
fn f(s: &State) -> f64 {
    let State { x, v } = s.clone();
    x * v
}

fn main() {}
