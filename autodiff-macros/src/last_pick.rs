//! Loops that keep one of the elements they visit remember where they took it, and the kept
//! value is read again from there after the loop.
//!
//! ```text
//! let mut mx = v[0];
//! for i in 1..n { if v[i] > mx { mx = v[i]; } }
//! ```
//! carries, in the IR, the index of the last iteration that took `v[i]` beside `mx` (starting
//! at the range's end, which no iteration has), and every later use of `mx` reads
//! ```text
//! if at < n { v[at] } else { v[0] }
//! ```
//! instead. The two are the same number. The loop's `mx` then only feeds comparisons, which
//! have no derivative, so the loop takes no part in the backward pass: it records no branch
//! per iteration, and the cotangent of `mx` goes straight to the one element it came from
//! (through a branch on integers, which the backward pass evaluates again).
//!
//! The rewrite keeps the program's values exactly:
//! - the loop runs over a range that excludes its end (`a..b`, reversed or stepped; no
//!   `..=`) to its end (no `break` or `return`), so the end is never an iteration's index and
//!   `at < end` holds exactly when some iteration took an element;
//! - the carried variable's next value is an `if` directly in the body one of whose arms
//!   yields the variable unchanged and the other a value `e(i)`, so after the loop it holds
//!   `e(at)` of the last taking iteration, or its initial value;
//! - `e` is cheap arithmetic on the induction variable, values defined before the loop and
//!   elements of arrays that nothing modifies (see [`crate::remat`]), evaluated in that arm
//!   or before the `if` in the body, so it gives the same number after the loop; its element
//!   reads are ones the taking iteration performed, so no new panic can arise.

use std::collections::{HashMap, HashSet};

use crate::hoist::collect_loops;
use crate::ir::{BinaryOp, Block, CompareOp, Function, Inst, Opcode, Value, ValueDef};
use crate::remat::collect_expression;

/// Rewrites every eligible carried variable of every `for` loop.
pub fn remember_last_picks(func: &mut Function) {
    let mut loops = Vec::new();
    collect_loops(func, func.entry, &mut loops);
    for (parent, inst) in loops {
        // slots added by the rewrite come after the original ones
        for slot in 0..func.inst(inst).results.len() {
            if let Some(pick) = find_pick(func, inst, slot) {
                rewrite(func, parent, &pick);
            }
        }
    }
}

/// A carried variable that each iteration either keeps or replaces by an element.
struct Pick {
    /// The loop.
    looped: Inst,
    /// The carried variable's slot among the loop's results.
    slot: usize,
    /// The `if` in the body choosing between keeping and taking.
    choice: Inst,
    /// Which arm of `choice` takes the element.
    taking_arm: usize,
    /// The loop's induction variable.
    induction: Value,
    /// The value taken.
    taken: Value,
    /// The instructions computing `taken`, in execution order.
    expression: Vec<Inst>,
}

fn find_pick(func: &Function, looped: Inst, slot: usize) -> Option<Pick> {
    let Opcode::ForRange(range) = func.inst(looped).opcode else {
        return None;
    };
    if range.breaks || range.inclusive {
        return None;
    }
    let body = *func.inst(looped).arms.first()?;
    let induction = *func.block(body).params.first()?;
    let carried = *func.block(body).params.get(1 + slot)?;
    let yielded = *func.block(body).yields.get(slot)?;
    let result = *func.inst(looped).results.get(slot)?;
    let used_later = func.insts.iter().any(|data| data.args.contains(&result))
        || func
            .blocks
            .iter()
            .any(|block| block.yields.contains(&result));
    if !used_later {
        return None;
    }
    let ValueDef::Result(choice, position) = func.value(yielded).def else {
        return None;
    };
    let body_insts = &func.block(body).insts;
    let choice_at = body_insts.iter().position(|&inst| inst == choice)?;
    if !matches!(func.inst(choice).opcode, Opcode::If) {
        return None;
    }
    let arms = &func.inst(choice).arms;
    let arm_yield = |arm: usize| {
        arms.get(arm)
            .and_then(|&block| func.block(block).yields.get(position).copied())
    };
    let (taking_arm, taken) = match (arm_yield(0)?, arm_yield(1)?) {
        (then, other) if other == carried && then != carried => (0, then),
        (then, other) if then == carried && other != carried => (1, other),
        _ => return None,
    };
    let taking_block = *arms.get(taking_arm)?;
    // the value may be computed before the `if` in the body or in the taking arm
    let allowed: HashSet<Inst> = body_insts[..choice_at]
        .iter()
        .chain(&func.block(taking_block).insts)
        .copied()
        .collect();
    let mut inside = HashSet::new();
    func.defined_in(body, &mut inside);
    let mut expression = Vec::new();
    if !inside.contains(&taken)
        || !collect_expression(func, taken, induction, &allowed, &inside, &mut expression)
    {
        return None;
    }
    // worth it only for an element: that is where a derivative can come from
    if !expression
        .iter()
        .any(|&inst| matches!(func.inst(inst).opcode, Opcode::Index))
    {
        return None;
    }
    let order: HashMap<Inst, usize> = body_insts[..choice_at]
        .iter()
        .chain(&func.block(taking_block).insts)
        .enumerate()
        .map(|(i, &inst)| (inst, i))
        .collect();
    expression.sort_by_key(|inst| order.get(inst).copied().unwrap_or(usize::MAX));
    Some(Pick {
        looped,
        slot,
        choice,
        taking_arm,
        induction,
        taken,
        expression,
    })
}

