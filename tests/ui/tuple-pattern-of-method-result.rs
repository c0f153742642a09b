use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let (head, tail) = x.split_at(1);
    head[0] * tail[0]
}

fn main() {}
