use autodiff::nalgebra::DMatrix;
use autodiff::prelude::*;

#[derive(Clone)]
pub struct Data {
    pub a: DMatrix<f64>,
    pub b: DMatrix<f64>,
}

// the product of two fields has no type the macro can see
#[differentiate(wrt(w))]
pub fn f(w: &DMatrix<f64>, data: &Data) -> f64 {
    let m = &data.a * &data.b;
    let e = m.map(|v| v.exp());
    w.dot(&e)
}

fn main() {}
