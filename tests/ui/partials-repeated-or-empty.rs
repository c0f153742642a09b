use autodiff::prelude::*;

#[differentiate(partials(x = 1.0, x = 2.0))]
fn twice_named(x: f64) -> f64 {
    x
}

#[differentiate(partials())]
fn empty(x: f64) -> f64 {
    x
}

#[differentiate(partials(x = 1.0), partials(x = 1.0))]
fn option_twice(x: f64) -> f64 {
    x
}

fn main() {}
