use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
struct Layer {
    w: f64,
}

#[derive(Differentiable, Clone)]
struct Net {
    first: Layer,
}

// `forward` of the field is not #[differentiate]: rustc reports the hidden entry point the
// call looks for
impl Layer {
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
