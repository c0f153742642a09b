use autodiff::prelude::*;

trait Halve {
    fn halve(&mut self);
}

impl Halve for Vec<f64> {
    fn halve(&mut self) {
        for v in self.iter_mut() {
            *v *= 0.5;
        }
    }
}

#[differentiate]
fn f(x: &[f64]) -> f64 {
    let mut v = x.to_vec();
    v.halve();
    v[0] * v[1]
}

fn main() {}
