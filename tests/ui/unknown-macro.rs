use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    if x > 10.0 {
        let _label = format!("x = {x}");
    }
    x.sin()
}

fn main() {}
