//! Workers whose rings stay empty sleep instead of spinning: an engine
//! on live traffic that goes quiet gives its cores back.
//!
//! A test binary of its own, so the CPU time it reads from `/proc` is
//! that of this engine's workers alone.

use std::time::Duration;

use weft_engine::EngineBuilder;
use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
use weft_wire::{LinkType, Timestamp};

struct Sink;
impl Stream for Sink {
    fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {}
}
struct Factory;
impl StreamFactory for Factory {
    type Stream = Sink;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Sink {
        Sink
    }
}

/// CPU time the process's worker threads used so far, in clock ticks
/// (utime + stime of `/proc/self/task/*/stat`); `None` off Linux or if
/// there is no worker thread.
fn workers_cpu_ticks() -> Option<u64> {
    let (mut ticks, mut found) = (0, false);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("weft-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14
        // and stime 15 (1-based), so 11 and 12 after the name.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (u, s) = (f.get(11)?, f.get(12)?);
        ticks += u.parse::<u64>().ok()? + s.parse::<u64>().ok()?;
        found = true;
    }
    found.then_some(ticks)
}

/// CPU ticks two workers built by `builder` use in one second with
/// nothing to do, after some traffic.
fn idle_ticks(builder: EngineBuilder) -> u64 {
    let mut engine = builder
        .workers(2)
        .pin(false)
        .build(|_| Factory)
        .expect("engine");
    // Some traffic first, so the workers have run and gone idle since.
    for i in 0..1000u64 {
        engine.dispatch(LinkType::Ethernet, &[0u8; 60], Timestamp(i));
    }
    engine.flush();
    std::thread::sleep(Duration::from_millis(100));
    let before = workers_cpu_ticks().expect("worker threads in /proc");
    std::thread::sleep(Duration::from_secs(1));
    let used = workers_cpu_ticks().expect("worker threads in /proc") - before;
    engine.finish().expect("finish");
    used
}

/// One test, so the two engines never run at once (the CPU time read is
/// that of every worker thread in the process).
#[test]
fn idle_workers_sleep_unless_told_to_keep_yielding() {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: reads per-thread CPU time from /proc");
        return;
    }
    // Clock ticks are 10 ms (USER_HZ is 100 on Linux).
    let sleeping = idle_ticks(EngineBuilder::new());
    let yielding = idle_ticks(EngineBuilder::new().idle_sleep(Duration::ZERO));
    eprintln!("one idle second of two workers: {sleeping} ticks sleeping, {yielding} yielding");
    // Two yielding workers use one or two cores for the whole second
    // (100 to 200 ticks, fewer only if other processes crowd them out);
    // two sleeping ones measured 14-24 ticks on 2 vCPUs.
    assert!(
        sleeping < 50,
        "idle workers used {sleeping} ticks in a second"
    );
    assert!(
        yielding > sleeping,
        "{yielding} ticks yielding, {sleeping} sleeping"
    );
}
