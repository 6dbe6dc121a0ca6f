//! The order stage's state is saved at checkpoints and restored after a crash or a rebalance.
//! Whatever attributed an order's winner (a cookie click, a click id, a promo code), what
//! arrives for the order after a restore still finds that winner: a decision reaches the
//! ledger, and an earlier conversion of the same order withdraws it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clickledger_settler::orders::{OrderStage, OrderState};
use model::events::{AttributedConversion, Decision, LedgerEvent, OrderEvent, Verdict, Via, wire};
use model::ids::PromoCode;
use model::program::Program;
use model::testkit::*;
use pipeline::ports::log::Topics;
use pipeline::{Context, Stage, StageOutput, StageState};
use rust_decimal::Decimal;

fn program() -> Program {
    ProgramBuilder::new().offer(offer("store", cps(Decimal::new(10, 2)))).enrolled("store", [member("ann")]).build()
}

/// The ledger events one input sends.
fn apply(stage: &mut OrderStage, program: &Program, state: &mut OrderState, input: OrderEvent) -> Vec<LedgerEvent> {
    let context = Context { program, now: ts("2026-03-01T12:00:00Z"), partition: 0, offset: 0 };
    let mut out = StageOutput::default();
    stage.apply(&context, "acme:A1", state, input, &mut out);
    out.records.iter().map(|record| wire::decode(&record.payload).unwrap()).collect()
}

fn sale_by(id: u128, at: &str, via: &Via) -> AttributedConversion {
    let mut sale = attributed(sale(id, "A1", Decimal::from(200), ts(at)), "store", "ann");
    sale.via = via.clone();
    sale
}

fn names(events: &[LedgerEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|event| match event {
            LedgerEvent::Order(_) => "order",
            LedgerEvent::Withdraw { .. } => "withdraw",
            LedgerEvent::Decision(_) => "decision",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_restored_order_keeps_its_winner_whatever_attributed_it() {
    let program = program();
    let clicked_at = ts("2026-03-01T09:30:00.125Z");
    let ways = [
        Via::Cookie { click: event_id(1), clicked_at },
        Via::ClickId { click: event_id(2), clicked_at },
        Via::Code { code: PromoCode::new("ANN10").unwrap() },
    ];
    for via in ways {
        let mut stage = OrderStage::new(Topics::with_prefix("t-"));
        let mut state = OrderState::default();
        let winner = sale_by(10, "2026-03-01T10:00:00Z", &via);
        assert_eq!(names(&apply(&mut stage, &program, &mut state, OrderEvent::Attributed(winner))), ["order"]);

        let mut restored =
            OrderState::decode(&state.encode().unwrap()).unwrap_or_else(|error| panic!("{via:?}: {error}"));
        assert_eq!(restored, state, "{via:?}");

        let decision = Decision {
            id: event_id(20),
            received_at: ts("2026-03-01T11:00:00Z"),
            order_key: order_key("A1"),
            verdict: Verdict::Approve,
            actor: "manager".into(),
            note: None,
        };
        let sent = apply(&mut stage, &program, &mut restored, OrderEvent::Decision(decision));
        assert_eq!(names(&sent), ["decision"], "{via:?}");

        let mut restored = OrderState::decode(&restored.encode().unwrap()).unwrap();
        let earlier = sale_by(11, "2026-03-01T09:59:00Z", &via);
        let sent = apply(&mut stage, &program, &mut restored, OrderEvent::Attributed(earlier));
        assert_eq!(names(&sent), ["withdraw", "order", "decision"], "{via:?}");
        let LedgerEvent::Withdraw { conversion, .. } = &sent[0] else { unreachable!() };
        assert_eq!(*conversion, event_id(10));
    }
}
