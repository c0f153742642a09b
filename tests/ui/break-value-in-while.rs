use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut y = x;
    while y < 10.0 {
        y = y * 2.0;
        if y > 5.0 {
            break y;
        }
    }
    y
}

fn main() {}
