//! Synchronous code calling asynchronous functions, under tokio.
//!
//! A template renderer written against a synchronous `Lookup` trait (as a
//! plugin interface or an existing library would be) runs inside
//! [`StackFuture`]s. Its lookups go to an asynchronous database: each one
//! `block_on`s a future, which suspends the renderer's whole stack and hands
//! `Pending` to tokio, so three documents render concurrently on one thread
//! without the renderer knowing anything about async.
//!
//! tokio's clock is paused, so time advances only when every task waits, and
//! the output is the same on every run.
//!
//! Run with `cargo run -p stackswitch-integration --example async_tokio`.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use stackswitch::future::{StackFuture, Suspender};
use tokio::time::Instant;

/// The synchronous interface the renderer is written against.
trait Lookup {
    fn lookup(&self, key: &str) -> Option<String>;
}

/// Replaces each `{key}` with its value, rendered in turn (values may hold
/// placeholders too). Plain recursive, blocking-style code.
fn render(template: &str, lookup: &dyn Lookup, depth: u32) -> String {
    assert!(depth < 16, "placeholders nest too deeply");
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("unclosed placeholder");
        let key = &rest[open + 1..close];
        match lookup.lookup(key) {
            Some(value) => out.push_str(&render(&value, lookup, depth + 1)),
            None => out.push_str(&format!("<{key}?>")),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A slow, asynchronous key-value store.
struct Database {
    rows: HashMap<&'static str, (&'static str, u64)>,
    started: Instant,
}

impl Database {
    async fn fetch(&self, document: &str, key: &str) -> Option<String> {
        let (value, latency_ms) = *self.rows.get(key)?;
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        let elapsed = self.started.elapsed().as_millis();
        println!("[{elapsed:>3} ms] {document}: fetched {key}");
        Some(value.to_string())
    }
}

/// The bridge: a synchronous `Lookup` whose calls wait on async fetches.
struct AsyncLookup<'s, 'a> {
    suspender: &'s Suspender<'a>,
    database: Rc<Database>,
    document: &'static str,
}

impl Lookup for AsyncLookup<'_, '_> {
    fn lookup(&self, key: &str) -> Option<String> {
        self.suspender
            .block_on(self.database.fetch(self.document, key))
    }
}

/// Renders `template` on its own stack, as a future.
fn render_document(
    database: &Rc<Database>,
    document: &'static str,
    template: &'static str,
) -> StackFuture<String> {
    let database = database.clone();
    StackFuture::new(move |suspender| {
        let lookup = AsyncLookup {
            suspender,
            database,
            document,
        };
        render(template, &lookup, 0)
    })
}

/// Sets a flag when dropped: shows that a cancelled render is unwound.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let database = Rc::new(Database {
            rows: HashMap::from([
                ("user", ("{first} {last}", 30)),
                ("first", ("Ada", 20)),
                ("last", ("Lovelace", 25)),
                ("product", ("Analytical Engine", 40)),
                ("greeting", ("Dear {user}", 15)),
                ("status", ("shipped", 12)),
            ]),
            started: Instant::now(),
        });

        // Three documents, rendered concurrently on this one thread.
        let documents = [
            ("letter", "{greeting}, your {product} has {status}."),
            ("label", "To: {user}"),
            ("receipt", "{product} ({status}) {missing}"),
        ];
        let handles: Vec<_> = documents
            .iter()
            .map(|&(name, template)| {
                (
                    name,
                    tokio::task::spawn_local(render_document(&database, name, template)),
                )
            })
            .collect();
        for (name, handle) in handles {
            println!("{name}: {}", handle.await.unwrap());
        }
        let elapsed = database.started.elapsed().as_millis();
        // One after the other, the lookups would take 30 + 20 + 25 + ... ms.
        println!("all three rendered after {elapsed} ms of (virtual) time");

        // A render cut short by a timeout is dropped mid-lookup: its stack is
        // unwound, so values on it are dropped as usual.
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(dropped.clone());
        let slow_database = database.clone();
        let slow = StackFuture::new(move |suspender| {
            let _flag = flag;
            let lookup = AsyncLookup {
                suspender,
                database: slow_database,
                document: "slow",
            };
            render("{user} / {product} / {status}", &lookup, 0)
        });
        let outcome = tokio::time::timeout(Duration::from_millis(35), slow).await;
        assert!(outcome.is_err());
        assert!(dropped.get());
        println!(
            "timed out after 35 ms; the render's stack was unwound: {}",
            dropped.get()
        );
    });
}
