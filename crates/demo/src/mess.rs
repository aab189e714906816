//! Deliberately bad input, the kind a real PM log contains. Everything here is *added* on top of
//! the clean trades (nothing clean is altered or removed), so a correct loop still links exactly
//! the clean closed cycles and reproduces the planted effects, while reporting each mess item.

use crate::book::{
    closed_cycle, draw_action, Action, ActionKind, Book, Cycle, Position, TradeIdTag,
};
use crate::random::Sampler;
use crate::regime::{RegimeTimeline, SECS_PER_DAY};
use crate::render::{ActionLine, CloseLine, Renderer};
use crate::MessCounts;

const EXACT_DUPLICATE_ACTIONS: usize = 4;
const EXACT_DUPLICATE_CLOSES: usize = 1;
const CONFLICTING_DUPLICATES: usize = 2;
const MALFORMED_LINES: usize = 1;
const UNKNOWN_CATEGORY_ACTIONS: usize = 1;
const TRADE_ID_MISMATCHES: usize = 2;
const LATE_ACTIONS: usize = 2;
const DUPLICATE_CLOSES: usize = 1;
const ORPHAN_CLOSES: usize = 2;

/// A bad line and where it sorts in the output (re-sends arrive later than their original).
pub struct ExtraLine {
    pub sort_ms: i64,
    pub text: String,
}

/// Positions that exist only to carry bad closes: orphans, a NaN R and a missing position_id.
pub struct Ghosts {
    orphans: Vec<Cycle>,
    nan_rr: Cycle,
    missing_position: Cycle,
}

/// Add the ghost positions to the book (so that the renderer can find them) and draw their closes.
pub fn add_ghosts(book: &mut Book, sampler: &mut Sampler, regimes: &RegimeTimeline) -> Ghosts {
    let ghost = |book: &mut Book, sampler: &mut Sampler| {
        let index = book.positions.len();
        let position = Position {
            id: crate::book::position_id(index),
            ..book.positions[sampler.index(book.positions.len())].clone()
        };
        book.positions.push(position);
        let span = 3 * SECS_PER_DAY;
        let start = sampler.int_between(0, (book.period_secs - span).max(0));
        let mut cycle = closed_cycle(
            sampler,
            regimes,
            &[],
            &book.positions[index],
            index,
            1,
            (start, (start + span).min(book.period_secs)),
        );
        cycle.actions.clear();
        cycle
    };
    let orphans = (0..ORPHAN_CLOSES).map(|_| ghost(book, sampler)).collect();
    let nan_rr = ghost(book, sampler);
    let missing_position = ghost(book, sampler);
    Ghosts {
        orphans,
        nan_rr,
        missing_position,
    }
}

