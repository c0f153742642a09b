use autodiff::prelude::*;

// `scale` is left out of the public gradient, but a caller's derivative through it would be
// lost in `to_f64`
#[differentiate(wrt(x))]
fn scaled<T: Float>(x: f64, scale: T) -> f64 {
    x * scale.to_f64().unwrap_or(1.0)
}

fn main() {}
