//! Log lines to stdout, batched while the runtime is busy: a line written by a runtime thread
//! between its unpark and its park waits in one buffer, and the buffer goes out in one `write`
//! when the thread parks (it has nothing left to do) or when it passes [`FLUSH_AT`] bytes. A
//! line from any other thread, or from a runtime thread outside a burst, goes out at once,
//! after what was buffered, so lines keep their order.
//!
//! Why: the access log writes one line per request, and stdout (line-buffered) made that one
//! `write` system call per request; under load a burst of requests now shares one. A line waits
//! at most until the burst it belongs to ends, or the buffer fills: [`flush`] runs on park, and
//! `sluice run` also calls it on its way out and from its panic hook.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::Mutex;

/// The buffer is written out once it holds this many bytes, whatever the runtime does.
pub const FLUSH_AT: usize = 64 * 1024;

static BUFFER: Mutex<Batch> = Mutex::new(Batch::new());

thread_local! {
    /// Set while this thread is a runtime thread inside a burst of work.
    static BATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Lines not yet written, and where they go.
struct Batch {
    lines: Vec<u8>,
}

impl Batch {
    const fn new() -> Self {
        Batch { lines: Vec::new() }
    }

    /// Adds `line`; writes everything to the sink `sink` opens unless `batching` and below the
    /// threshold (stdout is locked only to write).
    fn push<W: Write>(&mut self, line: &[u8], batching: bool, sink: impl FnOnce() -> W) {
        self.lines.extend_from_slice(line);
        if !batching || self.lines.len() >= FLUSH_AT {
            self.write_to(&mut sink());
        }
    }

    fn write_to(&mut self, sink: &mut impl Write) {
        if self.lines.is_empty() {
            return;
        }
        // A closed or full stdout loses lines, as an unbuffered write would: logging never
        // stops the gateway.
        let _ = sink.write_all(&self.lines).and_then(|()| sink.flush());
        self.lines.clear();
        if self.lines.capacity() > 2 * FLUSH_AT {
            self.lines.shrink_to(FLUSH_AT);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Batch> {
    BUFFER.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes one or more whole lines (each ending in `\n`).
pub fn write_line(line: &[u8]) {
    let batching = BATCHING.get();
    lock().push(line, batching, || io::stdout().lock());
}

/// Writes out what is buffered (on every park: stdout is not even locked when nothing waits).
pub fn flush() {
    let mut batch = lock();
    if !batch.lines.is_empty() {
        batch.write_to(&mut io::stdout().lock());
    }
}

/// [`flush`] for a panic hook: skipped if the buffer is held (by the panicking thread itself,
/// perhaps), rather than waiting for it.
pub fn flush_on_panic() {
    let batch = match BUFFER.try_lock() {
        Ok(batch) => Some(batch),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    if let Some(mut batch) = batch {
        batch.write_to(&mut io::stdout().lock());
    }
}

/// For the runtime's `on_thread_unpark`: this thread starts a burst of work.
pub fn burst_started() {
    BATCHING.set(true);
}

/// For the runtime's `on_thread_park`: the burst is over, its lines go out.
pub fn burst_ended() {
    BATCHING.set(false);
    flush();
}

/// A `tracing_subscriber` writer over [`write_line`] (the fmt layer writes each event as one
/// `write_all` of its whole line).
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchedStdout;

/// What [`BatchedStdout`] hands the fmt layer for one event.
#[derive(Debug)]
pub struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        write_line(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, FLUSH_AT};

    #[test]
    fn a_burst_is_written_once_and_in_order() {
        let mut batch = Batch::new();
        let mut sink = Vec::new();
        batch.push(b"a\n", true, || &mut sink);
        batch.push(b"b\n", true, || &mut sink);
        assert!(sink.is_empty(), "held while the burst lasts");
        // A line from outside a burst goes out at once, after the held ones.
        batch.push(b"c\n", false, || &mut sink);
        assert_eq!(sink, b"a\nb\nc\n");
        batch.push(b"d\n", true, || &mut sink);
        batch.write_to(&mut sink);
        assert_eq!(sink, b"a\nb\nc\nd\n");
        batch.write_to(&mut sink);
        assert_eq!(sink, b"a\nb\nc\nd\n", "nothing twice");
    }

    #[test]
    fn a_full_buffer_is_written_whatever_the_burst() {
        let mut batch = Batch::new();
        let mut sink = Vec::new();
        let line = vec![b'x'; 1023]
            .into_iter()
            .chain([b'\n'])
            .collect::<Vec<u8>>();
        let mut pushed = 0;
        while sink.is_empty() {
            batch.push(&line, true, || &mut sink);
            pushed += line.len();
            assert!(pushed <= FLUSH_AT, "never more than the threshold held");
        }
        assert_eq!(sink.len(), FLUSH_AT);
        assert!(batch.lines.is_empty());
    }
}
