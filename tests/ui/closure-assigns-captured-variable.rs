use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut count = 0.0;
    let s = x
        .iter()
        .map(|v| {
            count += 1.0;
            v * 2.0
        })
        .sum::<f64>();
    s + count
}

fn main() {}
