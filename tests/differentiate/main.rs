//! Gradients of differentiated functions, each checked against an independent reference.

// The functions under test are written as users write them, including forms clippy would
// rewrite (`z = z * x`, `x - x`, late initialisation); the macro must handle those forms.
#![allow(
    clippy::assign_op_pattern,
    clippy::needless_late_init,
    clippy::approx_constant,
    clippy::eq_op,
    clippy::needless_range_loop,
    clippy::explicit_counter_loop,
    clippy::vec_init_then_push,
    clippy::type_complexity,
    clippy::useless_vec
)]

mod arrays;
mod assertions;
mod closures;
mod composition;
mod constant_tables;
mod control_flow;
mod extremes;
mod jacobian;
mod linalg;
mod loops;
mod methods;
mod parameters;
mod primitives;
mod seed;
mod struct_outputs;
mod tensors;
