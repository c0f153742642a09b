use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
struct Model {
    w: f64,
}

impl Model {
    fn predict(&self, x: f64) -> f64 {
        self.w * x
    }
}

#[differentiate]
fn loss(m: &Model, x: f64) -> f64 {
    let p = m.predict(x);
    p * p
}

fn main() {}
