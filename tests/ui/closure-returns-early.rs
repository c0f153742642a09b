use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let safe_sqrt = |v: f64| {
        if v < 0.0 {
            return 0.0;
        }
        v.sqrt()
    };
    safe_sqrt(x) * x
}

fn main() {}
