//! Loop-invariant code motion on the IR: arithmetic and element reads that give the same value
//! in every iteration of a `for` loop move in front of it, guarded by the range being nonempty.
//!
//! ```text
//! for j in a..b { qx[j] += l[li] * xc[i]; }
//! ```
//! becomes, in the IR,
//! ```text
//! if a < b { let xi = xc[i]; for j in a..b { qx[j] += l[li] * xi; } }
//! ```
//! The forward pass then reads `xc[i]` once per run of the loop instead of once per iteration,
//! and the backward pass saves it once and sums its cotangent across the iterations in a
//! register before adding it to `xc`'s cotangent once, instead of adding it to memory at
//! every iteration. The guard keeps the program's behaviour: a loop that runs no iteration
//! performs none of the moved reads, which could be out of bounds.
//!
//! Only instructions directly in the loop body are moved (they run in every iteration), and
//! only out of loops that run to their end (no `break` or `return`, which could stop the first
//! iteration before them) over a plain range (a `step_by(0)` panics even when empty). Arrays
//! defined outside a loop cannot change inside it: a write makes a new value carried by the
//! loop, so an element read with invariant operands is itself invariant.

use std::collections::HashSet;

use crate::ir::{BinaryOp, Block, CompareOp, Function, Inst, Opcode, Value};

/// Moves the invariant instructions out of every eligible loop, innermost loops first.
pub fn hoist_invariants(func: &mut Function) {
    let mut loops = Vec::new();
    collect_loops(func, func.entry, &mut loops);
    for (parent, inst) in loops {
        hoist_from(func, parent, inst);
    }
}

/// Every `for` loop with the block containing it, inner loops before the loops around them.
pub(crate) fn collect_loops(func: &Function, block: Block, out: &mut Vec<(Block, Inst)>) {
    for &inst in &func.block(block).insts {
        for &arm in &func.inst(inst).arms {
            collect_loops(func, arm, out);
        }
        if matches!(func.inst(inst).opcode, Opcode::ForRange(_)) {
            out.push((block, inst));
        }
    }
}

fn hoist_from(func: &mut Function, parent: Block, inst: Inst) {
    let Opcode::ForRange(range) = func.inst(inst).opcode else {
        return;
    };
    if range.breaks || range.stepped {
        return;
    }
    let Some(position) = func.block(parent).insts.iter().position(|&i| i == inst) else {
        return;
    };
    let body = func.inst(inst).arms[0];
    let mut inside = HashSet::new();
    func.defined_in(body, &mut inside);
    let mut moved = Vec::new();
    for &candidate in &func.block(body).insts {
        let data = func.inst(candidate);
        let movable = matches!(
            data.opcode,
            Opcode::Const(_)
                | Opcode::Index
                | Opcode::Binary(_)
                | Opcode::Unary(_)
                | Opcode::Cast(_)
                | Opcode::Len
        );
        if movable && data.args.iter().all(|arg| !inside.contains(arg)) {
            moved.push(candidate);
            for result in &data.results {
                inside.remove(result);
            }
        }
    }
    // worth a branch around the loop only when an element read moves (arithmetic alone is
    // usually moved by the compiler already)
    if !moved
        .iter()
        .any(|&i| matches!(func.inst(i).opcode, Opcode::Index))
    {
        return;
    }
    let span = func.inst(inst).span;
    func.blocks[body.index()]
        .insts
        .retain(|i| !moved.contains(i));

    // the guard: `start < end` (`start <= end` for `..=`)
    let (start, end) = (func.inst(inst).args[0], func.inst(inst).args[1]);
    let compare = if range.inclusive {
        CompareOp::Le
    } else {
        CompareOp::Lt
    };
    let guard = func.create_inst(
        Opcode::Binary(BinaryOp::Compare(compare)),
        vec![start, end],
        Vec::new(),
        1,
        span,
    );
    let nonempty = func.insts[guard.index()].results[0];

    // the arm that runs the loop yields its results; the other yields the initial values
    let loop_results = func.inst(inst).results.clone();
    let inits: Vec<Value> = func.inst(inst).args[2..].to_vec();
    let then_arm = func.create_block();
    func.blocks[then_arm.index()].insts = moved.iter().copied().chain([inst]).collect();
    func.blocks[then_arm.index()].yields = loop_results.clone();
    let else_arm = func.create_block();
    func.blocks[else_arm.index()].yields = inits;

    let branch = func.create_inst(
        Opcode::If,
        vec![nonempty],
        vec![then_arm, else_arm],
        loop_results.len(),
        span,
    );
    let branch_results = func.inst(branch).results.clone();
    for (&old, &new) in loop_results.iter().zip(&branch_results) {
        let (name, value_span) = (func.value(old).name.clone(), func.value(old).span);
        func.values[new.index()].name = name;
        func.values[new.index()].span = value_span;
    }
    func.blocks[parent.index()]
        .insts
        .splice(position..=position, [guard, branch]);

    // later uses of the loop's results read the branch's instead
    let renamed: Vec<(Value, Value)> = loop_results.into_iter().zip(branch_results).collect();
    let rename = |v: &mut Value| {
        if let Some((_, new)) = renamed.iter().find(|(old, _)| old == v) {
            *v = *new;
        }
    };
    for data in &mut func.insts {
        data.args.iter_mut().for_each(rename);
    }
    for (index, block) in func.blocks.iter_mut().enumerate() {
        if index != then_arm.index() {
            block.yields.iter_mut().for_each(rename);
        }
    }
    func.output_len.iter_mut().for_each(rename);
    func.output_shape.iter_mut().for_each(rename);
}
