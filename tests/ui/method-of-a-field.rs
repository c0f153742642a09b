use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
struct Layer {
    w: f64,
}

#[derive(Differentiable, Clone)]
struct Net {
    first: Layer,
}

#[differentiate]
impl Layer {
    #[differentiate]
    fn forward(&self, x: f64) -> f64 {
        (self.w * x).tanh()
    }
}

#[differentiate]
impl Net {
    #[differentiate]
    fn forward(&self, x: f64) -> f64 {
        self.first.forward(x)
    }
}

fn main() {}
