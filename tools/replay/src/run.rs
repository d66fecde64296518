//! Feeding captures to a pipeline.

use std::fmt;
use std::path::Path;

use weft_capture::{Capture, CaptureError};
use weft_engine::{FrameStats, Pipeline, PipelineConfig};
use weft_reasm::{PagePool, Stats, StreamFactory};
use weft_wire::{LinkType, Timestamp};

use crate::digest::{Digests, HalfDigest};

/// A capture that could not be read to its end.
#[derive(Debug)]
pub struct ReplayError {
    /// What went wrong, with file and byte offset.
    pub error: CaptureError,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ReplayError {}

/// Feeds every frame of `capture` to `pipeline` (without the final flush).
/// Frames before a damaged spot are processed; the damage is returned.
pub fn feed<F: StreamFactory, P: PagePool>(
    capture: &mut Capture,
    pipeline: &mut Pipeline<F, P>,
    stop: &dyn Fn() -> bool,
) -> Result<(), ReplayError> {
    while let Some(frame) = capture.next_frame() {
        let frame = frame.map_err(|error| ReplayError { error })?;
        pipeline.process_frame(
            LinkType::from_raw(frame.link_type),
            frame.data,
            Timestamp(frame.ts_nanos),
        );
        if stop() {
            break;
        }
    }
    Ok(())
}

/// Digests of one capture, reassembled inline with `cfg`; also the stats
/// and the capture error that ended reading early, if any.
pub fn digest_file(
    path: &Path,
    cfg: PipelineConfig,
) -> Result<(Vec<HalfDigest>, FrameStats, Stats, Option<ReplayError>), CaptureError> {
    let mut capture = Capture::open(path)?;
    let (factory, rx) = Digests::new();
    let mut p = Pipeline::new(cfg, factory);
    let err = feed(&mut capture, &mut p, &|| false).err();
    p.flush_all();
    let fs = p.frame_stats().clone();
    let st = p.reassembler().stats();
    drop(p);
    Ok((rx.try_iter().collect(), fs, st, err))
}
