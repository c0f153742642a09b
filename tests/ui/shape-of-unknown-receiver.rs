use autodiff::prelude::*;

// `shape()` is known to give integers only on tensors and nalgebra matrices
#[derive(Differentiable, Clone)]
struct Spring {
    stiffness: f64,
}

impl Spring {
    fn shape(&self) -> f64 {
        self.stiffness * 0.5
    }
}

#[differentiate]
fn energy(s: &Spring, x: f64) -> f64 {
    s.shape() * x * x
}

fn main() {}
