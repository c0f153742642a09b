use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    if x > 10.0 {
        todo!();
    }
    x.sin()
}

fn main() {}
