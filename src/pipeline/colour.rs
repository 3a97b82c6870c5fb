//! Step 5: convert pixels with an embedded ICC profile to sRGB (moxcms). Profiles whose primaries
//! already are sRGB's are left alone (no work, no change). A profile that cannot be used is
//! logged, never silently dropped.

use super::Pixels;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// Convert `px` (RGB or RGBA, tagged with `icc`) to sRGB in place.
pub fn to_srgb(px: &mut Pixels, icc: &[u8]) {
    let src = match ColorProfile::new_from_slice(icc) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable ICC profile; pixels kept as stored");
            return;
        }
    };
    if src.color_space != DataColorSpace::Rgb || !matches!(px.channels, 3 | 4) {
        return;
    }
    let srgb = ColorProfile::new_srgb();
    if is_srgb(&src, &srgb) {
        return;
    }
    let layout = if px.channels == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let transform = match src.create_transform_8bit(
        layout,
        &srgb,
        layout,
        TransformOptions::default(),
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "ICC profile cannot be converted to sRGB; pixels kept as stored");
            return;
        }
    };
    let mut out = vec![0u8; px.data.len()];
    match transform.transform(&px.data, &mut out) {
        Ok(()) => px.data = out,
        Err(e) => tracing::warn!(error = %e, "ICC conversion failed; pixels kept as stored"),
    }
}

/// Same primaries and white point as sRGB, and an sRGB-like tone curve.
fn is_srgb(p: &ColorProfile, srgb: &ColorProfile) -> bool {
    let a = p.colorant_matrix();
    let b = srgb.colorant_matrix();
    let close =
        a.v.iter()
            .flatten()
            .zip(b.v.iter().flatten())
            .all(|(x, y)| (x - y).abs() < 0.002);
    close && p.red_trc.is_some() && trc_is_srgb_like(p)
}

fn trc_is_srgb_like(p: &ColorProfile) -> bool {
    use moxcms::ToneReprCurve;
    match &p.red_trc {
        Some(ToneReprCurve::Lut(v)) => v.len() > 2,
        Some(ToneReprCurve::Parametric(v)) => v.first().is_some_and(|g| (g - 2.4).abs() < 0.05),
        None => false,
    }
}
