use autodiff::prelude::*;

#[differentiate]
fn f(x: f64, n: i32) -> f64 {
    match n.checked_add(1) {
        Some(v) => x.powi(v),
        None => x,
    }
}

fn main() {}
