use autodiff::prelude::*;

#[differentiate(wrt(x))]
fn f(x: f64, y: f64) -> f64 {
    if x > 10.0 {
        let _label = format!("x = {x}");
    }
    x * y
}

fn main() {
    let (value, dx): (f64, f64) = f_grad(1.0, 2.0);
    let (same, pullback) = f_pullback(1.0, 2.0);
    let dx2: f64 = pullback.backward(1.0);
    println!("{value} {dx} {same} {dx2}");
}
