use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = unsafe { std::ptr::read(&x) };
    y.sin()
}

fn main() {}
