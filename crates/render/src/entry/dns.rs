//! `DNS`: questions, records and EDNS.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use wire::dns;

use super::{Disp, FlagNames, Lossy};
use crate::fields as f;

/// DNS records written per section (the counts are always complete).
const MAX_DNS_RECORDS: usize = 32;

pub(super) struct DnsJson<'a> {
    pub(super) m: dns::Message<'a>,
    pub(super) debug: bool,
}

impl Serialize for DnsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = &self.m;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::ID, &d.id())?;
        m.serialize_entry(f::QR, &d.is_response())?;
        m.serialize_entry(f::OP, d.opcode().name())?;
        m.serialize_entry(f::RESPONSE_CODE, d.rcode().name())?;
        m.serialize_entry(f::QUESTIONS, &Questions(*d, self.debug))?;
        m.serialize_entry(
            f::ANSWERS,
            &RecordsJson(*d, dns::Section::Answer, self.debug),
        )?;
        if !self.debug {
            return m.end();
        }
        let flags = [
            (d.authoritative(), "AA"),
            (d.truncated_flag(), "TC"),
            (d.recursion_desired(), "RD"),
            (d.recursion_available(), "RA"),
            (d.authentic_data(), "AD"),
            (d.checking_disabled(), "CD"),
        ];
        m.serialize_entry(f::FLAGS, &FlagNames(flags))?;
        m.serialize_entry(f::QUESTIONS_COUNT, &d.qdcount())?;
        m.serialize_entry(f::ANSWERS_COUNT, &d.ancount())?;
        m.serialize_entry(f::AUTHORITIES_COUNT, &d.nscount())?;
        m.serialize_entry(f::ADDITIONALS_COUNT, &d.arcount())?;
        if d.nscount() > 0 {
            m.serialize_entry(
                f::AUTHORITIES,
                &RecordsJson(*d, dns::Section::Authority, true),
            )?;
        }
        let opt = d
            .records()
            .map_while(Result::ok)
            .find(|r| r.rtype == dns::Type::Opt);
        let others = d
            .records()
            .map_while(Result::ok)
            .any(|r| r.section == dns::Section::Additional && r.rtype != dns::Type::Opt);
        if others {
            m.serialize_entry(
                f::ADDITIONALS,
                &RecordsJson(*d, dns::Section::Additional, true),
            )?;
        }
        if let Some(Ok(dns::RData::Opt(o))) = opt.map(|r| r.data()) {
            m.serialize_entry(f::EDNS, &Edns(o))?;
        }
        m.end()
    }
}

struct Questions<'a>(dns::Message<'a>, bool);

impl Serialize for Questions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for q in self
            .0
            .questions()
            .map_while(Result::ok)
            .take(MAX_DNS_RECORDS)
        {
            seq.serialize_element(&QuestionJson(q, self.1))?;
        }
        seq.end()
    }
}

struct QuestionJson<'a>(dns::Question<'a>, bool);

impl Serialize for QuestionJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let q = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::NAME, &Disp(q.name))?;
        m.serialize_entry(f::TYPE, &DnsType(q.qtype))?;
        if self.1 {
            m.serialize_entry(f::CLASS, dns::class_name(q.qclass))?;
        }
        m.end()
    }
}

/// A type's mnemonic, or `TYPE<n>` (RFC 3597) for unknown ones.
struct DnsType(dns::Type);

impl Serialize for DnsType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            dns::Type::Unknown(n) => s.collect_str(&format_args!("TYPE{n}")),
            t => s.serialize_str(t.name()),
        }
    }
}

struct RecordsJson<'a>(dns::Message<'a>, dns::Section, bool);

impl Serialize for RecordsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let recs = self
            .0
            .records()
            .map_while(Result::ok)
            .filter(|r| r.section == self.1 && r.rtype != dns::Type::Opt)
            .take(MAX_DNS_RECORDS);
        for r in recs {
            seq.serialize_element(&RecordJson(r, self.2))?;
        }
        seq.end()
    }
}

