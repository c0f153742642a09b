use autodiff::prelude::*;

#[differentiate]
fn f(x: f64) -> f64 {
    let mut y = x;
    loop {
        y = y * 2.0;
        if y > 5.0 {
            break 'done;
        }
        if y > 100.0 {
            break;
        }
    }
    y
}

fn main() {}
