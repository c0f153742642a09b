use autodiff::prelude::*;

#[differentiate(wrt(x), partials(x = 1.0))]
fn shifted(x: f64) -> f64 {
    x + 1.0
}

fn main() {}
