// A struct with a vector field, returned by a differentiated function and kept in a loop
// whose last value is not used: its cotangent would start at a zero of unknown length.
use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
pub struct Trace {
    pub x: f64,
    pub weights: Vec<f64>,
}

#[differentiate]
fn advance(t: &Trace, dt: f64) -> Trace {
    Trace {
        x: t.x + dt * t.weights[0],
        weights: t.weights.clone(),
    }
}

#[differentiate]
fn observe(t: &Trace) -> f64 {
    t.x * t.x
}

#[differentiate]
fn run(t0: &Trace, dt: f64, n: usize) -> f64 {
    let mut t: Trace = advance(t0, dt);
    let mut total = observe(&t);
    for _ in 1..n {
        t = advance(&t, dt);
        total += observe(&t);
    }
    total
}

fn main() {}
