//! RESP2, the Redis wire protocol: commands out (arrays of bulk strings), replies in.
//!
//! Replies are parsed from a byte buffer the connection fills; a reply that is not
//! complete yet reports [`Parse::More`] and the connection reads more. Nothing here does
//! I/O, so the parser is tested on byte strings.

/// One reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Null bulk or null array.
    Nil,
    /// `:n`
    Int(i64),
    /// `$n` bytes.
    Bulk(Vec<u8>),
    /// `+OK`
    Status(String),
    /// `-ERR ...` (the server refused or the script raised).
    Err(String),
    /// `*n` elements.
    Array(Vec<Reply>),
}

impl Reply {
    /// The bytes of a bulk or status reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
    /// An integer reply, or a bulk holding a decimal integer.
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            Reply::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// Appends one command (array of bulk strings) to `out`.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.reserve(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    header(out, b'*', args.len());
    for a in args {
        header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// `*N\r\n` or `$N\r\n`, the digits written by hand: `write!` went through the
/// formatting machinery for every argument, a third of a call's client instructions
/// (callgrind).
fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push(kind);
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// The outcome of parsing from the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// A reply and the bytes it took.
    Done(Reply, usize),
    /// Not complete yet.
    More,
    /// Not RESP (the connection must be dropped).
    Bad(&'static str),
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..i], from + i + 2))
}

fn num(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Largest bulk string accepted (Redis' own proto-max-bulk-len default is 512 MB).
const MAX_BULK: i64 = 1 << 31;

/// Parses one reply starting at `buf[from]`.
pub fn parse(buf: &[u8], from: usize) -> Parse {
    // Nesting is bounded: a reply nested deeper than this is not one of ours.
    parse_depth(buf, from, 0)
}

fn parse_depth(buf: &[u8], from: usize, depth: u32) -> Parse {
    if depth > 8 {
        return Parse::Bad("reply nested too deep");
    }
    let Some(&t) = buf.get(from) else { return Parse::More };
    let Some((l, next)) = line(buf, from + 1) else { return Parse::More };
    match t {
        b'+' => Parse::Done(Reply::Status(String::from_utf8_lossy(l).into_owned()), next - from),
        b'-' => Parse::Done(Reply::Err(String::from_utf8_lossy(l).into_owned()), next - from),
        b':' => match num(l) {
            Some(n) => Parse::Done(Reply::Int(n), next - from),
            None => Parse::Bad("bad integer reply"),
        },
        b'$' => match num(l) {
            Some(-1) => Parse::Done(Reply::Nil, next - from),
            Some(n) if (0..=MAX_BULK).contains(&n) => {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Parse::More;
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Parse::Bad("bulk reply not terminated");
                }
                Parse::Done(Reply::Bulk(buf[next..end].to_vec()), end + 2 - from)
            }
            _ => Parse::Bad("bad bulk length"),
        },
        b'*' => match num(l) {
            Some(-1) => Parse::Done(Reply::Nil, next - from),
            Some(n) if (0..=(1 << 28)).contains(&n) => {
                let mut items = Vec::with_capacity((n as usize).min(4096));
                let mut at = next;
                for _ in 0..n {
                    match parse_depth(buf, at, depth + 1) {
                        Parse::Done(r, used) => {
                            items.push(r);
                            at += used;
                        }
                        other => return other,
                    }
                }
                Parse::Done(Reply::Array(items), at - from)
            }
            _ => Parse::Bad("bad array length"),
        },
        _ => Parse::Bad("unknown reply type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        let mut v = Vec::new();
        encode(&mut v, &[b"HGET", b"k", b""]);
        assert_eq!(v, b"*3\r\n$4\r\nHGET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_every_reply_kind_and_waits_for_partial_ones() {
        let all = b"+OK\r\n-ERR no\r\n:-42\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n$1\r\nx\r\n*1\r\n:1\r\n*-1\r\n";
        let mut at = 0;
        let mut got = Vec::new();
        while at < all.len() {
            match parse(all, at) {
                Parse::Done(r, n) => {
                    got.push(r);
                    at += n;
                }
                p => panic!("{p:?} at {at}"),
            }
        }
        assert_eq!(
            got,
            vec![
                Reply::Status("OK".into()),
                Reply::Err("ERR no".into()),
                Reply::Int(-42),
                Reply::Bulk(b"a\r\n".to_vec()),
                Reply::Nil,
                Reply::Array(vec![Reply::Bulk(b"x".to_vec()), Reply::Array(vec![Reply::Int(1)])]),
                Reply::Nil,
            ]
        );
        // Every strict prefix of a reply is incomplete, never an error.
        for cut in 0..all.len() {
            let p = parse(&all[..cut], 0);
            assert!(matches!(p, Parse::More | Parse::Done(..)), "{cut}: {p:?}");
        }
        assert!(matches!(parse(b"?x\r\n", 0), Parse::Bad(_)));
        assert!(matches!(parse(b"$2\r\nabcd", 0), Parse::Bad(_)));
        assert_eq!(Reply::Bulk(b"-9223372036854775808".to_vec()).int(), Some(i64::MIN));
    }
}
