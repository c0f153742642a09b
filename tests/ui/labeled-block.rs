use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = 'compute: {
        if x > 1.0 {
            break 'compute x;
        }
        x * x
    };
    y.sin()
}

fn main() {}
