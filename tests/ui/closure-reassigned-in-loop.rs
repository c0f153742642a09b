use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut step = |v: f64| v * 0.5;
    let mut y = x;
    for _ in 0..3 {
        y = step(y);
        step = |v: f64| v * 0.25;
    }
    y
}

fn main() {}
