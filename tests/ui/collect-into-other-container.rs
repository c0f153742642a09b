use autodiff::prelude::*;
use std::collections::VecDeque;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let y = x.iter().map(|v| v * v).collect::<VecDeque<f64>>();
    y[0]
}

fn main() {}
