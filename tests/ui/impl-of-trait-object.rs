use autodiff::prelude::*;

trait Shape {
    fn scale(&self) -> f64;
}

#[differentiate]
impl dyn Shape {
    #[differentiate]
    fn area(&self, x: f64) -> f64 {
        self.scale() * x * x
    }
}

fn main() {}
