//! The pipeline with stand-in translators and sinks: a sink that blocks, one that fails, a
//! translator that panics, a slow one that misses the drain deadline. Each test checks that
//! every packet is accounted for (translated or dropped with a reason) and every line is
//! complete.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pipeline::{
    Factory, Ingest, Output, Overflow, Pipeline, Pushed, Settings, Snapshot, Translate,
    Translation, WriterOutput,
};
use wire::CapturedPacket;

/// Lines collected in memory.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl Write for Collected {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Collected {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "no cut line");
        text.lines().map(str::to_string).collect()
    }
}

/// Stand-in translator: one JSON line with the packet number, the worker and the shard key
/// (carried in the packet's first 8 bytes).
struct Echo {
    worker: usize,
    delay: Duration,
    panic_every: u64,
}

impl Translate for Echo {
    fn translate(&mut self, packet: &CapturedPacket<'_>, out: &mut Vec<u8>) -> Translation {
        if !self.delay.is_zero() {
            // Jitter per packet so workers finish out of order.
            std::thread::sleep(self.delay * (packet.num % 3) as u32);
        }
        let key = u64::from_le_bytes(packet.data[..8].try_into().unwrap());
        write!(
            out,
            "{{\"num\":{},\"worker\":{},\"key\":{key}",
            packet.num, self.worker
        )
        .unwrap();
        if self.panic_every > 0 && packet.num % self.panic_every == 0 {
            panic!("stand-in translator fails on packet {}", packet.num);
        }
        out.extend_from_slice(b"}\n");
        if packet.num % 10 == 0 {
            Translation::Error
        } else {
            Translation::Ok
        }
    }
}

fn echo(delay: Duration, panic_every: u64) -> Arc<impl Factory<Translator = Echo>> {
    Arc::new(move |worker| Echo {
        worker,
        delay,
        panic_every,
    })
}

fn push(ingest: &mut Ingest, num: u64, key: u64, size: usize) -> Pushed {
    let mut data = vec![0u8; size.max(8)];
    data[..8].copy_from_slice(&key.to_le_bytes());
    ingest.push(
        &CapturedPacket {
            num,
            ts_sec: 1_700_000_000 + num as i64,
            ts_nsec: 0,
            wire_len: data.len() as u32,
            data: &data,
        },
        key,
    )
}

fn parse(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
}

fn assert_accounted(s: &Snapshot) {
    assert_eq!(
        s.received,
        s.translated + s.dropped.total(),
        "every packet translated or dropped with a reason: {s:?}"
    );
    assert_eq!(s.queued_bytes, 0, "queue empty at the end");
}

/// An output that holds every write until the test opens the gate.
struct Gated {
    gate: Arc<(Mutex<bool>, Condvar)>,
    inner: Collected,
}

impl Output for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        let (open, changed) = &*self.gate;
        let mut guard = open.lock().unwrap();
        while !*guard {
            guard = changed.wait(guard).unwrap();
        }
        self.inner.write_all(lines)
    }
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_blocked_sink_never_blocks_capture_and_every_drop_is_counted() {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let collected = Collected::default();
    let settings = Settings {
        workers: 2,
        ordered: false,
        queue_bytes: 256 * 1024,
        overflow: Overflow::DropNewest,
    };
    let output = Gated {
        gate: Arc::clone(&gate),
        inner: collected.clone(),
    };
    let (mut ingest, pipeline) =
        Pipeline::start(&settings, echo(Duration::ZERO, 0), vec![Box::new(output)]).unwrap();
    const N: u64 = 50_000;
    // Capture runs on its own thread; it must finish all N pushes while the sink is stuck.
    let (done_tx, done_rx) = mpsc::channel();
    let capture = std::thread::spawn(move || {
        let mut dropped = 0;
        for num in 1..=N {
            if push(&mut ingest, num, num % 97, 200) != Pushed::Queued {
                dropped += 1;
            }
        }
        done_tx.send(dropped).unwrap();
        ingest
    });
    let dropped = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("capture finished although the sink never wrote a byte");
    let ingest = capture.join().unwrap();
    assert!(dropped > 0, "a full queue drops");
    let during = pipeline.snapshot();
    assert_eq!(during.received, N);
    assert_eq!(during.dropped.queue_full, dropped);
    assert!(during.peak_queued_bytes <= 256 * 1024 + 264, "{during:?}");

    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    ingest.close();
    let finished = pipeline.finish(Instant::now() + Duration::from_secs(30));
    assert!(finished.complete);
    let s = finished.snapshot;
    assert_accounted(&s);
    assert_eq!(s.dropped.queue_full, dropped);
    let lines = collected.lines();
    assert_eq!(lines.len() as u64, s.translated);
    assert_eq!(s.written("gated"), s.translated);
    for line in &lines {
        parse(line);
    }
}

