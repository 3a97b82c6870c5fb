//! Animated GIF and WebP sources: kept animated when the output can animate (WebP, or GIF for
//! a GIF source), every frame shaped with the same geometry and its timing kept; or one still
//! frame (`frame=N`).
//!
//! Frames are decoded one at a time (composited on the full canvas by the decoder) and only
//! the shaped output frames are held. Invariants: pure; at most `max_animation_frames` frames
//! (checked from the header before any decode); the pixel limit over all frames is the probe's
//! (already checked); never panics.

use super::format::ImageFormat;
use super::{Encoded, Job, PipelineError, PixelLimits, Pixels, Probe, Shaper};
use bytes::Bytes;
use image::{AnimationDecoder, ImageDecoder};
use std::io::Cursor;

fn corrupt(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(e.to_string())
}

/// The source's frames, decoded lazily, with their delays in milliseconds.
fn frames<'a>(
    input: &'a [u8],
    probe: &Probe,
    limits: PixelLimits,
) -> Result<image::Frames<'a>, PipelineError> {
    let mut lim = image::Limits::default();
    // One canvas and one frame at a time, with room for the decoder's own buffers.
    lim.max_alloc = Some(u64::from(probe.width) * u64::from(probe.height) * 4 * 4 + (16 << 20));
    let _ = limits;
    match probe.format {
        ImageFormat::Gif => {
            let mut d = image::codecs::gif::GifDecoder::new(Cursor::new(input)).map_err(corrupt)?;
            d.set_limits(lim).map_err(corrupt)?;
            Ok(d.into_frames())
        }
        ImageFormat::Webp => {
            let mut d =
                image::codecs::webp::WebPDecoder::new(Cursor::new(input)).map_err(corrupt)?;
            d.set_limits(lim).map_err(corrupt)?;
            Ok(d.into_frames())
        }
        f => Err(PipelineError::Bug(format!(
            "{f} is not an animation format"
        ))),
    }
}

fn pixels(frame: image::Frame) -> Pixels {
    let buf = frame.into_buffer();
    Pixels {
        width: buf.width(),
        height: buf.height(),
        channels: 4,
        data: buf.into_raw(),
    }
}

fn delay_ms(frame: &image::Frame) -> u32 {
    let (n, d) = frame.delay().numer_denom_ms();
    if d == 0 {
        return 100;
    }
    n / d
}

/// Frame `n` (0-based) as a still.
pub fn frame(
    input: &[u8],
    probe: &Probe,
    limits: PixelLimits,
    n: u32,
) -> Result<Pixels, PipelineError> {
    let f = frames(input, probe, limits)?
        .nth(n as usize)
        .ok_or_else(|| corrupt(format!("frame {n} is missing")))?
        .map_err(corrupt)?;
    Ok(pixels(f))
}

/// Every frame shaped and encoded as one animation in `format` (WebP or GIF).
pub(crate) fn run(
    input: &[u8],
    probe: &Probe,
    job: &Job<'_>,
    format: ImageFormat,
    shaper: &mut Shaper<'_>,
) -> Result<Encoded, PipelineError> {
    if probe.frames > job.limits.max_animation_frames {
        return Err(PipelineError::Corrupt(format!(
            "animation has {} frames; the limit is {} (anim=false or frame=N answer one still)",
            probe.frames, job.limits.max_animation_frames
        )));
    }
    // Every shaped frame is held until the encode: their pixels together are bounded like a
    // source's.
    let total = u64::from(probe.frames).saturating_mul(shaper.canvas_pixels());
    if total > job.limits.max_source_pixels {
        return Err(PipelineError::TooManyPixels {
            pixels: total,
            max: job.limits.max_source_pixels,
        });
    }
    let mut out: Vec<(Pixels, u32)> = Vec::new();
    for f in frames(input, probe, job.limits)? {
        job.check_deadline()?;
        let f = f.map_err(corrupt)?;
        let delay = delay_ms(&f);
        let mut px = shaper.shape(pixels(f))?;
        if px.channels == 3 {
            px = with_alpha(px);
        }
        if out.first().is_some_and(|(first, _): &(Pixels, u32)| {
            (first.width, first.height) != (px.width, px.height)
        }) {
            return Err(PipelineError::Corrupt(
                "animation frames differ in size".into(),
            ));
        }
        out.push((px, delay));
    }
    let Some((first, _)) = out.first() else {
        return Err(corrupt("animation without frames"));
    };
    let (w, h) = (first.width, first.height);
    let quality = job
        .transform
        .quality
        .unwrap_or_else(|| job.encode.default_quality(format));
    let bytes = match format {
        ImageFormat::Webp => webp(&out, w, h, quality, job.encode.webp_method)?,
        ImageFormat::Gif => gif(out, w, h)?,
        f => return Err(PipelineError::Bug(format!("{f} cannot animate"))),
    };
    Ok(Encoded {
        bytes: Bytes::from(bytes),
        format,
        width: w,
        height: h,
    })
}

fn with_alpha(px: Pixels) -> Pixels {
    let mut data = Vec::with_capacity(px.data.len() / 3 * 4);
    for p in px.data.chunks_exact(3) {
        data.extend_from_slice(&[p[0], p[1], p[2], 255]);
    }
    Pixels {
        channels: 4,
        data,
        ..px
    }
}

fn webp(
    frames: &[(Pixels, u32)],
    w: u32,
    h: u32,
    q: u8,
    method: u8,
) -> Result<Vec<u8>, PipelineError> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| PipelineError::Encode("libwebp config".into()))?;
    config.quality = f32::from(q);
    config.method = i32::from(method);
    let mut enc = webp::AnimEncoder::new(w, h, &config);
    enc.set_loop_count(0);
    let mut at: i32 = 0;
    for (px, delay) in frames {
        enc.add_frame(webp::AnimFrame::from_rgba(&px.data, w, h, at));
        at = at.saturating_add(i32::try_from(*delay).unwrap_or(i32::MAX));
    }
    let mem = enc
        .try_encode()
        .map_err(|e| PipelineError::Encode(format!("animated WebP: {e:?}")))?;
    Ok(mem.to_vec())
}

fn gif(frames: Vec<(Pixels, u32)>, w: u32, h: u32) -> Result<Vec<u8>, PipelineError> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        enc.set_repeat(Repeat::Infinite)
            .map_err(|e| PipelineError::Encode(e.to_string()))?;
        for (px, delay) in frames {
            let buf = image::RgbaImage::from_raw(w, h, px.data)
                .ok_or_else(|| PipelineError::Bug("frame size".into()))?;
            let frame =
                image::Frame::from_parts(buf, 0, 0, image::Delay::from_numer_denom_ms(delay, 1));
            enc.encode_frame(frame)
                .map_err(|e| PipelineError::Encode(e.to_string()))?;
        }
    }
    Ok(out)
}
