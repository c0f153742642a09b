// A struct built in the function is read by fields, passed to functions or returned; it is
// not an operand.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
fn f(x: f64) -> f64 {
    let s = State { x, v: 2.0 * x };
    let scaled = s * 2.0;
    scaled
}

fn main() {}