/// Adds the index of the last taking iteration to the loop and replaces the later uses of
/// the carried variable by the element read again at it.
fn rewrite(func: &mut Function, parent: Block, pick: &Pick) {
    let Some(position) = func
        .block(parent)
        .insts
        .iter()
        .position(|&inst| inst == pick.looped)
    else {
        return;
    };
    let Some(layout) = func.loop_layout(pick.looped) else {
        return;
    };
    let looped = func.inst(pick.looped);
    let (Some(&end), Some(&init), Some(&result), Some(&body)) = (
        looped.args.get(1),
        looped.args.get(layout.fixed_args + pick.slot),
        looped.results.get(pick.slot),
        looped.arms.first(),
    ) else {
        return;
    };
    let span = looped.span;
    let name = func.value(result).name.clone();
    let at_name = name.as_ref().map(|name| format!("{name}_from"));

    // the loop carries `at`, starting at the range's end
    let at = func.add_block_param(body, span);
    func.values[at.index()].name = at_name.clone();
    let at_next = func.add_result(pick.choice);
    func.values[at_next.index()].name = at_name.clone();
    let choice_arms = func.inst(pick.choice).arms.clone();
    for (arm, block) in choice_arms.into_iter().enumerate() {
        let yielded = if arm == pick.taking_arm {
            pick.induction
        } else {
            at
        };
        func.blocks[block.index()].yields.push(yielded);
    }
    func.blocks[body.index()].yields.push(at_next);
    func.insts[pick.looped.index()].args.push(end);
    let at_after = func.add_result(pick.looped);
    func.values[at_after.index()].name = at_name;

    // after the loop: `if at < end { e(at) } else { init }`
    let taken_somewhere = func.create_inst(
        Opcode::Binary(BinaryOp::Compare(CompareOp::Lt)),
        vec![at_after, end],
        Vec::new(),
        1,
        span,
    );
    let condition = func.insts[taken_somewhere.index()].results[0];
    let taken_arm = func.create_block();
    let mut renamed: HashMap<Value, Value> = HashMap::from([(pick.induction, at_after)]);
    for &original in &pick.expression {
        let data = func.inst(original).clone();
        let args = data
            .args
            .iter()
            .map(|arg| renamed.get(arg).copied().unwrap_or(*arg))
            .collect();
        let copy = func.append(taken_arm, data.opcode, args, Vec::new(), 1, data.span);
        if let (Some(&old), Some(&new)) = (data.results.first(), func.inst(copy).results.first()) {
            func.values[new.index()].name = func.value(old).name.clone();
            renamed.insert(old, new);
        }
    }
    let Some(&taken_again) = renamed.get(&pick.taken) else {
        return;
    };
    func.blocks[taken_arm.index()].yields.push(taken_again);
    let initial_arm = func.create_block();
    func.blocks[initial_arm.index()].yields.push(init);
    let kept = func.create_inst(
        Opcode::If,
        vec![condition],
        vec![taken_arm, initial_arm],
        1,
        span,
    );
    let kept_value = func.insts[kept.index()].results[0];
    func.values[kept_value.index()].name = name;
    func.values[kept_value.index()].span = func.value(result).span;
    func.blocks[parent.index()]
        .insts
        .splice(position + 1..position + 1, [taken_somewhere, kept]);

    // later uses of the carried variable read the element again
    let rename = |v: &mut Value| {
        if *v == result {
            *v = kept_value;
        }
    };
    for data in &mut func.insts {
        data.args.iter_mut().for_each(rename);
    }
    for block in &mut func.blocks {
        block.yields.iter_mut().for_each(rename);
    }
    func.output_len.iter_mut().for_each(rename);
    func.output_shape.iter_mut().for_each(rename);
}
