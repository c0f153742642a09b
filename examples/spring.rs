//! Identifying a damped spring from a recorded trajectory: differentiating through a
//! simulation whose step returns a struct.
//!
//! `step` advances a `State { x, v }` by one semi-implicit Euler step and returns the new
//! `State`, built by a struct expression; `#[differentiate]` gives it a `backward` that takes
//! a `State` cotangent. `loss` runs the simulation by calling `step` in a loop, the state
//! passed from call to call whole, and compares each position with a recording made with
//! the true constants. Its gradient with respect to the `Spring` constants is checked
//! against finite differences, then `Adam` recovers the constants from a wrong guess.
//!
//! ```text
//! cargo run --release --example spring
//! ```

use autodiff::prelude::*;

/// The unknowns: stiffness and damping per unit mass.
#[derive(Differentiable, Clone, Debug)]
struct Spring {
    stiffness: f64,
    damping: f64,
}

/// Position and velocity.
#[derive(Differentiable, Clone, Debug)]
struct State {
    x: f64,
    v: f64,
}

/// One step of `x'' = -k x - c x'`: the velocity first, then the position with the new
/// velocity (semi-implicit Euler, which keeps the oscillation's energy bounded).
#[differentiate]
fn step(s: &State, spring: &Spring, dt: f64) -> State {
    let acceleration = -spring.stiffness * s.x - spring.damping * s.v;
    let v = s.v + acceleration * dt;
    State { x: s.x + v * dt, v }
}

/// The squared distance of the state's position from a recorded one.
#[differentiate]
fn misfit(s: &State, recorded: f64) -> f64 {
    (s.x - recorded).powi(2)
}

/// The mean squared misfit of the simulated positions, one per recorded sample.
#[differentiate(wrt(spring))]
fn loss(spring: &Spring, start: &State, recorded: &[f64], dt: f64) -> f64 {
    let mut s: State = step(start, spring, dt);
    let mut total = misfit(&s, recorded[0]);
    for &sample in &recorded[1..] {
        s = step(&s, spring, dt);
        total += misfit(&s, sample);
    }
    total / recorded.len() as f64
}

const DT: f64 = 0.05;
const SAMPLES: usize = 200;

fn main() {
    let start = State { x: 1.0, v: 0.0 };
    let truth = Spring {
        stiffness: 4.0,
        damping: 0.3,
    };
    // the recording: the simulation run with the true constants (not differentiated)
    let mut recorded = Vec::with_capacity(SAMPLES);
    let mut s = start.clone();
    for _ in 0..SAMPLES {
        s = step(&s, &truth, DT);
        recorded.push(s.x);
    }

    let mut guess = Spring {
        stiffness: 2.5,
        damping: 0.8,
    };
    // The generated gradient against central finite differences.
    let (_, grad) = loss_grad(&guess, &start, &recorded, DT);
    let error = check_gradient(
        |p| {
            let spring = Spring {
                stiffness: p[0],
                damping: p[1],
            };
            loss(&spring, &start, &recorded, DT)
        },
        &[guess.stiffness, guess.damping],
        &[grad.stiffness, grad.damping],
    );
    println!("gradient check: max relative error {error:.1e}");
    assert!(
        error < 1e-6,
        "the gradient disagrees with finite differences"
    );

    let mut adam = Adam::new(0.05);
    for iteration in 0..=600 {
        let (value, grad) = loss_grad(&guess, &start, &recorded, DT);
        if iteration % 100 == 0 {
            println!(
                "iteration {iteration:3}  loss {value:.2e}  stiffness {:.4}  damping {:.4}",
                guess.stiffness, guess.damping
            );
        }
        adam.step(&mut guess, &grad);
    }
    println!(
        "recovered stiffness {:.4} and damping {:.4} (true: {} and {})",
        guess.stiffness, guess.damping, truth.stiffness, truth.damping
    );
}
