use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = std::convert::identity(x) + dbg!(x);
    y.sin()
}

fn main() {}
