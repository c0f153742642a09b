use autodiff::prelude::*;
use std::collections::HashMap;

#[differentiate]
fn f(x: f64, table: HashMap<u32, f64>) -> f64 {
    x * table.len() as f64
}

fn main() {}
