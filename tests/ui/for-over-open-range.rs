use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut y = x;
    for i in 0.. {
        if i > 3 {
            break;
        }
        y = y * x;
    }
    y
}

fn main() {}
