use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for _item in x.iter().enumerate() {
        s += x[0];
    }
    s
}

fn main() {}
