use super::*;

fn frame(t: u8, fl: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = len.to_be_bytes()[1..].to_vec();
    v.push(t);
    v.push(fl);
    v.extend_from_slice(&sid.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// One frame of every type, with padding, priority, a reserved bit and debug data: the
/// frames a client and server exchange, back to back.
fn sequence() -> Vec<Vec<u8>> {
    vec![
        frame(4, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff]),
        frame(4, flags::ACK, 0, &[]),
        // PADDED | PRIORITY: pad length 3, exclusive dependency on 3, weight 15, block, pad.
        frame(
            1,
            flags::PADDED | flags::PRIORITY | flags::END_STREAM,
            1,
            &[3, 0x80, 0, 0, 3, 15, 0x82, 0x86, 0, 0, 0],
        ),
        frame(9, flags::END_HEADERS, 1, &[0x84]),
        frame(
            5,
            flags::PADDED | flags::END_HEADERS,
            1,
            &[1, 0, 0, 0, 2, 0x88, 0],
        ),
        frame(0, flags::PADDED | flags::END_STREAM, 1, b"\x02hello\0\0"),
        frame(0, 0, 3, b""),
        frame(2, 0, 3, &[0, 0, 0, 1, 16]),
        frame(3, 0, 1, &[0, 0, 0, 8]),
        frame(6, 0, 0, b"pingpong"),
        frame(7, 0, 0, b"\x80\0\0\x07\0\0\0\x0bcalm"),
        frame(8, 0, 0, &[0x80, 0, 0x10, 0]),
        frame(0x0b, 0xff, 0x8000_0005, b"ext"),
    ]
}

fn joined() -> Vec<u8> {
    sequence().concat()
}

/// Every payload view of `f`, as comparable values (`Err` kinds where refused).
#[allow(clippy::type_complexity)]
fn views(
    f: &Frame<'_>,
) -> (
    std::result::Result<Vec<(u16, u32)>, ErrorKind>,
    std::result::Result<(Vec<u8>, Option<(bool, u32, u8)>), ErrorKind>,
    std::result::Result<(u32, Vec<u8>), ErrorKind>,
    std::result::Result<Vec<u8>, ErrorKind>,
    std::result::Result<u32, ErrorKind>,
    std::result::Result<(u32, u32, Vec<u8>), ErrorKind>,
    std::result::Result<u32, ErrorKind>,
) {
    (
        Settings::new_checked(f)
            .map(|s| s.params().collect())
            .map_err(|e| e.kind),
        Headers::new_checked(f)
            .map(|h| (h.fragment().to_vec(), h.priority()))
            .map_err(|e| e.kind),
        PushPromise::new_checked(f)
            .map(|p| (p.promised_stream_id(), p.fragment().to_vec()))
            .map_err(|e| e.kind),
        Data::new_checked(f)
            .map(|d| d.data().to_vec())
            .map_err(|e| e.kind),
        RstStream::new_checked(f)
            .map(|r| r.error_code())
            .map_err(|e| e.kind),
        Goaway::new_checked(f)
            .map(|g| (g.last_stream_id(), g.error_code(), g.debug_data().to_vec()))
            .map_err(|e| e.kind),
        WindowUpdate::new_checked(f)
            .map(|w| w.increment())
            .map_err(|e| e.kind),
    )
}

/// Calls every getter and view of every frame of `b` and checks that what they return lies
/// inside `b`.
fn exercise(b: &[u8]) -> usize {
    let mut n = 0;
    for f in frames(b) {
        let Ok(f) = f else { continue };
        n += 1;
        let _ = (f.frame_type().name(), f.flags(), f.reserved_bit());
        let _ = (f.stream_id(), f.check(), f.check_strict());
        let _ = f.frame_type().flag_names(f.flags()).count();
        assert!(f.payload().len() <= f.length() as usize);
        assert_eq!(f.is_complete(), f.payload().len() == f.length() as usize);
        let v = views(&f);
        if let Ok((frag, _)) = &v.1 {
            assert!(frag.len() <= f.payload().len());
        }
        if let Ok(d) = &v.3 {
            assert!(d.len() <= f.payload().len());
        }
    }
    n
}

#[test]
fn header_fields() {
    let b = joined();
    let fs: Vec<Frame<'_>> = frames(&b).map(Result::unwrap).collect();
    assert_eq!(fs.len(), sequence().len());
    let h = &fs[2];
    assert_eq!(h.frame_type(), FrameType::Headers);
    assert_eq!((h.length(), h.stream_id(), h.total_len()), (11, 1, 20));
    assert_eq!(
        h.frame_type().flag_names(h.flags()).collect::<Vec<_>>(),
        ["END_STREAM", "PADDED", "PRIORITY"]
    );
    assert!(h.is_complete() && h.check_strict().is_ok());
    assert_eq!(
        fs[1]
            .frame_type()
            .flag_names(fs[1].flags())
            .collect::<Vec<_>>(),
        ["ACK"]
    );
    let ext = &fs[12];
    assert_eq!(ext.frame_type(), FrameType::Unknown(0x0b));
    assert_eq!(ext.frame_type().name(), "UNKNOWN");
    assert!(ext.reserved_bit());
    assert_eq!(ext.stream_id(), 5, "reserved bit masked");
    assert_eq!(ext.frame_type().flag_names(0xff).count(), 0);
    assert_eq!(ext.check(), Ok(()));
    assert_eq!(ext.check_strict(), Err(Rule::UnknownType));
    assert_eq!(ext.payload(), b"ext");
    // The view's payload stops at its frame, not at the buffer's end.
    assert_eq!(fs[0].payload().len(), 12);
    assert_eq!(error_name(0xb), "ENHANCE_YOUR_CALM");
    assert_eq!(setting_name(4), "INITIAL_WINDOW_SIZE");
    assert_eq!(setting_name(7), "UNKNOWN");
    assert_eq!(defined_setting_name(8), Some("ENABLE_CONNECT_PROTOCOL"));
    assert_eq!(defined_setting_name(7), None);
    assert_eq!(
        Frame::new_checked(&b[..8]).unwrap_err(),
        Error::new(ErrorKind::Truncated, 8)
    );
}

#[test]
fn payload_views() {
    let b = joined();
    let fs: Vec<Frame<'_>> = frames(&b).map(Result::unwrap).collect();
    let s: Vec<_> = Settings::new_checked(&fs[0]).unwrap().params().collect();
    assert_eq!(s, [(3, 100), (4, 0xffff)]);
    assert_eq!(Settings::new_checked(&fs[1]).unwrap().params().count(), 0);
    let h = Headers::new_checked(&fs[2]).unwrap();
    assert_eq!(h.fragment(), &[0x82, 0x86]);
    assert_eq!(h.priority(), Some((true, 3, 15)));
    let pp = PushPromise::new_checked(&fs[4]).unwrap();
    assert_eq!((pp.promised_stream_id(), pp.fragment()), (2, &[0x88][..]));
    assert_eq!(Data::new_checked(&fs[5]).unwrap().data(), b"hello");
    assert_eq!(Data::new_checked(&fs[6]).unwrap().data(), b"");
    assert_eq!(RstStream::new_checked(&fs[8]).unwrap().error_code(), 8);
    let g = Goaway::new_checked(&fs[10]).unwrap();
    assert_eq!((g.last_stream_id(), g.error_code()), (7, 0xb));
    assert_eq!(g.debug_data(), b"calm");
    assert_eq!(
        WindowUpdate::new_checked(&fs[11]).unwrap().increment(),
        0x1000
    );
    // A HEADERS frame without padding or priority is all fragment.
    let plain = frame(1, flags::END_HEADERS, 1, &[0x82]);
    let f = Frame::new_checked(&plain).unwrap();
    let h = Headers::new_checked(&f).unwrap();
    assert_eq!((h.fragment(), h.priority()), (&[0x82][..], None));
}

#[test]
fn padding_and_fixed_fields_that_do_not_fit_are_refused() {
    let bad = |t: u8, fl: u8, p: &[u8]| {
        let b = frame(t, fl, 1, p);
        let f = Frame::new_checked(&b).unwrap();
        let v = views(&f);
        match t {
            0 => v.3.map(|_| ()),
            1 => v.1.map(|_| ()),
            5 => v.2.map(|_| ()),
            _ => unreachable!(),
        }
    };
    assert_eq!(bad(1, flags::PADDED, &[]), Err(ErrorKind::BadLength));
    assert_eq!(
        bad(1, flags::PADDED, &[4, 1, 2, 3]),
        Err(ErrorKind::BadLength)
    );
    assert_eq!(bad(1, flags::PADDED, &[3, 1, 2, 3]), Ok(()), "all padding");
    assert_eq!(
        bad(1, flags::PRIORITY, &[0, 0, 0, 1]),
        Err(ErrorKind::BadLength)
    );
    assert_eq!(
        bad(1, flags::PRIORITY | flags::PADDED, &[1, 0, 0, 0, 1, 9]),
        Err(ErrorKind::BadLength),
        "priority fields in the padding"
    );
    assert_eq!(bad(5, 0, &[0, 0, 2]), Err(ErrorKind::BadLength));
    assert_eq!(
        bad(5, flags::PADDED, &[2, 0, 0, 0, 2, 0]),
        Err(ErrorKind::BadLength)
    );
    assert_eq!(bad(0, flags::PADDED, &[9, 1]), Err(ErrorKind::BadLength));
    assert_eq!(bad(0, flags::PADDED, &[]), Err(ErrorKind::BadLength));
    let short = |t: u8, p: &[u8]| {
        let b = frame(t, 0, 0, p);
        let f = Frame::new_checked(&b).unwrap();
        let v = views(&f);
        (v.0.err(), v.4.err(), v.5.err(), v.6.err())
    };
    let e = Some(ErrorKind::BadLength);
    assert_eq!(short(4, &[0; 5]).0, e);
    assert_eq!(short(3, &[0; 3]).1, e);
    assert_eq!(short(7, &[0; 7]).2, e);
    assert_eq!(short(8, &[0; 3]).3, e);
}

#[test]
fn header_rules() {
    let rule = |t: u8, fl: u8, sid: u32, p: &[u8]| {
        let b = frame(t, fl, sid, p);
        let f = Frame::new_checked(&b).unwrap();
        (f.check(), f.check_strict())
    };
    assert_eq!(rule(0, 0, 0, b"x").0, Err(Rule::StreamIdZero));
    assert_eq!(rule(4, 0, 1, &[]).0, Err(Rule::StreamIdNotZero));
    assert_eq!(rule(4, flags::ACK, 0, &[0; 6]).0, Err(Rule::BadLength));
    assert_eq!(rule(4, 0, 0, &[0; 7]).0, Err(Rule::BadLength));
    assert_eq!(rule(6, 0, 0, &[0; 7]).0, Err(Rule::BadLength));
    assert_eq!(rule(2, 0, 1, &[0; 4]).0, Err(Rule::BadLength));
    assert_eq!(rule(7, 0, 0, &[0; 7]).0, Err(Rule::BadLength));
    assert_eq!(rule(8, 0, 7, &[0; 4]), (Ok(()), Ok(())), "either stream");
    assert_eq!(rule(4, 0x02, 0, &[]), (Ok(()), Err(Rule::UndefinedFlags)));
    assert_eq!(rule(8, 0, 0x8000_0000, &[0; 4]).1, Err(Rule::ReservedBit));
    let big = vec![0; DEFAULT_MAX_FRAME as usize + 1];
    assert_eq!(rule(0, 0, 1, &big), (Ok(()), Err(Rule::OverDefaultMax)));
    assert_eq!(Rule::BadLength.to_string(), "bad length for the frame type");
}

#[test]
fn recognition() {
    let b = joined();
    let known = sequence()[..12].concat();
    assert!(looks_like_http2(&known));
    assert!(
        !looks_like_http2(&b),
        "the extension frame fails the strict check"
    );
    assert!(looks_like_http2(PREFACE));
    assert!(!looks_like_http2(&[]));
    assert!(
        looks_like_http2(&known[..known.len() - 1]),
        "the last frame may be cut"
    );
    // The first frame must be complete; a later one may be cut, but not inside its header.
    assert!(!looks_like_http2(&known[..20]));
    assert!(looks_like_http2(&known[..30]));
    assert!(!looks_like_http2(&known[..25]));
}

/// Every prefix of a valid sequence gives the same frames, the last one shorter (its
/// payload a prefix of the original's, every payload view refusing it as `Truncated`) or a
/// `Truncated` error for a cut header; never a panic, never a frame that was not there.
#[test]
fn every_cut_is_an_error_or_a_shorter_view() {
    let whole = joined();
    let full: Vec<Frame<'_>> = frames(&whole).map(Result::unwrap).collect();
    for cut in 0..=whole.len() {
        let b = &whole[..cut];
        let got: Vec<_> = frames(b).collect();
        assert!(got.len() <= full.len(), "cut {cut}");
        for (i, r) in got.iter().enumerate() {
            let last = i + 1 == got.len();
            let f = match r {
                Ok(f) => f,
                Err(e) => {
                    assert!(last, "cut {cut}: only the last item is an error");
                    assert_eq!(e.kind, ErrorKind::Truncated, "cut {cut}");
                    assert!(e.offset < FRAME_HEADER_LEN);
                    continue;
                }
            };
            let o = &full[i];
            assert_eq!(
                (f.length(), f.frame_type(), f.flags(), f.stream_id()),
                (o.length(), o.frame_type(), o.flags(), o.stream_id()),
                "cut {cut} frame {i}"
            );
            assert_eq!(f.check(), o.check());
            assert!(o.payload().starts_with(f.payload()));
            if f.is_complete() {
                assert_eq!(f.payload(), o.payload());
                assert_eq!(views(f), views(o), "cut {cut} frame {i}");
            } else {
                assert!(last, "cut {cut}: only the last frame is cut");
                let v = views(f);
                let t = Err(ErrorKind::Truncated);
                assert_eq!(v.0.map(|_| ()), t);
                assert_eq!(v.1.map(|_| ()), t);
                assert_eq!(v.2.map(|_| ()), t);
                assert_eq!(v.3.map(|_| ()), t);
                assert_eq!(v.4.map(|_| ()), t);
                assert_eq!(v.5.map(|_| ()), t);
                assert_eq!(v.6.map(|_| ()), t);
            }
        }
        // Starting anywhere inside the cut: lengths read from payload bytes lie.
        for at in 0..=b.len() {
            exercise(&b[at..]);
        }
    }
}

/// Values that make lengths, pad lengths and types lie.
const LIES: [u8; 10] = [0x00, 0x01, 0x03, 0x05, 0x08, 0x09, 0x28, 0x7f, 0x80, 0xff];

#[test]
fn every_byte_set_to_lying_values() {
    let whole = joined();
    let mut frames_read = 0;
    for pos in 0..whole.len() {
        for v in LIES {
            let mut m = whole.clone();
            m[pos] = v;
            frames_read += exercise(&m);
            frames_read += exercise(&m[..m.len() / 2]);
            let _ = looks_like_http2(&m);
        }
    }
    assert!(
        frames_read > 10_000,
        "mutated frames were read ({frames_read})"
    );
}
