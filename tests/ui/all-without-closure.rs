use autodiff::prelude::*;

fn positive(v: &f64) -> bool {
    *v > 0.0
}

#[differentiate]
fn f(x: &[f64]) -> f64 {
    if x.iter().all(positive) {
        x[0]
    } else {
        x[1]
    }
}

fn main() {}
