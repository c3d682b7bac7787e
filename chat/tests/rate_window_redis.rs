//! The message rate limit is one rule applied in two places: `MemoryLedger` in process and
//! the window's Lua twin in Redis (`RedisLedger`). Both are driven with the same drafts at the
//! same (simulated) times and must give the same answers: admitted with the same id, or rate
//! limited with the same wait.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat::auth::Role;
use chat::ledger::{Draft, LedgerRules, MemoryLedger, Rejection};
use chat::protocol::MessageKind;
use chat::rate_limit::RateLimit;
use chat::redis_ledger::{LedgerError, RedisLedger};
use common::Redis;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// What a ledger said: the id it gave, or the wait it asked for.
type Answer = Result<u64, u64>;

fn draft(user: usize) -> Draft {
    Draft {
        user_id: format!("u{user}"),
        role: Role::Viewer,
        kind: MessageKind::Text,
        text: "x".into(),
        all_emotes: false,
        tail: r#","text":"x"}"#.into(),
    }
}

fn memory_answer(r: Result<chat::ledger::Admitted, Rejection>) -> Answer {
    match r {
        Ok(a) => Ok(a.id),
        Err(Rejection::RateLimited { retry_after_ms }) => Err(retry_after_ms),
        Err(other) => panic!("only the rate limit can refuse here: {other:?}"),
    }
}

fn redis_answer(r: Result<chat::ledger::Admitted, LedgerError>) -> Answer {
    match r {
        Ok(a) => Ok(a.id),
        Err(LedgerError::Rejected(Rejection::RateLimited { retry_after_ms })) => Err(retry_after_ms),
        Err(other) => panic!("only the rate limit can refuse here: {other:?}"),
    }
}

/// Time between two drafts, relative to the window where it matters.
#[derive(Debug, Clone, Copy)]
enum Gap {
    Same,
    Window { minus: u64, plus: u64 },
    HalfWindow,
    Ms(u64),
}

impl Gap {
    fn ms(self, window_ms: u64) -> u64 {
        match self {
            Gap::Same => 0,
            Gap::Window { minus, plus } => window_ms - minus + plus,
            Gap::HalfWindow => window_ms / 2,
            Gap::Ms(ms) => ms,
        }
    }
}

fn gap() -> impl Strategy<Value = Gap> {
    prop_oneof![
        Just(Gap::Same),
        (0u64..=1, 0u64..=1).prop_map(|(minus, plus)| Gap::Window { minus, plus }),
        Just(Gap::HalfWindow),
        (0u64..1_500).prop_map(Gap::Ms),
    ]
}

#[test]
fn memory_and_redis_windows_give_the_same_answers() {
    let Some(redis) = Redis::start() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    let client = redis::Client::open(redis.url()).expect("redis url");
    let rooms = AtomicU64::new(0);

    let case = (
        1u32..=4,
        // Redis expires a window's key after `window` ms of real time: every window here is
        // longer than a case takes to run.
        prop::sample::select(vec![1_000u64, 2_000, 60_000]),
        // From the epoch's start (no whole window has passed yet) and from a real clock.
        prop::sample::select(vec![0u64, 1_765_000_000_000]),
        // (user, gap since the previous draft): several users, bursts at the same ms, gaps
        // on and around the window's edge.
        prop::collection::vec((0usize..3, gap()), 1..40),
    );
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case, |(messages, window_ms, start, steps)| {
        let rules = LedgerRules {
            rate: RateLimit {
                messages,
                window: Duration::from_millis(window_ms),
            },
            ..Default::default()
        };
        let room = format!("agree-{}", rooms.fetch_add(1, Ordering::Relaxed));
        let mut memory = MemoryLedger::new(rules);
        let shared = RedisLedger::new(client.clone(), rules).expect("redis ledger");
        let mut now = start;
        for (i, (user, gap)) in steps.into_iter().enumerate() {
            now += gap.ms(window_ms);
            let d = draft(user);
            let in_process = memory_answer(memory.admit(&d, now, None));
            let in_redis = redis_answer(rt.block_on(shared.admit(&room, &d, now, 0)));
            if in_process != in_redis {
                return Err(TestCaseError::fail(format!(
                    "draft {i} (user u{user} at {now} ms): in process {in_process:?}, \
                     in Redis {in_redis:?}"
                )));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
