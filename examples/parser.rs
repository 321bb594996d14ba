//! A streaming parser for a stream of JSON values (one record after another,
//! as in JSON Lines), written as plain recursive descent.
//!
//! The bytes arrive in chunks of any size, split anywhere: in the middle of
//! a string, a number, a `\u` escape or a UTF-8 character. A parser written
//! for a push-based stream usually becomes an explicit state machine with
//! its own stack of half-built values. Here the parser is written as if it
//! had the whole input: when it runs out of bytes it suspends its coroutine,
//! keeping its whole call stack (and the half-built values on it) as it is,
//! and continues when the next chunk is fed. Each record is yielded as soon
//! as its last byte has arrived.
//!
//! Run with `cargo run --example parser`.

use std::fmt;

use stackswitch::stack::DefaultStack;
use stackswitch::{Coroutine, CoroutineResult, Yielder};

/// A JSON value. Objects keep their keys in input order.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Where and why the stream is not valid JSON.
#[derive(Clone, Debug, PartialEq)]
struct ParseError {
    /// Offset in the whole stream, in bytes.
    offset: usize,
    message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// What the parser coroutine is resumed with: the next chunk of bytes, or
/// `None` for the end of the stream.
type Chunk = Option<Vec<u8>>;
/// What it suspends with: a completed record, or `None` to ask for input.
type Step = Option<Value>;

// ---------------------------------------------------------------------------
// The parser: straight-line code that reads bytes as if they were all there.
// ---------------------------------------------------------------------------

/// The parser's view of the stream. Reading past the bytes fed so far
/// suspends the coroutine until more arrive.
struct Input<'y> {
    yielder: &'y Yielder<Chunk, Step>,
    /// The current chunk; bytes before `pos` are consumed.
    chunk: Vec<u8>,
    pos: usize,
    /// Offset of `chunk[0]` in the whole stream.
    chunk_offset: usize,
    at_end: bool,
}

impl<'y> Input<'y> {
    fn new(yielder: &'y Yielder<Chunk, Step>, first: Chunk) -> Self {
        let at_end = first.is_none();
        Input {
            yielder,
            chunk: first.unwrap_or_default(),
            pos: 0,
            chunk_offset: 0,
            at_end,
        }
    }

    /// The next byte, without consuming it; `None` at the end of the stream.
    fn peek(&mut self) -> Option<u8> {
        while self.pos == self.chunk.len() && !self.at_end {
            self.chunk_offset += self.chunk.len();
            self.pos = 0;
            // The only place the parser waits for input. The whole call
            // stack above this line stays as it is until the next chunk.
            match self.yielder.suspend(None) {
                Some(chunk) => self.chunk = chunk,
                None => {
                    self.chunk.clear();
                    self.at_end = true;
                }
            }
        }
        self.chunk.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek();
        if byte.is_some() {
            self.pos += 1;
        }
        byte
    }

