//! Lines of a JSON Lines input read as bytes, so that one undecodable line is quarantined on its
//! own instead of aborting the file: UTF-8 (a leading byte-order mark is skipped) or UTF-16 (with
//! a byte-order mark, or recognised by the NUL bytes of its first character).

use learnloop_linker::UndecodableLine;
use std::io::{self, BufRead};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// Iterator over the lines of `reader` (without their `\n` or `\r\n`). An undecodable line comes
/// out as an `InvalidData` error wrapping [`UndecodableLine`]; a read error ends the iteration.
pub struct DecodedLines<R> {
    reader: R,
    encoding: Option<Encoding>,
    done: bool,
}

impl<R: BufRead> DecodedLines<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            encoding: None,
            done: false,
        }
    }

    /// Recognise the encoding from the first bytes, consuming a byte-order mark.
    fn detect(&mut self) -> io::Result<Encoding> {
        let head = self.reader.fill_buf()?;
        let (encoding, bom_len) = match head {
            [0xEF, 0xBB, 0xBF, ..] => (Encoding::Utf8, 3),
            [0xFF, 0xFE, ..] => (Encoding::Utf16Le, 2),
            [0xFE, 0xFF, ..] => (Encoding::Utf16Be, 2),
            // No JSON Lines file starts with NUL: an ASCII character next to one is UTF-16.
            [a, 0, ..] if a.is_ascii() && *a != 0 => (Encoding::Utf16Le, 0),
            [0, b, ..] if b.is_ascii() && *b != 0 => (Encoding::Utf16Be, 0),
            _ => (Encoding::Utf8, 0),
        };
        self.reader.consume(bom_len);
        Ok(encoding)
    }

    fn next_utf8(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        trim_newline(&mut buf, b"\r\n");
        match String::from_utf8(buf) {
            Ok(text) => Ok(Some(text)),
            Err(e) => Err(undecodable(escape_utf8(e.as_bytes()), "UTF-8")),
        }
    }

    fn next_utf16(&mut self, big_endian: bool) -> io::Result<Option<String>> {
        let mut units = Vec::new();
        let mut pair = [0u8; 2];
        let mut any = false;
        loop {
            match read_unit(&mut self.reader, &mut pair)? {
                UnitRead::Eof => break,
                UnitRead::OddByte => {
                    any = true;
                    units.push(u16::from(pair[0]) | 0xDC00); // a lone low surrogate: undecodable
                    break;
                }
                UnitRead::Unit => {
                    any = true;
                    let unit = if big_endian {
                        u16::from_be_bytes(pair)
                    } else {
                        u16::from_le_bytes(pair)
                    };
                    if unit == u16::from(b'\n') {
                        break;
                    }
                    units.push(unit);
                }
            }
        }
        if !any {
            return Ok(None);
        }
        trim_newline(&mut units, &[u16::from(b'\r')]);
        match String::from_utf16(&units) {
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(undecodable(escape_utf16(&units), "UTF-16")),
        }
    }
}

enum UnitRead {
    Unit,
    OddByte,
    Eof,
}

fn read_unit(reader: &mut impl BufRead, pair: &mut [u8; 2]) -> io::Result<UnitRead> {
    let mut filled = 0;
    while filled < 2 {
        let n = reader.read(&mut pair[filled..])?;
        if n == 0 {
            return Ok(if filled == 0 {
                UnitRead::Eof
            } else {
                UnitRead::OddByte
            });
        }
        filled += n;
    }
    Ok(UnitRead::Unit)
}

fn trim_newline<T: PartialEq + Copy>(buf: &mut Vec<T>, endings: &[T]) {
    while buf.last().is_some_and(|c| endings.contains(c)) {
        buf.pop();
    }
}

fn undecodable(escaped: String, encoding: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        UndecodableLine { escaped, encoding },
    )
}

/// The valid parts as text, each invalid byte as `\xNN`: the quarantine keeps every byte.
fn escape_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

fn escape_utf16(units: &[u16]) -> String {
    char::decode_utf16(units.iter().copied())
        .map(|r| match r {
            Ok(c) => c.to_string(),
            Err(e) => format!("\\u{:04X}", e.unpaired_surrogate()),
        })
        .collect()
}

impl<R: BufRead> Iterator for DecodedLines<R> {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let encoding = match self.encoding {
            Some(e) => e,
            None => match self.detect() {
                Ok(e) => *self.encoding.insert(e),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            },
        };
        let line = match encoding {
            Encoding::Utf8 => self.next_utf8(),
            Encoding::Utf16Le => self.next_utf16(false),
            Encoding::Utf16Be => self.next_utf16(true),
        };
        match line {
            Ok(Some(text)) => Some(Ok(text)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Some(Err(e)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<Result<String, String>> {
        DecodedLines::new(bytes)
            .map(|r| {
                r.map_err(|e| {
                    let bad = e.get_ref().unwrap().downcast_ref::<UndecodableLine>();
                    bad.unwrap().escaped.clone()
                })
            })
            .collect()
    }

    #[test]
    fn an_invalid_utf8_line_is_reported_alone_with_its_bytes() {
        let got = lines(b"{\"a\":1}\n{\"b\":\"\xFF\xFEx\"}\r\n{\"c\":3}\n");
        assert_eq!(
            got,
            vec![
                Ok("{\"a\":1}".to_string()),
                Err("{\"b\":\"\\xFF\\xFEx\"}".to_string()),
                Ok("{\"c\":3}".to_string()),
            ]
        );
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped() {
        assert_eq!(
            lines(b"\xEF\xBB\xBF{\"a\":1}\n{}"),
            vec![Ok("{\"a\":1}".to_string()), Ok("{}".to_string())]
        );
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut units: Vec<u16> = text.encode_utf16().collect();
        if bom {
            units.insert(0, 0xFEFF);
        }
        units
            .into_iter()
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    }

    #[test]
    fn utf16_with_or_without_a_byte_order_mark_is_decoded() {
        let text = "{\"id\":\"é€𝄞\"}\r\n{\"b\":2}\n";
        let expected = vec![
            Ok("{\"id\":\"é€𝄞\"}".to_string()),
            Ok("{\"b\":2}".to_string()),
        ];
        for big_endian in [false, true] {
            for bom in [false, true] {
                assert_eq!(
                    lines(&utf16(text, big_endian, bom)),
                    expected,
                    "BE {big_endian} BOM {bom}"
                );
            }
        }
    }

    #[test]
    fn an_unpaired_surrogate_spoils_only_its_line() {
        let mut bytes = utf16("{}\n", false, true);
        bytes.extend([0x00, 0xD8, b'x', 0, b'\n', 0]);
        bytes.extend(utf16("{}", false, false));
        assert_eq!(
            lines(&bytes),
            vec![
                Ok("{}".to_string()),
                Err("\\uD800x".to_string()),
                Ok("{}".to_string())
            ]
        );
    }
}
