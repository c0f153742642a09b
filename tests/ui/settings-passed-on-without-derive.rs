use autodiff::prelude::*;

// read by `misfit` alone, `Settings` would need only `Clone`; passed on by `total`, it must
// derive `Differentiable` (the call goes through `misfit`'s pullback of every argument)
#[derive(Clone)]
pub struct Settings {
    pub scale: f64,
}

#[differentiate(wrt(x))]
pub fn misfit(x: f64, settings: &Settings) -> f64 {
    settings.scale * x * x
}

#[differentiate(wrt(x))]
pub fn total(x: f64, settings: &Settings) -> f64 {
    misfit(x, settings) + x
}

fn main() {}
