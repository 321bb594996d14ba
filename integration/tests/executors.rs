//! `StackFuture` under real executors.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use stackswitch::future::{StackFuture, Suspender};

/// Synchronous code with asynchronous calls deep inside it, as a
/// WebAssembly guest calling async host functions would be.
fn guest(s: &Suspender<'_>, depth: u32) -> u32 {
    if depth == 0 {
        return s.block_on(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            1
        });
    }
    guest(s, depth - 1) + guest(s, depth - 1)
}

#[tokio::test(flavor = "current_thread")]
async fn tokio_runs_a_stack_future() {
    assert_eq!(StackFuture::new(|s| guest(s, 4)).await, 16);
}

#[tokio::test(flavor = "current_thread")]
async fn many_stack_futures_interleave_on_a_local_set() {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let handles: Vec<_> = (0..50u32)
                .map(|i| {
                    let tx = tx.clone();
                    tokio::task::spawn_local(StackFuture::new(move |s| {
                        s.block_on(tokio::time::sleep(Duration::from_millis(u64::from(50 - i))));
                        tx.send(i).unwrap();
                        i * 2
                    }))
                })
                .collect();
            drop(tx);
            let mut total = 0;
            for h in handles {
                total += h.await.unwrap();
            }
            let mut order = Vec::new();
            while let Some(i) = rx.recv().await {
                order.push(i);
            }
            assert_eq!(total, (0..50).map(|i| i * 2).sum::<u32>());
            // They ran concurrently: the shortest sleeps finished first.
            assert_eq!(order[0], 49);
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn cancellation_by_timeout_unwinds_the_stack() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let future = StackFuture::new(move |s| {
        let _flag = flag;
        s.block_on(tokio::time::sleep(Duration::from_secs(3600)));
    });
    let result = tokio::time::timeout(Duration::from_millis(5), future).await;
    assert!(result.is_err());
    assert!(
        dropped.get(),
        "the suspended stack was unwound when the timeout dropped it"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_inside_reaches_the_task() {
    let local = tokio::task::LocalSet::new();
    let result = local
        .run_until(async {
            tokio::task::spawn_local(StackFuture::new(|s| {
                s.block_on(tokio::task::yield_now());
                panic!("guest trapped");
            }))
            .await
        })
        .await;
    let payload = result.unwrap_err().into_panic();
    assert_eq!(*payload.downcast_ref::<&str>().unwrap(), "guest trapped");
}

#[test]
fn futures_executor_runs_a_stack_future() {
    let (tx, rx) = futures::channel::oneshot::channel();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        tx.send(41).unwrap();
    });
    let value = futures::executor::block_on(StackFuture::new(move |s| s.block_on(rx).unwrap() + 1));
    producer.join().unwrap();
    assert_eq!(value, 42);
}

#[test]
fn futures_local_pool_interleaves_stack_futures() {
    use futures::task::LocalSpawnExt;
    let mut pool = futures::executor::LocalPool::new();
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    for id in 0..3 {
        let log = log.clone();
        pool.spawner()
            .spawn_local(StackFuture::new(move |s| {
                for step in 0..3 {
                    log.borrow_mut().push((id, step));
                    s.block_on(futures::future::ready(()));
                    s.block_on(YieldNow(false));
                }
            }))
            .unwrap();
    }
    pool.run();
    let log = log.borrow();
    assert_eq!(log.len(), 9);
    // Round-robin: every task made its first step before any made its second.
    assert!(log[..3].iter().all(|&(_, step)| step == 0), "{log:?}");
}

/// Pending once, waking itself.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
