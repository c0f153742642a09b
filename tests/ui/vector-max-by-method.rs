use autodiff::nalgebra::DVector;
use autodiff::prelude::*;

// nalgebra's largest element: a method of the same name as the float `max`, without its rule
#[differentiate]
fn log_sum_exp(x: &DVector<f64>) -> f64 {
    let m = x.max();
    let mut s = 0.0;
    for i in 0..x.len() {
        s += (x[i] - m).exp();
    }
    m + s.ln()
}

fn main() {}
