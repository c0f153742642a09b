use autodiff::prelude::*;

#[differentiate]
fn written(x: &[f64; 3]) -> f64 {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = x[i] * x[j];
        }
    }
    m[0][1] + m[2][2]
}

#[differentiate]
fn built(x: f64, y: f64) -> f64 {
    let m = [[x, y], [y * x, 1.0]];
    m[1][0] + m[0][1] * m[0][0]
}

fn main() {}
