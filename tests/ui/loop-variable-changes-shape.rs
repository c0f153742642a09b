use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut t = x;
    for _ in 0..3 {
        t = (t, x);
    }
    x
}

fn main() {}
