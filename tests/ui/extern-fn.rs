use autodiff::prelude::*;

#[differentiate]
extern "C" fn f(x: f64) -> f64 {
    x.sin()
}

fn main() {}
