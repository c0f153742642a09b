//! The seed document's two worked examples: the function `ln(x1) + x1*x2 - sin(x2)` and the
//! PyTorch snippet `loss = ((x + 1) - 2x)^2`, differentiated at compile time.

use autodiff::prelude::*;

/// f(x1, x2) = ln(x1) + x1*x2 - sin(x2)
#[differentiate]
fn f(x1: f64, x2: f64) -> f64 {
    x1.ln() + x1 * x2 - x2.sin()
}

/// The PyTorch snippet: y1 = x + 1, y2 = 2x, loss = (y1 - y2)^2.
#[differentiate]
fn loss(x: f64) -> f64 {
    let y1 = x + 1.0;
    let y2 = 2.0 * x;
    (y1 - y2).powi(2)
}

fn main() {
    let (value, (d_x1, d_x2)) = f_grad(2.0, 5.0);
    println!("f(x1, x2) = ln(x1) + x1*x2 - sin(x2) at (2, 5)");
    println!(
        "  value            {value} (the untouched f gives {})",
        f(2.0, 5.0)
    );
    println!("  gradient         ({d_x1}, {d_x2})");
    println!(
        "  expected         (1/x1 + x2, x1 - cos(x2)) = ({}, {})",
        1.0 / 2.0 + 5.0,
        2.0 - 5.0f64.cos()
    );
    println!(
        "  saved for backward: {} bytes",
        std::mem::size_of::<FPullback>()
    );

    let (value, d_x) = loss_grad(3.0);
    println!();
    println!("loss = ((x + 1) - 2x)^2 at x = 3 (the PyTorch snippet)");
    println!(
        "  loss             {value} (the untouched loss gives {})",
        loss(3.0)
    );
    println!("  dloss/dx         {d_x}");

    // Gradients are returned values: calling backward twice does not accumulate anything.
    let (_, pullback) = loss_pullback(3.0);
    assert_eq!(pullback.backward(1.0), pullback.backward(1.0));
}
