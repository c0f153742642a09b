use autodiff::nalgebra::Vector3;
use autodiff::prelude::*;

#[differentiate]
fn doubled(r: &Vector3<f64>) -> Vector3<f64> {
    r * 2.0
}

#[differentiate]
fn f(r: &Vector3<f64>) -> f64 {
    let t = doubled(r);
    t.x * r.y
}

#[differentiate]
fn typed(r: &Vector3<f64>) -> f64 {
    let t: Vector3<f64> = doubled(r);
    t.x * r.y
}

fn main() {}
