//! Translates a classic pcap file to JSON lines on stdout with the translator alone (no
//! daemon): `cargo run -p render --example translate_file -- FILE.pcap [debug|info] [N]`
//! (N: only packet N, 0-based). Handy to look at entries while working on the decoders.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use cloud_logging::Verbosity;
use render::{Interface, Source, Translator, TranslatorSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        return eprintln!("usage: translate_file FILE.pcap [debug|info] [N]");
    };
    let verbosity = match args.next().as_deref() {
        Some("info") => Verbosity::Info,
        _ => Verbosity::Debug,
    };
    let only: Option<usize> = args.next().and_then(|n| n.parse().ok());
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return eprintln!("{path}: {e}"),
    };
    let file = match wire::pcapfile::File::new(&bytes) {
        Ok(f) => f,
        Err(e) => return eprintln!("{path}: not a classic pcap ({e})"),
    };
    let source = Source {
        interface: Interface {
            index: 2,
            name: "eth0".into(),
            addrs: vec!["10.77.0.1".parse().unwrap()],
        },
        linktype: file.linktype(),
    };
    let mut t = Translator::new(TranslatorSettings {
        project_id: std::env::var("PROJECT").ok(),
        run_id: "pcapd/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into(),
        log_name: "projects/my-project/pcap/pcapd/5b1c6f3e-2a44-4bd1-9a4e-0c3f6a1b2d7e".into(),
        verbosity,
        ..TranslatorSettings::default()
    });
    let mut out = Vec::new();
    for p in file.records().map_while(Result::ok) {
        let start = out.len();
        t.translate(&source, &p, &mut out);
        if only.is_some_and(|n| n as u64 != p.num) {
            out.truncate(start);
        }
    }
    let _ = std::io::stdout().write_all(&out);
}
