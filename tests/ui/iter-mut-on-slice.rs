use autodiff::prelude::*;

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    for o in v[1..].iter_mut() {
        *o *= 2.0;
    }
    v.iter().sum::<f64>()
}

fn main() {}
