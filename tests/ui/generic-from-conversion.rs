use autodiff::prelude::*;

#[differentiate]
fn f<T: Float>(x: T) -> T {
    let y = T::from(x).unwrap();
    y * y
}

fn main() {}
