use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = {
        use std::f64::consts::PI;
        x * PI
    };
    y * y
}

fn main() {}
