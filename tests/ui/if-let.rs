use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, n: i32) -> f64 {
    if let Some(k) = n.checked_add(1) {
        x.powi(k)
    } else {
        x
    }
}

fn main() {}
