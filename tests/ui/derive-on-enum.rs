use autodiff::prelude::*;

#[derive(Differentiable, Clone)]
enum Shape {
    Circle(f64),
    Square(f64),
}

fn main() {}
