use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let later = async |v: f64| v * 2.0;
    let _ = later;
    x
}

fn main() {}