    fn offset(&self) -> usize {
        self.chunk_offset + self.pos
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.offset(),
            message: message.into(),
        }
    }

    fn expect(&mut self, expected: u8) -> Result<(), ParseError> {
        match self.next() {
            Some(byte) if byte == expected => Ok(()),
            Some(byte) => Err(self.error(format!(
                "expected '{}', found '{}'",
                expected as char,
                byte.escape_ascii()
            ))),
            None => Err(self.error(format!("expected '{}', found the end", expected as char))),
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Hands a completed record to the caller of `feed`.
    fn emit(&self, record: Value) {
        // `feed` resumes right away with no new chunk: it keeps the chunk
        // it is feeding until the parser asks for more in `peek`.
        let resumed_with = self.yielder.suspend(Some(record));
        debug_assert!(resumed_with.is_none());
    }
}

/// The whole stream: values separated by whitespace, until the end.
fn parse_stream(input: &mut Input<'_>) -> Result<usize, ParseError> {
    let mut records = 0;
    loop {
        input.skip_whitespace();
        if input.peek().is_none() {
            return Ok(records);
        }
        let record = parse_value(input)?;
        input.emit(record);
        records += 1;
    }
}

fn parse_value(input: &mut Input<'_>) -> Result<Value, ParseError> {
    input.skip_whitespace();
    match input.peek() {
        Some(b'{') => parse_object(input),
        Some(b'[') => parse_array(input),
        Some(b'"') => parse_string(input).map(Value::String),
        Some(b't') => parse_keyword(input, "true", Value::Bool(true)),
        Some(b'f') => parse_keyword(input, "false", Value::Bool(false)),
        Some(b'n') => parse_keyword(input, "null", Value::Null),
        Some(b'-' | b'0'..=b'9') => parse_number(input),
        Some(byte) => Err(input.error(format!("unexpected '{}'", byte.escape_ascii()))),
        None => Err(input.error("unexpected end of input")),
    }
}

fn parse_object(input: &mut Input<'_>) -> Result<Value, ParseError> {
    input.expect(b'{')?;
    let mut members = Vec::new();
    input.skip_whitespace();
    if input.peek() == Some(b'}') {
        input.next();
        return Ok(Value::Object(members));
    }
    loop {
        input.skip_whitespace();
        let key = parse_string(input)?;
        input.skip_whitespace();
        input.expect(b':')?;
        members.push((key, parse_value(input)?));
        input.skip_whitespace();
        match input.next() {
            Some(b',') => continue,
            Some(b'}') => return Ok(Value::Object(members)),
            None => return Err(input.error("unexpected end of input")),
            _ => return Err(input.error("expected ',' or '}' in an object")),
        }
    }
}

fn parse_array(input: &mut Input<'_>) -> Result<Value, ParseError> {
    input.expect(b'[')?;
    let mut items = Vec::new();
    input.skip_whitespace();
    if input.peek() == Some(b']') {
        input.next();
        return Ok(Value::Array(items));
    }
    loop {
        items.push(parse_value(input)?);
        input.skip_whitespace();
        match input.next() {
            Some(b',') => continue,
            Some(b']') => return Ok(Value::Array(items)),
            None => return Err(input.error("unexpected end of input")),
            _ => return Err(input.error("expected ',' or ']' in an array")),
        }
    }
}

fn parse_string(input: &mut Input<'_>) -> Result<String, ParseError> {
    input.expect(b'"')?;
    let start = input.offset();
    let mut bytes = Vec::new();
    loop {
        match input.next() {
            Some(b'"') => break,
            Some(b'\\') => {
                let escaped = match input.next() {
                    Some(b'"') => '"',
                    Some(b'\\') => '\\',
                    Some(b'/') => '/',
                    Some(b'b') => '\u{8}',
                    Some(b'f') => '\u{c}',
                    Some(b'n') => '\n',
                    Some(b'r') => '\r',
                    Some(b't') => '\t',
                    Some(b'u') => parse_unicode_escape(input)?,
                    _ => return Err(input.error("invalid escape")),
                };
                bytes.extend_from_slice(escaped.encode_utf8(&mut [0; 4]).as_bytes());
            }
            Some(byte) if byte < 0x20 => return Err(input.error("control character in a string")),
            Some(byte) => bytes.push(byte),
            None => return Err(input.error("unterminated string")),
        }
    }
    String::from_utf8(bytes).map_err(|_| ParseError {
        offset: start,
        message: "string is not UTF-8".into(),
    })
}

/// The four hex digits after `\u` (characters outside the Basic
/// Multilingual Plane, written as surrogate pairs, are left out for brevity).
fn parse_unicode_escape(input: &mut Input<'_>) -> Result<char, ParseError> {
    let mut code = 0;
    for _ in 0..4 {
        let digit = input.next().and_then(|b| (b as char).to_digit(16));
        code = code * 16 + digit.ok_or_else(|| input.error("invalid \\u escape"))?;
    }
    char::from_u32(code).ok_or_else(|| input.error("unpaired surrogate in \\u escape"))
}

fn parse_keyword(input: &mut Input<'_>, word: &str, value: Value) -> Result<Value, ParseError> {
    for expected in word.bytes() {
        if input.next() != Some(expected) {
            return Err(input.error(format!("invalid literal, expected '{word}'")));
        }
    }
    Ok(value)
}

fn parse_number(input: &mut Input<'_>) -> Result<Value, ParseError> {
    let start = input.offset();
    let mut text = String::new();
    while let Some(byte @ (b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) = input.peek() {
        text.push(byte as char);
        input.next();
    }
    text.parse().map(Value::Number).map_err(|_| ParseError {
        offset: start,
        message: format!("invalid number '{text}'"),
    })
}

// ---------------------------------------------------------------------------
// The push side: what the rest of the program sees.
// ---------------------------------------------------------------------------

/// A parser that is fed chunks and returns the records they complete.
struct StreamParser {
    coroutine: Coroutine<Chunk, Step, Result<usize, ParseError>>,
    /// Set once the parser has returned: the record count or its error.
    outcome: Option<Result<usize, ParseError>>,
}

impl StreamParser {
    fn new() -> Self {
        Self::with_stack(DefaultStack::default())
    }

    /// The parser's recursion depth (how deeply values may nest) is bounded
    /// by its stack; the guard page turns an overflow into a crash, never
    /// into memory corruption.
    fn with_stack(stack: DefaultStack) -> Self {
        StreamParser {
            coroutine: Coroutine::with_stack(stack, |yielder, first| {
                parse_stream(&mut Input::new(yielder, first))
            }),
            outcome: None,
        }
    }

    /// Parses `bytes`, returning the records they complete.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Value>, ParseError> {
        self.run(Some(bytes.to_vec()))
    }

    /// Ends the stream: the last record must be complete.
    fn finish(mut self) -> Result<Vec<Value>, ParseError> {
        self.run(None)
    }

    fn run(&mut self, mut chunk: Chunk) -> Result<Vec<Value>, ParseError> {
        let mut records = Vec::new();
        while self.outcome.is_none() {
            match self.coroutine.resume(chunk.take()) {
                CoroutineResult::Yield(Some(record)) => records.push(record),
                // Wants the next chunk.
                CoroutineResult::Yield(None) => return Ok(records),
                CoroutineResult::Return(outcome) => self.outcome = Some(outcome),
            }
        }
        match &self.outcome {
            Some(Err(error)) => Err(error.clone()),
            _ if chunk.is_some() => Err(ParseError {
                offset: 0,
                message: "input after the end of the stream".into(),
            }),
            _ => Ok(records),
        }
    }
}

/// Parses a whole stream fed in chunks of `chunk_size` bytes.
fn parse_in_chunks(stream: &[u8], chunk_size: usize) -> Result<Vec<Value>, ParseError> {
    let mut parser = StreamParser::new();
    let mut records = Vec::new();
    for chunk in stream.chunks(chunk_size) {
        records.extend(parser.feed(chunk)?);
    }
    records.extend(parser.finish()?);
    Ok(records)
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(members) => {
                f.write_str("{")?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{key:?}:{value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

const STREAM: &str = r#"{"id": 1, "name": "Ada", "tags": ["math", "engines"]}
{"id": 2, "name": "Grace", "tags": ["compilers"], "active": true}
[1, 2.5, -3e2, null, false, "caf\u00e9 \"au lait\"", "naïve ✓"]
{"nested": {"deeper": {"deepest": [[[]], {}]}}}
"#;

fn main() {
    // Feed the stream in chunks of 16 bytes: each record is printed as soon
    // as the chunk that completes it has been fed.
    println!("-- chunks of 16 bytes");
    let mut parser = StreamParser::new();
    for (i, chunk) in STREAM.as_bytes().chunks(16).enumerate() {
        for record in parser.feed(chunk).expect("valid stream") {
            println!("chunk {i:>2} completed {record}");
        }
    }
    let rest = parser.finish().expect("valid stream");
    assert!(rest.is_empty());

    // Any split gives the same records: bytes one at a time, whole, and
    // every chunk size in between (this splits UTF-8 characters and `\u`
    // escapes too).
    let whole = parse_in_chunks(STREAM.as_bytes(), STREAM.len()).unwrap();
    assert_eq!(whole.len(), 4);
    for size in 1..=STREAM.len() {
        assert_eq!(parse_in_chunks(STREAM.as_bytes(), size).unwrap(), whole);
    }
    println!(
        "-- every chunk size from 1 to {}: same 4 records",
        STREAM.len()
    );

    // Deep nesting is deep recursion, on the parser's own stack.
    let depth = 2000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let mut parser = StreamParser::with_stack(DefaultStack::new(16 << 20).unwrap());
    let mut records = Vec::new();
    for byte in deep.as_bytes().chunks(1) {
        records.extend(parser.feed(byte).unwrap());
    }
    records.extend(parser.finish().unwrap());
    let mut nesting = 0;
    let mut value = &records[0];
    while let Value::Array(items) = value {
        nesting += 1;
        match items.first() {
            Some(inner) => value = inner,
            None => break,
        }
    }
    assert_eq!(nesting, depth);
    println!("-- {depth} nested arrays fed one byte at a time: nesting {nesting}");

    // Errors carry their offset in the whole stream, whatever the chunking.
    println!("-- errors");
    for (label, stream) in [
        ("truncated", "{\"a\": [1, 2"),
        ("bad token", "[1, 2]\n[3, @]"),
        ("bad escape", "\"tab\\x\""),
    ] {
        let error = parse_in_chunks(stream.as_bytes(), 3).unwrap_err();
        assert_eq!(parse_in_chunks(stream.as_bytes(), 1), Err(error.clone()));
        println!("{label}: {error}");
    }
}