/// Render every bad line. `open_hosts` are the open cycles (their positions are left alone).
pub fn render_mess(
    renderer: &Renderer,
    sampler: &mut Sampler,
    regimes: &RegimeTimeline,
    ghosts: &Ghosts,
    open_hosts: &[usize],
) -> (Vec<ExtraLine>, MessCounts) {
    let book = renderer.book;
    let mut lines = Vec::new();
    let mut counts = MessCounts::default();
    let closed: Vec<&Cycle> = book.closed_cycles().collect();
    let mut text = String::new();

    // Re-sent lines: exact duplicates, conflicting re-sends and one cut-off line, each of a
    // distinct original so that the counts stay unambiguous.
    let mut used = Vec::new();
    let mut pick_action = |sampler: &mut Sampler| -> Option<(&Cycle, usize)> {
        for _ in 0..100 {
            let cycle = *closed.get(sampler.index(closed.len()))?;
            let index = sampler.index(cycle.actions.len());
            let key = (cycle.position, cycle.number, index);
            if !used.contains(&key) {
                used.push(key);
                return Some((cycle, index));
            }
        }
        None
    };
    for _ in 0..EXACT_DUPLICATE_ACTIONS {
        if let Some((cycle, index)) = pick_action(sampler) {
            text.clear();
            renderer.clean_action(&mut text, cycle, index);
            let delay = sampler.int_between(60, 6 * 3_600);
            lines.push(extra(renderer, cycle.actions[index].secs + delay, &text));
            counts.duplicate_lines += 1;
        }
    }
    for _ in 0..CONFLICTING_DUPLICATES {
        if let Some((cycle, index)) = pick_action(sampler) {
            let mut changed: Action = cycle.actions[index].clone();
            changed.size_frac = (changed.size_frac * 1.5 + 0.01).min(1.0);
            changed.price *= 1.01;
            let id = renderer.action_id(cycle, index);
            text.clear();
            renderer.action(
                &mut text,
                &ActionLine {
                    id: &id,
                    cycle,
                    action: &changed,
                },
            );
            let delay = sampler.int_between(600, 2 * 3_600);
            lines.push(extra(renderer, changed.secs + delay, &text));
            counts.conflicting_duplicates += 1;
        }
    }
    for _ in 0..MALFORMED_LINES {
        if let Some((cycle, index)) = pick_action(sampler) {
            text.clear();
            renderer.clean_action(&mut text, cycle, index);
            // A write cut off mid-line: everything is ASCII, so any byte offset is a char boundary.
            let cut = text.len() * 3 / 5;
            lines.push(extra(
                renderer,
                cycle.actions[index].secs + 30,
                &text[..cut],
            ));
            counts.malformed_lines += 1;
        }
    }
    for _ in 0..EXACT_DUPLICATE_CLOSES {
        if let Some(cycle) = closed.get(sampler.index(closed.len())) {
            text.clear();
            renderer.clean_close(&mut text, cycle);
            let delay = sampler.int_between(60, 3_600);
            lines.push(extra(renderer, cycle.close_secs + delay, &text));
            counts.duplicate_lines += 1;
        }
    }

    // Extra actions inside a closed cycle's window: one with a category outside the contract,
    // and some carrying the next cycle's trade_id.
    let inside: Vec<&Cycle> = closed
        .iter()
        .copied()
        .filter(|c| c.exit_secs - c.entry_secs >= 4 && !c.actions.is_empty())
        .collect();
    let extra_action = |sampler: &mut Sampler,
                        cycle: &Cycle,
                        secs: i64,
                        kind: ActionKind,
                        tag: TradeIdTag,
                        suffix: &str| {
        let position = &book.positions[cycle.position];
        // The pattern state the trade was in at that time.
        let state = cycle
            .actions
            .iter()
            .take_while(|a| a.secs <= secs)
            .last()
            .map_or(0, |a| a.state);
        let mut action = draw_action(sampler, regimes, position, cycle.traits, secs, kind, state);
        action.trade_id = tag;
        action.price = cycle.actions[0].price;
        let id = format!("{}-t{}-{suffix}", position.id, cycle.number);
        let mut out = String::new();
        renderer.action(
            &mut out,
            &ActionLine {
                id: &id,
                cycle,
                action: &action,
            },
        );
        ExtraLine {
            sort_ms: renderer.millis(secs),
            text: out,
        }
    };
    for i in 0..UNKNOWN_CATEGORY_ACTIONS {
        if let Some(cycle) = inside.get(sampler.index(inside.len())) {
            let secs = sampler.int_between(cycle.entry_secs + 1, cycle.exit_secs - 1);
            let suffix = format!("hold{}", i + 1);
            lines.push(extra_action(
                sampler,
                cycle,
                secs,
                ActionKind::Hold,
                TradeIdTag::Own,
                &suffix,
            ));
            counts.unknown_category_actions += 1;
        }
    }
    for i in 0..TRADE_ID_MISMATCHES {
        if let Some(cycle) = inside.get(sampler.index(inside.len())) {
            let secs = sampler.int_between(cycle.entry_secs + 1, cycle.exit_secs - 1);
            let suffix = format!("x{}", i + 1);
            lines.push(extra_action(
                sampler,
                cycle,
                secs,
                ActionKind::Add,
                TradeIdTag::Next,
                &suffix,
            ));
            counts.trade_id_mismatches += 1;
        }
    }

    // After the last close of positions without an open cycle: straggling fills stamped after
    // their close, and a close re-sent under a new id.
    let open_positions: Vec<usize> = open_hosts
        .iter()
        .map(|&c| book.cycles[c].position)
        .collect();
    let mut quiet_positions = book
        .positions_by_room()
        .into_iter()
        .filter(|(p, room)| !open_positions.contains(p) && *room >= 600);
    let last_closed = |position: usize| -> Option<&Cycle> {
        book.closed_cycles()
            .filter(|c| c.position == position)
            .max_by_key(|c| c.number)
    };
    for i in 0..LATE_ACTIONS {
        let Some((p, room)) = quiet_positions.next() else {
            break;
        };
        if let Some(cycle) = last_closed(p) {
            let secs = cycle.close_secs + (room / 3).min(3_600);
            let suffix = format!("late{}", i + 1);
            lines.push(extra_action(
                sampler,
                cycle,
                secs,
                ActionKind::Trim,
                TradeIdTag::Own,
                &suffix,
            ));
            counts.late_actions += 1;
        }
    }
    for _ in 0..DUPLICATE_CLOSES {
        let Some((p, _)) = quiet_positions.next() else {
            break;
        };
        if let Some(cycle) = last_closed(p) {
            let id = format!("{}-retry", renderer.close_id(cycle));
            let created_secs = cycle.close_secs + 120;
            text.clear();
            renderer.close(
                &mut text,
                &CloseLine {
                    id: &id,
                    cycle,
                    with_position_id: true,
                    created_secs,
                    rr_literal: None,
                },
            );
            lines.push(extra(renderer, created_secs, &text));
            counts.duplicate_closes += 1;
        }
    }

    // Closes of the ghost positions.
    for cycle in &ghosts.orphans {
        text.clear();
        renderer.clean_close(&mut text, cycle);
        lines.push(extra(renderer, cycle.close_secs, &text));
        counts.orphan_closes += 1;
    }
    let bad_closes = [
        (&ghosts.nan_rr, true, Some("NaN")),
        (&ghosts.missing_position, false, None),
    ];
    for (cycle, with_position_id, rr_literal) in bad_closes {
        let id = renderer.close_id(cycle);
        text.clear();
        renderer.close(
            &mut text,
            &CloseLine {
                id: &id,
                cycle,
                with_position_id,
                created_secs: cycle.close_secs,
                rr_literal,
            },
        );
        lines.push(extra(renderer, cycle.close_secs, &text));
    }
    counts.nan_rr_closes = 1;
    counts.missing_position_id_closes = 1;
    (lines, counts)
}

fn extra(renderer: &Renderer, secs: i64, text: &str) -> ExtraLine {
    ExtraLine {
        sort_ms: renderer.millis(secs),
        text: text.to_string(),
    }
}
