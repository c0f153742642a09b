// The fix suggested by `uninferable-saved-type.rs`, applied: this one must fail only
// because of the deliberate type error at the end, proving the annotation was accepted.
use autodiff::prelude::*;

#[differentiate]
fn g(x: f64) -> f64 {
    x.sin()
}

#[differentiate]
fn f(x: f64, y: f32) -> f64 {
    let value: f64 = g(x).exp();
    value as f64 + y as f64
}

fn main() {
    let _: (f64, (f64, f32)) = f_grad(1.0, 2.0);
    let _: () = f_grad(1.0, 2.0);
}
