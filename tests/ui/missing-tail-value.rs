use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let y = x * 2.0;
    if y > 0.0 {
        return y;
    }
    std::process::exit(1);
}

fn main() {}
