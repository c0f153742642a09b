use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, label: &str) -> f64 {
    println!(label);
    x.sin()
}

fn main() {}
