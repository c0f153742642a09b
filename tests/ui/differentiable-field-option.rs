use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
struct Problem {
    h: f64,
    #[differentiable(constant)]
    label: String,
}

fn main() {}
