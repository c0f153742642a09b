use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut s = x;
    let mut c = x;
    if x > 0.0 {
        (s, c) = x.sin_cos();
    }
    s * c
}

fn main() {}
