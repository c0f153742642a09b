use autodiff::prelude::*;

// Each `if` whose branch may return doubles the code after it: 2^17 paths.
#[differentiate]
fn f(x: f64) -> f64 {
    if x > 0.0 { if x > 0.5 { return x; } }
    if x > 1.0 { if x > 1.5 { return x; } }
    if x > 2.0 { if x > 2.5 { return x; } }
    if x > 3.0 { if x > 3.5 { return x; } }
    if x > 4.0 { if x > 4.5 { return x; } }
    if x > 5.0 { if x > 5.5 { return x; } }
    if x > 6.0 { if x > 6.5 { return x; } }
    if x > 7.0 { if x > 7.5 { return x; } }
    if x > 8.0 { if x > 8.5 { return x; } }
    if x > 9.0 { if x > 9.5 { return x; } }
    if x > 10.0 { if x > 10.5 { return x; } }
    if x > 11.0 { if x > 11.5 { return x; } }
    if x > 12.0 { if x > 12.5 { return x; } }
    if x > 13.0 { if x > 13.5 { return x; } }
    if x > 14.0 { if x > 14.5 { return x; } }
    if x > 15.0 { if x > 15.5 { return x; } }
    x * x
}

fn main() {}
