use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64], edges: &[(usize, usize, usize)]) -> f64 {
    let (a, ..) = edges[0];
    x[a]
}

fn main() {}