struct RecordJson<'a>(dns::Record<'a>, bool);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::NAME, &Disp(r.name))?;
        m.serialize_entry(f::TYPE, &DnsType(r.rtype))?;
        if self.1 {
            m.serialize_entry(f::CLASS, dns::class_name(r.class))?;
            m.serialize_entry(f::TTL, &r.ttl)?;
        }
        match r.data() {
            Ok(dns::RData::A(a)) => m.serialize_entry(f::IP, &Disp(a))?,
            Ok(dns::RData::Aaaa(a)) => m.serialize_entry(f::IP, &Disp(a))?,
            Ok(dns::RData::Ns(n)) => m.serialize_entry(f::NS, &Disp(n))?,
            Ok(dns::RData::Cname(n)) => m.serialize_entry(f::CNAME, &Disp(n))?,
            Ok(dns::RData::Ptr(n)) => m.serialize_entry(f::PTR, &Disp(n))?,
            Ok(dns::RData::Mx {
                preference,
                exchange,
            }) => m.serialize_entry(
                f::MX,
                &Mx {
                    preference,
                    host: Disp(exchange),
                },
            )?,
            Ok(dns::RData::Txt(t)) => m.serialize_entry(f::TXT, &Txt(t))?,
            Ok(dns::RData::Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            }) => m.serialize_entry(
                f::SOA,
                &Soa {
                    mname: Disp(mname),
                    rname: Disp(rname),
                    serial,
                    refresh,
                    retry,
                    expire,
                    minimum,
                },
            )?,
            Ok(dns::RData::Srv {
                priority,
                weight,
                port,
                target,
            }) => m.serialize_entry(
                f::SRV,
                &Srv {
                    priority,
                    weight,
                    port,
                    target: Disp(target),
                },
            )?,
            Ok(dns::RData::Caa { flags, tag, value }) => m.serialize_entry(
                f::CAA,
                &Caa {
                    flags,
                    tag: Disp(Lossy(tag)),
                    value: Disp(Lossy(value)),
                },
            )?,
            Ok(dns::RData::Opt(_)) | Ok(dns::RData::Raw(_)) | Err(_) => {
                m.serialize_entry(f::DATA, &Disp(wire::hex(r.rdata())))?
            }
        }
        m.end()
    }
}

struct Mx<N: Serialize> {
    preference: u16,
    host: N,
}

f::serialize_with_keys!([N: Serialize] Mx<N> {
    preference: f::PREFERENCE,
    host: f::HOST,
});

struct Soa<N: Serialize> {
    mname: N,
    rname: N,
    serial: u32,
    refresh: u32,
    retry: u32,
    expire: u32,
    minimum: u32,
}

f::serialize_with_keys!([N: Serialize] Soa<N> {
    mname: f::MNAME,
    rname: f::RNAME,
    serial: f::SERIAL,
    refresh: f::REFRESH,
    retry: f::RETRY,
    expire: f::EXPIRE,
    minimum: f::MINIMUM,
});

struct Srv<N: Serialize> {
    priority: u16,
    weight: u16,
    port: u16,
    target: N,
}

f::serialize_with_keys!([N: Serialize] Srv<N> {
    priority: f::PRIORITY,
    weight: f::WEIGHT,
    port: f::PORT,
    target: f::TARGET,
});

struct Caa<T: Serialize> {
    flags: u8,
    tag: T,
    value: T,
}

f::serialize_with_keys!([T: Serialize] Caa<T> {
    flags: f::FLAGS,
    tag: f::TAG,
    value: f::VALUE,
});

struct Txt<'a>(dns::CharStrings<'a>);

impl Serialize for Txt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.take(MAX_DNS_RECORDS).map(|b| Disp(Lossy(b))))
    }
}

struct Edns<'a>(dns::Opt<'a>);

impl Serialize for Edns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = &self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(f::UDP_SIZE, &o.udp_payload_size)?;
        m.serialize_entry(f::VERSION, &o.version)?;
        m.serialize_entry(f::DO, &o.dnssec_ok)?;
        if o.ext_rcode != 0 {
            m.serialize_entry(f::EXT_RCODE, &o.ext_rcode)?;
        }
        m.serialize_entry(f::OPTIONS, &EdnsOpts(o.options))?;
        m.end()
    }
}

struct EdnsOpts<'a>(dns::OptOptions<'a>);

impl Serialize for EdnsOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .take(MAX_DNS_RECORDS)
                .map(|(code, _)| dns::edns_option_name(code)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(v: T) -> String {
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn record_objects() {
        let mx = Mx {
            preference: 10,
            host: "mail.example",
        };
        assert_eq!(json(mx), r#"{"preference":10,"host":"mail.example"}"#);
        let soa = Soa {
            mname: "ns1",
            rname: "admin",
            serial: 1,
            refresh: 2,
            retry: 3,
            expire: 4,
            minimum: 5,
        };
        assert_eq!(
            json(soa),
            r#"{"mname":"ns1","rname":"admin","serial":1,"refresh":2,"retry":3,"expire":4,"minimum":5}"#
        );
        let srv = Srv {
            priority: 1,
            weight: 2,
            port: 5060,
            target: "sip",
        };
        assert_eq!(
            json(srv),
            r#"{"priority":1,"weight":2,"port":5060,"target":"sip"}"#
        );
        let caa = Caa {
            flags: 128,
            tag: "issue",
            value: "ca.example",
        };
        assert_eq!(
            json(caa),
            r#"{"flags":128,"tag":"issue","value":"ca.example"}"#
        );
    }
}
