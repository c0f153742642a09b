use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    x.iter().for_each(|v| {
        if *v < 0.0 {
            return;
        }
        s += v;
    });
    s
}

fn main() {}
