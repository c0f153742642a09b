use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    <f64 as Float>::sin(x)
}

fn main() {}
