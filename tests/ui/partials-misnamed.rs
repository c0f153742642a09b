use autodiff::prelude::*;

#[differentiate(partials(x = 1.0, n = 0.0, z = 2.0))]
fn shifted(x: f64, n: usize) -> f64 {
    x + n as f64
}

fn main() {}
