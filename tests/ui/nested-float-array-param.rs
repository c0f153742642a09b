use autodiff::prelude::*;

#[differentiate]
fn det2(m: &[[f64; 2]; 2]) -> f64 {
    m[0][0] * m[1][1] - m[0][1] * m[1][0]
}

fn main() {}
