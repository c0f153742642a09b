use autodiff::prelude::*;

#[derive(Clone)]
pub struct Data<'a> {
    pub xs: &'a [f64],
}

#[differentiate(wrt(w))]
pub fn fit(w: f64, data: &Data<'_>) -> f64 {
    let mut s = 0.0;
    for i in 0..data.xs.len() {
        let r = w * data.xs[i];
        s += r * r;
    }
    s
}

fn main() {}
