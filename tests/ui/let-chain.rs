use autodiff::prelude::*;

#[derive(Clone, Copy)]
pub enum Act {
    Tanh,
    Linear,
}

#[differentiate(wrt(x))]
fn f(x: f64, a: Act, on: bool) -> f64 {
    if let Act::Tanh = a && on {
        x.tanh()
    } else {
        x
    }
}

fn main() {}
