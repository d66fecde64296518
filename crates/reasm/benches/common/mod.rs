//! Scaffolding shared by the reassembler benches.

use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};

/// A stream that only counts what it is handed.
pub struct Count(pub u64);

impl Stream for Count {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        self.0 += sg.len() as u64;
    }
}

/// Makes [`Count`] streams.
pub struct Factory;

impl StreamFactory for Factory {
    type Stream = Count;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
        Count(0)
    }
}
