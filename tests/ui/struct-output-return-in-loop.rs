// A `return` inside a loop of a function returning a struct.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct State {
    pub x: f64,
    pub v: f64,
}

#[differentiate]
fn f(x: f64, n: usize) -> State {
    let mut s = State { x, v: 0.0 };
    for _ in 0..n {
        if s.x > 10.0 {
            return s;
        }
        s.x = s.x * 2.0;
    }
    s
}

fn main() {}
