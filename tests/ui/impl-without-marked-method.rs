use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
struct Model {
    w: f64,
}

#[differentiate]
impl Model {
    fn predict(&self, x: f64) -> f64 {
        self.w * x
    }
}

fn main() {}
