use autodiff::prelude::*;

#[differentiate]
fn scaled(x: f64, name: &String) -> f64 {
    x * name.len() as f64
}

#[differentiate]
fn f(x: f64, name: &String) -> f64 {
    scaled(x, name) * x
}

fn main() {}
