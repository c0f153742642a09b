use autodiff::prelude::*;

#[differentiate]
fn f(xs: [f64; 3]) -> f64 {
    let squares = xs.map(|v| v * v);
    squares[0] + squares[2]
}

fn main() {}
