//! The one-line `message` summary of the original's JSON translator, with the original's bugs
//! fixed: the real ack number, a real flow id for ARP and L2 frames (no literal `{flowID}`),
//! no dangling separator.
//!
//! `#:<num> | @:<ifindex>/<ifname> | flow:<id> | TCP | <sproto>/<src>:<sport> >
//! <dproto>/<dst>:<dport> | [<flags>] | len/seq/ack:<len>/<seq>/<ack>` then suffixes:
//! ` | size:<n>` for a non-HTTP payload, ` | DNS …`, ` | TLS …`, ` | HTTP/1.1 <METHOD> <url>`,
//! ` | HTTP/1.1 <code> <reason> | latency:<d>`, ` | <HTTP error code>: <info>`,
//! ` | [<TCP analysis>]` (Wireshark's words: `TCP Retransmission`, `TCP ZeroWindow`…),
//! ` | error:<layer>/<kind>@<offset>`.
//!
//! INFO (and SUMMARY's packet entries) write a compact line: `#:<num>`, then the same
//! without the interface and flow id (`flow` is a field of its own), service names and TCP
//! sequence numbers: `#:<num> | TCP | <src>:<sport> > <dst>:<dport> | [<flags>] | len:<len>`.

use std::fmt::Write;

use analyze::l7::App;
use analyze::{Decoded, Network, Transport};
use wire::{dns, tls};

use crate::entry::FlowFacts;
use wire::CapturedPacket;

use crate::Source;

pub(crate) fn write(
    out: &mut String,
    source: &Source,
    p: &CapturedPacket<'_>,
    d: &Decoded<'_>,
    app: &App<'_>,
    flow: &FlowFacts,
    debug: bool,
) {
    out.clear();
    if debug {
        let _ = write!(
            out,
            "#:{} | @:{}/{} | flow:",
            p.num, source.interface.index, source.interface.name
        );
        match flow.id {
            Some(id) => {
                let _ = write!(out, "{id}");
            }
            None => out.push('-'),
        }
    } else {
        let _ = write!(out, "#:{}", p.num);
    }
    let _ = body(out, d, app, debug);
    if let Some(l) = flow.tcp.as_ref().and_then(crate::tcp::label) {
        let _ = write!(out, " | [{l}]");
    }
    if let Some(e) = flow.error {
        let _ = write!(
            out,
            " | error:{}/{}@{}",
            e.layer.name(),
            e.kind.as_str(),
            e.offset
        );
    }
}

fn service(tcp: bool, port: u16, debug: bool) -> &'static str {
    if !debug {
        return "";
    }
    let name = if tcp {
        analyze::services::tcp(port)
    } else {
        analyze::services::udp(port)
    };
    name.unwrap_or("")
}

