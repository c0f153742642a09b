use autodiff::prelude::*;

#[differentiate]
const SCALE: f64 = 2.0;

fn main() {}
