//! A scenario driver for the engine tests: feeds ledger events to one ledger and keeps the
//! latest revision of every line, bill and subscription account, as a store would.
#![allow(dead_code)]

use std::collections::BTreeMap;

use clickledger_settler::commission::{Ledger, Outputs};
use model::events::{
    AttributedConversion, Bill, CommissionLine, Decision, LedgerEvent, LineStatus, Refund, SubscriptionAccount,
    SubscriptionCancel, Verdict,
};
use model::ids::{DerivedId, OrderId, OrderKey};
use model::program::Program;
use model::testkit::*;
use model::{MemberId, Timestamp};
use rust_decimal::Decimal;

pub struct Scenario {
    pub program: Program,
    pub ledger: Ledger,
    pub lines: BTreeMap<DerivedId, CommissionLine>,
    pub bills: BTreeMap<DerivedId, Bill>,
    pub subscriptions: BTreeMap<OrderKey, SubscriptionAccount>,
    next_id: u128,
}

impl Scenario {
    pub fn new(program: Program) -> Self {
        Self {
            program,
            ledger: Ledger::new(),
            lines: BTreeMap::new(),
            bills: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            next_id: 1_000_000,
        }
    }

    fn next_id(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    pub fn record(&mut self, outputs: Outputs) -> Outputs {
        for line in &outputs.lines {
            let keep = self.lines.get(&line.id).is_none_or(|kept| kept.revision < line.revision);
            if keep {
                self.lines.insert(line.id.clone(), line.clone());
            }
        }
        for bill in &outputs.bills {
            self.bills.insert(bill.id.clone(), bill.clone());
        }
        for account in &outputs.subscriptions {
            self.subscriptions.insert(account.order_key.clone(), account.clone());
        }
        outputs
    }

    pub fn apply(&mut self, event: LedgerEvent) -> Outputs {
        let outputs = self.ledger.apply(&self.program, &event);
        self.record(outputs)
    }

    pub fn click(&mut self, offer: &str, member: &str, visitor: &str, at: Timestamp) -> Outputs {
        let id = self.next_id();
        self.apply(LedgerEvent::Click(click(id, offer, member, visitor, at)))
    }

    pub fn order(&mut self, order: AttributedConversion) -> Outputs {
        self.apply(LedgerEvent::Order(order))
    }

    /// A sale of `amount` for `order`, attributed to `member`.
    pub fn sale(&mut self, offer: &str, member: &str, order: &str, amount: Decimal, at: Timestamp) -> Outputs {
        let id = self.next_id();
        self.order(attributed(sale(id, order, amount, at), offer, member))
    }

    pub fn refund(&mut self, order: &str, amount: Option<Decimal>, at: Timestamp) -> Outputs {
        let refund = Refund {
            id: event_id(self.next_id()),
            received_at: at,
            advertiser: advertiser_id(),
            order_id: OrderId::new(order).unwrap(),
            amount,
        };
        self.apply(LedgerEvent::Refund { order_key: order_key(order), refund })
    }

    pub fn decide(&mut self, order: &str, verdict: Verdict, at: Timestamp) -> Outputs {
        let decision = Decision {
            id: event_id(self.next_id()),
            received_at: at,
            order_key: order_key(order),
            verdict,
            actor: "test".into(),
            note: None,
        };
        self.apply(LedgerEvent::Decision(decision))
    }

    pub fn cancel(&mut self, order: &str, at: Timestamp) -> Outputs {
        let cancel = SubscriptionCancel {
            id: event_id(self.next_id()),
            received_at: at,
            advertiser: advertiser_id(),
            order_id: OrderId::new(order).unwrap(),
        };
        self.apply(LedgerEvent::Cancel { order_key: order_key(order), cancel })
    }

    pub fn advance(&mut self, now: Timestamp) -> Outputs {
        let outputs = self.ledger.advance(&self.program, now);
        self.record(outputs)
    }

    pub fn bill_run(&mut self, period_end: Timestamp) -> Outputs {
        let id = event_id(self.next_id());
        self.apply(LedgerEvent::BillRun { id, period_end, at: period_end, actor: "test".into() })
    }

    pub fn pay(&mut self, bill: &DerivedId, at: Timestamp) -> Outputs {
        let id = event_id(self.next_id());
        self.apply(LedgerEvent::BillPaid { id, bill: bill.clone(), at, actor: "test".into() })
    }

    /// The latest revision of every line of `member`, in id order.
    pub fn lines_of(&self, member: &str) -> Vec<&CommissionLine> {
        let member = member_id(member);
        self.lines.values().filter(|line| line.member == member).collect()
    }

    /// What `member` has earned: every line that is not rejected or reversed.
    pub fn earned(&self, member: &str) -> Decimal {
        self.lines_of(member)
            .iter()
            .filter(|line| !matches!(line.status, LineStatus::Rejected | LineStatus::Reversed))
            .map(|line| line.amount)
            .sum()
    }

    /// The sum of every line of an order, adjustments included.
    pub fn order_total(&self, order: &str) -> Decimal {
        let key = order_key(order);
        self.lines.values().filter(|line| line.order_key.as_ref() == Some(&key)).map(|line| line.amount).sum()
    }

    pub fn tier_amounts(&self, order: &str) -> Vec<(MemberId, u8, Decimal)> {
        let key = order_key(order);
        let mut amounts: Vec<_> = self
            .lines
            .values()
            .filter(|line| line.order_key.as_ref() == Some(&key))
            .map(|line| (line.member.clone(), line.tier, line.amount))
            .collect();
        amounts.sort_by_key(|(_, tier, _)| *tier);
        amounts
    }
}