fn body(out: &mut String, d: &Decoded<'_>, app: &App<'_>, debug: bool) -> std::fmt::Result {
    let slash = |name: &str| if name.is_empty() && !debug { "" } else { "/" };
    let Some(net) = d.network else {
        return Ok(());
    };
    let (src, dst) = match (net, d.ip_addrs()) {
        (Network::Arp(a), _) => {
            out.push_str(" | ARP | ");
            match (a.sender_ip(), a.target_ip()) {
                (Some(s), Some(t)) => write!(out, "{s} > {t}")?,
                _ => write!(out, "{} > {}", a.sender_hw(), a.target_hw())?,
            }
            return write!(out, " | {}", a.operation().name());
        }
        (Network::Other(t), _) => {
            write!(out, " | {}", t.name())?;
            if let analyze::Link::Ethernet(f) = d.link {
                write!(out, " | {} > {}", f.src(), f.dst())?;
            }
            return Ok(());
        }
        (_, Some(addrs)) => addrs,
        _ => return Ok(()),
    };
    match d.transport {
        Some(Transport::Tcp(t)) => {
            let (s, d2) = (
                service(true, t.src_port(), debug),
                service(true, t.dst_port(), debug),
            );
            write!(
                out,
                " | TCP | {s}{}{src}:{} > {d2}{}{dst}:{} | [{}]",
                slash(s),
                t.src_port(),
                slash(d2),
                t.dst_port(),
                t.flags(),
            )?;
            if debug {
                write!(
                    out,
                    " | len/seq/ack:{}/{}/{}",
                    d.payload.len(),
                    t.seq(),
                    t.ack()
                )?;
            } else {
                write!(out, " | len:{}", d.payload.len())?;
            }
        }
        Some(Transport::Udp(u)) => {
            let (s, d2) = (
                service(false, u.src_port(), debug),
                service(false, u.dst_port(), debug),
            );
            write!(
                out,
                " | UDP | {s}{}{src}:{} > {d2}{}{dst}:{}",
                slash(s),
                u.src_port(),
                slash(d2),
                u.dst_port()
            )?;
        }
        Some(Transport::Icmpv4(i)) => write!(out, " | ICMPv4 | {src} > {dst} | {}", i.type_code())?,
        Some(Transport::Icmpv6(i)) => write!(out, " | ICMPv6 | {src} > {dst} | {}", i.type_code())?,
        Some(Transport::Fragment(p)) => {
            let off = match net {
                Network::Ipv4(ip) => ip.frag_offset(),
                Network::Ipv6(ip) => ip.fragment().map(|f| f.offset).unwrap_or(0),
                _ => 0,
            };
            write!(out, " | {} | {src} > {dst} | fragment off:{off}", p.name())?;
        }
        Some(Transport::Other(p)) => write!(out, " | {} | {src} > {dst}", p.name())?,
        None => {
            let name = d.ip_protocol().map(|p| p.name()).unwrap_or("IP");
            write!(out, " | {name} | {src} > {dst}")?;
        }
    }
    match app {
        App::None => {}
        App::Stream(note) => {
            write!(out, " | size:{} | {}", d.payload.len(), note.name())?;
        }
        App::Opaque(p) => {
            if matches!(d.transport, Some(Transport::Tcp(_))) {
                write!(out, " | size:{}", p.len())?;
            }
        }
        App::Tls(p) => {
            if matches!(d.transport, Some(Transport::Tcp(_))) {
                write!(out, " | size:{}", d.payload.len())?;
            }
            tls_suffix(out, p)?;
        }
        App::Dns(m) => dns_suffix(out, m)?,
        App::Http(m) => crate::http::summary(out, m),
        App::Http2(s) => crate::http2::summary(out, s),
    }
    Ok(())
}

fn dns_suffix(out: &mut String, m: &dns::Message<'_>) -> std::fmt::Result {
    let kind = if m.is_response() { "Response" } else { "Query" };
    write!(out, " | DNS {kind} {}", m.id())?;
    if m.is_response() {
        write!(out, " {}", m.rcode().mnemonic())?;
    }
    if let Some(Ok(q)) = m.questions().next() {
        write!(out, " {} {}", q.qtype.name(), q.name)?;
    }
    if m.is_response() {
        write!(out, " answers:{}", m.ancount())?;
    }
    Ok(())
}

fn tls_suffix(out: &mut String, payload: &[u8]) -> std::fmt::Result {
    let Some(r) = tls::records(payload).next() else {
        return Ok(());
    };
    out.push_str(" | TLS ");
    match r.handshake() {
        Some(h) => {
            out.push_str(tls::handshake_name(h.msg_type()));
            if let Some(hello) = h.hello() {
                if let Some(sni) = hello.server_name {
                    write!(out, " sni:{}", String::from_utf8_lossy(sni))?;
                }
                let mut alpn = hello.alpn().peekable();
                if alpn.peek().is_some() {
                    out.push_str(" alpn:");
                    for (i, a) in alpn.enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&String::from_utf8_lossy(a));
                    }
                }
                if !hello.client {
                    write!(out, " {}", tls::version_name(hello.selected_version()))?;
                }
            }
        }
        None => out.push_str(r.content_type().name()),
    }
    Ok(())
}