/// An output whose every write fails.
struct Failing;

impl Output for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::other("disk full"))
    }
    fn close(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_output_loses_only_its_own_lines_and_counts_them() {
    let collected = Collected::default();
    let settings = Settings {
        overflow: Overflow::Block,
        ..Settings::default()
    };
    let outputs: Vec<Box<dyn Output>> = vec![
        Box::new(Failing),
        Box::new(WriterOutput::new("memory", collected.clone())),
    ];
    let (mut ingest, pipeline) =
        Pipeline::start(&settings, echo(Duration::ZERO, 0), outputs).unwrap();
    for num in 1..=10_000 {
        assert_eq!(push(&mut ingest, num, num % 13, 100), Pushed::Queued);
    }
    ingest.close();
    let finished = pipeline.finish(Instant::now() + Duration::from_secs(30));
    let s = finished.snapshot;
    assert_accounted(&s);
    assert_eq!(s.translated, 10_000);
    assert_eq!(s.dropped.total(), 0, "blocking mode loses nothing");
    assert_eq!(s.translate_errors, 1_000, "every 10th reports an error");
    let failing = &s.outputs[0];
    assert_eq!((failing.lines, failing.lost_lines), (0, 10_000));
    assert!(failing.errors > 0);
    assert_eq!(failing.last_error.as_deref(), Some("disk full"));
    assert_eq!(s.written("memory"), 10_000);
    assert_eq!(collected.lines().len(), 10_000);
}

#[test]
fn ordered_mode_emits_exact_capture_order_across_workers() {
    let collected = Collected::default();
    let settings = Settings {
        workers: 4,
        ordered: true,
        queue_bytes: 64 * 1024,
        overflow: Overflow::Block,
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::from_micros(20), 0),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    const N: u64 = 20_000;
    for num in 1..=N {
        // Keys spread packets over every worker, interleaved packet by packet.
        push(&mut ingest, num, num * 7919 % 31, 60);
    }
    ingest.close();
    let finished = pipeline.finish(Instant::now() + Duration::from_secs(60));
    assert!(finished.complete);
    assert_accounted(&finished.snapshot);
    let nums: Vec<u64> = collected
        .lines()
        .iter()
        .map(|l| parse(l)["num"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=N).collect();
    assert_eq!(nums.len(), expected.len());
    assert!(nums == expected, "output is in exact capture order");
    let workers: std::collections::HashSet<u64> = collected
        .lines()
        .iter()
        .map(|l| parse(l)["worker"].as_u64().unwrap())
        .collect();
    assert!(
        workers.len() > 1,
        "translation really ran on several workers"
    );
}

#[test]
fn ordered_mode_with_drops_keeps_order_of_what_it_keeps() {
    let collected = Collected::default();
    let settings = Settings {
        workers: 2,
        ordered: true,
        queue_bytes: 16 * 1024,
        overflow: Overflow::DropNewest,
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::from_micros(50), 0),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    for num in 1..=20_000 {
        push(&mut ingest, num, num % 5, 100);
    }
    ingest.close();
    let finished = pipeline.finish(Instant::now() + Duration::from_secs(60));
    let s = finished.snapshot;
    assert_accounted(&s);
    assert!(s.dropped.queue_full > 0);
    let nums: Vec<u64> = collected
        .lines()
        .iter()
        .map(|l| parse(l)["num"].as_u64().unwrap())
        .collect();
    assert_eq!(nums.len() as u64, s.translated);
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
}

#[test]
fn one_connection_always_goes_to_one_worker() {
    let collected = Collected::default();
    let settings = Settings {
        workers: 3,
        overflow: Overflow::Block,
        ..Settings::default()
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::ZERO, 0),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    for num in 1..=30_000 {
        push(&mut ingest, num, (num * 2_654_435_761) % 1000, 64);
    }
    ingest.close();
    assert!(
        pipeline
            .finish(Instant::now() + Duration::from_secs(30))
            .complete
    );
    let mut owner: HashMap<u64, u64> = HashMap::new();
    let mut per_worker: HashMap<u64, usize> = HashMap::new();
    for line in collected.lines() {
        let v = parse(&line);
        let (key, worker) = (v["key"].as_u64().unwrap(), v["worker"].as_u64().unwrap());
        assert_eq!(*owner.entry(key).or_insert(worker), worker, "key {key}");
        *per_worker.entry(worker).or_default() += 1;
    }
    assert_eq!(owner.len(), 1000);
    assert_eq!(per_worker.len(), 3, "keys spread over every worker");
}

#[test]
fn a_panicking_translator_costs_one_packet_and_never_a_cut_line() {
    let collected = Collected::default();
    let settings = Settings {
        workers: 2,
        overflow: Overflow::Block,
        ..Settings::default()
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::ZERO, 7),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    // Keep the test output readable: the default hook would print 100 panics.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for num in 1..=700 {
        push(&mut ingest, num, num, 64);
    }
    ingest.close();
    let finished = pipeline.finish(Instant::now() + Duration::from_secs(30));
    std::panic::set_hook(hook);
    let s = finished.snapshot;
    assert_accounted(&s);
    assert_eq!(s.translate_panics, 100);
    let lines = collected.lines();
    assert_eq!(lines.len(), 600);
    for line in &lines {
        assert_ne!(parse(line)["num"].as_u64().unwrap() % 7, 0);
    }
}

#[test]
fn the_drain_deadline_drops_and_counts_what_is_left_and_still_closes() {
    let collected = Collected::default();
    let settings = Settings {
        workers: 1,
        overflow: Overflow::DropNewest,
        queue_bytes: 1024 * 1024,
        ..Settings::default()
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::from_millis(5), 0),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    for num in 1..=2_000 {
        push(&mut ingest, num, 1, 64);
    }
    ingest.close();
    let started = Instant::now();
    let finished = pipeline.finish(Instant::now() + Duration::from_millis(200));
    assert!(finished.complete, "closed within the grace");
    assert!(started.elapsed() < Duration::from_secs(10));
    let s = finished.snapshot;
    assert_accounted(&s);
    assert!(s.dropped.shutdown > 0, "{s:?}");
    assert_eq!(collected.lines().len() as u64, s.translated);
}

/// Offline reads have no drain deadline; a slow translator still gets every packet.
#[test]
fn finish_all_translates_everything_however_slow() {
    let collected = Collected::default();
    let settings = Settings {
        workers: 1,
        overflow: Overflow::Block,
        queue_bytes: 1024 * 1024,
        ..Settings::default()
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::from_millis(1), 0),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    for num in 1..=500 {
        push(&mut ingest, num, 1, 64);
    }
    ingest.close();
    let finished = pipeline.finish_all();
    assert!(finished.complete);
    let s = finished.snapshot;
    assert_accounted(&s);
    assert_eq!(s.dropped.shutdown, 0, "{s:?}");
    assert_eq!(s.translated, 500);
    assert_eq!(collected.lines().len(), 500);
}

#[test]
fn waiting_for_room_does_not_multiply_batch_buffers() {
    // Regression: flushing every pending batch before each wait made thousands of tiny
    // batches, each keeping a full-size buffer (118 MiB peak on a 1 M-packet file).
    let collected = Collected::default();
    let settings = Settings {
        workers: 2,
        ordered: false,
        queue_bytes: 1024 * 1024,
        overflow: Overflow::Block,
    };
    let (mut ingest, pipeline) = Pipeline::start(
        &settings,
        echo(Duration::from_micros(10), 0),
        vec![Box::new(WriterOutput::new("memory", collected.clone()))],
    )
    .unwrap();
    for num in 1..=30_000 {
        assert_eq!(push(&mut ingest, num, num % 101, 100), Pushed::Queued);
    }
    ingest.close();
    let s = pipeline
        .finish(Instant::now() + Duration::from_secs(60))
        .snapshot;
    assert_accounted(&s);
    assert_eq!(s.written("memory"), 30_000);
    // 1 MiB holds about 49 batches of 128 packets of 164 charged bytes, plus the pending ones.
    assert!(s.batch_buffers <= 80, "{} batch buffers", s.batch_buffers);
}
